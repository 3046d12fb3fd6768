// Package reqlog logs the calls of any core.Node, as the original connector
// logged its requests. It is apart from the faults (package faults) so that
// a node of any driver, faulty or not, can be logged, and a store that is
// logged need not link the faults.
package reqlog

import (
	"context"
	"errors"
	"log/slog"

	"github.com/reliable-ops/rops/core"
)

// Wrap returns n with a request log, as the original connector kept, on
// log: one record when a call starts ("request") and one when it returns
// ("answer"), with the node's name, the call and its arguments; an answer
// holds the result, or the error's status (if it came with one), code and
// message at level WARN. With slog's text handler:
//
//	level=INFO msg=request node=node01 op=create groupId=5 timestamp=1633806680.426599
//	level=INFO msg=answer node=node01 op=create groupId=5 result=created
//	level=WARN msg=answer node=node01 op=create groupId=6 status=408 code=transient error="Timeout due to Random Behavior"
//
// The records carry no timings of their own (only the handler's time), so a
// seeded single-threaded run logs the same records every time. Nodes may
// share one logger: its handler serializes the lines. The result is safe for
// concurrent use if n is.
func Wrap(n core.Node, log *slog.Logger) core.Node {
	return &logged{n: n, log: log.With(slog.String("node", n.Name()))}
}

type logged struct {
	n   core.Node
	log *slog.Logger
}

// Unwrap returns the node that l logs.
func (l *logged) Unwrap() core.Node { return l.n }

func (l *logged) Name() string { return l.n.Name() }

// call returns the attributes naming a call on an id.
func call(op string, id core.GroupID) []slog.Attr {
	return []slog.Attr{slog.String("op", op), slog.String("groupId", string(id))}
}

func (l *logged) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	req := call("create", id)
	l.request(ctx, req, slog.String("timestamp", string(token)))
	err := l.n.Create(ctx, id, token)
	l.answer(ctx, req, err, slog.String("result", "created"))
	return err
}

func (l *logged) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	req := call("delete", id)
	if token == "" {
		l.request(ctx, req)
	} else {
		l.request(ctx, req, slog.String("timestamp", string(token)))
	}
	err := l.n.Delete(ctx, id, token)
	l.answer(ctx, req, err, slog.String("result", "deleted"))
	return err
}

// Removes reports whether the node l logs serves Remove (core.Remover).
func (l *logged) Removes() bool { return core.Removes(l.n) }

// Remove logs a delete without a read, which the node answers with the
// token it removed.
func (l *logged) Remove(ctx context.Context, id core.GroupID, before core.Token) (core.Token, error) {
	r, ok := l.n.(core.Remover)
	if !ok {
		return "", core.Errorf(core.EUnsupported, "%s cannot delete without a read", l.n.Name())
	}
	req := call("delete", id)
	l.request(ctx, req, slog.String("older_than", string(before)))
	tok, err := r.Remove(ctx, id, before)
	l.answer(ctx, req, err, slog.String("result", "deleted"), slog.String("timestamp", string(tok)))
	return tok, err
}

func (l *logged) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	req := call("get", id)
	l.request(ctx, req)
	rec, err := l.n.Get(ctx, id)
	l.answer(ctx, req, err, slog.String("result", "found"), slog.String("timestamp", string(rec.Token)))
	return rec, err
}

func (l *logged) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	req := []slog.Attr{slog.String("op", "list"), slog.String("after", string(after)), slog.Int("limit", limit)}
	l.request(ctx, req)
	recs, err := l.n.List(ctx, after, limit)
	l.answer(ctx, req, err, slog.Int("records", len(recs)))
	return recs, err
}

func (l *logged) Count(ctx context.Context) (int, error) {
	req := []slog.Attr{slog.String("op", "count")}
	l.request(ctx, req)
	c, err := l.n.Count(ctx)
	l.answer(ctx, req, err, slog.Int("count", c))
	return c, err
}

func (l *logged) request(ctx context.Context, req []slog.Attr, args ...slog.Attr) {
	l.log.LogAttrs(ctx, slog.LevelInfo, "request", append(req, args...)...)
}

// answer logs the end of req: ok if err is nil, else the error's status (if
// it came with one), code and message.
func (l *logged) answer(ctx context.Context, req []slog.Attr, err error, ok ...slog.Attr) {
	if err == nil {
		l.log.LogAttrs(ctx, slog.LevelInfo, "answer", append(req, ok...)...)
		return
	}
	attrs := req
	// The status is the transport's or the injected fault's, not core's:
	// any error in the chain with an HTTPStatus method carries one
	// (httpapi.StatusError, faults.StatusError), found without importing
	// either.
	var s interface{ HTTPStatus() int }
	if errors.As(err, &s) {
		attrs = append(attrs, slog.Int("status", s.HTTPStatus()))
	}
	attrs = append(attrs, slog.String("code", string(core.ErrorCode(err))), slog.String("error", err.Error()))
	l.log.LogAttrs(ctx, slog.LevelWarn, "answer", attrs...)
}
