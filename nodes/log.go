package nodes

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/reliable-ops/rops/core"
)

// logMu serializes the writes of every logged node, so that nodes can share
// one writer (a terminal, a bytes.Buffer) without interleaving or racing.
var logMu sync.Mutex

// Logged returns n with a request log, as the original connector kept: one
// line to w when a call starts and one when it returns, such as
//
//	node01 create groupId=5 timestamp=1633806680.426599
//	node01 create groupId=5 -> created
//	node01 create groupId=6 -> 408 transient: Timeout due to Random Behavior
//
// Answer lines hold " -> ". The log has no timings, so a seeded
// single-threaded run logs the same lines every time. Each line is one Write,
// and lines of all logged nodes are written under one lock, so nodes may
// share w; write errors are ignored. The result is safe for concurrent use if
// n is.
func Logged(n core.Node, w io.Writer) core.Node { return &logged{n: n, w: w} }

type logged struct {
	n core.Node
	w io.Writer
}

// Unwrap returns the node that l logs.
func (l *logged) Unwrap() core.Node { return l.n }

func (l *logged) Name() string { return l.n.Name() }

func (l *logged) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	req := "create groupId=" + field(string(id))
	l.line(req + " timestamp=" + field(string(token)))
	err := l.n.Create(ctx, id, token)
	l.answer(req, "created", err)
	return err
}

func (l *logged) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	req := "delete groupId=" + field(string(id))
	if token == "" {
		l.line(req)
	} else {
		l.line(req + " timestamp=" + field(string(token)))
	}
	err := l.n.Delete(ctx, id, token)
	l.answer(req, "deleted", err)
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
	req := "delete groupId=" + field(string(id))
	l.line(req + " older-than=" + field(string(before)))
	tok, err := r.Remove(ctx, id, before)
	l.answer(req, "deleted timestamp="+field(string(tok)), err)
	return tok, err
}

func (l *logged) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	req := "get groupId=" + field(string(id))
	l.line(req)
	rec, err := l.n.Get(ctx, id)
	l.answer(req, "found timestamp="+field(string(rec.Token)), err)
	return rec, err
}

func (l *logged) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	req := "list after=" + field(string(after)) + " limit=" + strconv.Itoa(limit)
	l.line(req)
	recs, err := l.n.List(ctx, after, limit)
	l.answer(req, strconv.Itoa(len(recs))+" records", err)
	return recs, err
}

func (l *logged) Count(ctx context.Context) (int, error) {
	l.line("count")
	c, err := l.n.Count(ctx)
	l.answer("count", strconv.Itoa(c), err)
	return c, err
}

// answer logs the end of req: ok if err is nil, else the error's status (if
// it came with one), code and message.
func (l *logged) answer(req, ok string, err error) {
	if err == nil {
		l.line(req + " -> " + ok)
		return
	}
	var b strings.Builder
	b.WriteString(req + " -> ")
	if e, isCore := errors.AsType[*core.Error](err); isCore && e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status) + " ")
	}
	b.WriteString(string(core.ErrorCode(err)) + ": " + oneLine.Replace(err.Error()))
	l.line(b.String())
}

func (l *logged) line(s string) {
	b := make([]byte, 0, len(l.n.Name())+len(s)+2)
	b = append(b, l.n.Name()...)
	b = append(b, ' ')
	b = append(b, s...)
	b = append(b, '\n')
	logMu.Lock()
	defer logMu.Unlock()
	_, _ = l.w.Write(b)
}

var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// field returns s as a key=value value: as it is if it is plain, quoted if
// it is empty or holds spaces, quotes or unprintable characters, so that each
// line stays one line of whitespace-separated fields.
func field(s string) string {
	if s == "" || strings.IndexFunc(s, func(r rune) bool {
		return r == '"' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
