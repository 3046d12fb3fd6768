package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/reliable-ops/rops/core"
)

// accessLog logs one record per request through log/slog, with the fields
// of gunicorn's access log: the request line as the message, then the
// client's address, status, body size, referer, user agent and the time
// from the request's arrival to the end of its answer. With slog's text
// handler:
//
//	time=2026-11-25T18:00:00.000Z level=INFO msg="POST /v1/group HTTP/1.1" remote=127.0.0.1 status=201 bytes=8 referer="" user_agent=rops/1 duration=1.532ms
//
// The probes (GET /ping, /healthz, /readyz) are logged at DEBUG: a
// container's health check sends them every few seconds, and at INFO they
// would bury the requests that matter.
//
// The handler quotes and escapes every value, so a request cannot forge or
// break a line, and writes each record with one Write under its lock, so
// one logger may serve many servers' logs. A TextHandler's lines are
// written without a slog.Record, the same bytes at less cost.
type accessLog struct {
	clock  core.Clock
	system bool // clock is the system clock, which the metrics read too
	h      slog.Handler
	text   *TextHandler // h, if it is a TextHandler that may write lines itself
}

func newAccessLog(l *slog.Logger, clock core.Clock) *accessLog {
	if clock == nil {
		clock = core.SystemClock{}
	}
	_, system := clock.(core.SystemClock)
	a := &accessLog{h: l.Handler(), clock: clock, system: system}
	if t, ok := a.h.(*TextHandler); ok && t.fast {
		a.text = t
	}
	return a
}

// accessLine is what one line of the access log says.
type accessLine struct {
	time               time.Time
	level              slog.Level
	msg                string // the request line
	remote             string
	status             int
	bytes              int64
	referer, userAgent string
	duration           time.Duration
	items              int // a batch's items; 0 for a request that is none
}

// record returns the line as a slog.Record.
func (a *accessLine) record() slog.Record {
	rec := slog.NewRecord(a.time, a.level, a.msg, 0)
	rec.AddAttrs(
		slog.String("remote", a.remote),
		slog.Int("status", a.status),
		slog.Int64("bytes", a.bytes),
		slog.String("referer", a.referer),
		slog.String("user_agent", a.userAgent),
		slog.Duration("duration", a.duration),
	)
	if a.items > 0 {
		// A batch's line stands for its items' requests.
		rec.AddAttrs(slog.Int("items", a.items))
	}
	return rec
}

// write logs r, whose answer aw recorded; ctx is r's, start when it
// arrived by l.clock. It returns when the answer ended, if it read that
// from the system clock, else the zero time. Handler errors are ignored:
// a broken log must not fail requests.
func (l *accessLog) write(ctx context.Context, r *http.Request, start time.Time, aw *answerWriter) time.Time {
	level := slog.LevelInfo
	if isProbe(r) {
		level = slog.LevelDebug
	}
	if !l.h.Enabled(ctx, level) {
		return time.Time{}
	}
	// An address without a port (a unix socket's, or one a proxy's
	// middleware set) is logged whole.
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	status := aw.status
	switch {
	case aw.reset:
		status = statusNoResponse
	case status == 0:
		status = http.StatusOK
	}
	// The line carries the server's clock (tests fix it), and no caller.
	now := l.clock.Now()
	line := accessLine{
		time:   now,
		level:  level,
		msg:    requestLine(r),
		remote: host,
		status: status,
		bytes:  aw.bytes,
		// Indexed directly, as net/http canonicalized the keys.
		referer:   first(r.Header["Referer"]),
		userAgent: first(r.Header["User-Agent"]),
		duration:  now.Sub(start),
		items:     aw.items,
	}
	if l.text != nil {
		_ = l.text.writeAccess(&line)
	} else {
		_ = l.h.Handle(ctx, line.record())
	}
	if !l.system {
		return time.Time{}
	}
	return now
}

// isProbe reports whether r is a liveness or readiness probe: a GET or
// HEAD of /ping, /healthz or /readyz, at the root or under /v1.
func isProbe(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch routePath(r) {
	case "/ping", "/ping/", "/healthz", "/readyz":
		return true
	}
	return false
}

// requestLine returns r's request line, such as "POST /v1/group HTTP/1.1":
// those of creates and deletes, most of the log, without building them.
func requestLine(r *http.Request) string {
	if r.RequestURI == "/v1/group" && r.Proto == "HTTP/1.1" {
		switch r.Method {
		case http.MethodPost:
			return "POST /v1/group HTTP/1.1"
		case http.MethodDelete:
			return "DELETE /v1/group HTTP/1.1"
		}
	}
	return r.Method + " " + redactURI(r.RequestURI) + " " + r.Proto
}

// redactURI returns a request URI with the values of its token query
// parameters (queryTokens) replaced: a guarded Server refuses them, but
// the refusal is logged, and the log must not hold a token. The
// Authorization header is never logged.
func redactURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok || !strings.Contains(strings.ToLower(query), "token") {
		return uri
	}
	params := strings.Split(query, "&")
	for i, kv := range params {
		k, _, _ := strings.Cut(kv, "=")
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		if slices.Contains(queryTokens[:], k) {
			params[i] = k + "=REDACTED"
		}
	}
	return path + "?" + strings.Join(params, "&")
}

// first returns a header's first value, "" if it has none.
func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
