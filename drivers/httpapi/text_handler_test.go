package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"
)

// FuzzTextHandler checks the access log's own text lines against slog's
// text handler: the same bytes for every line, whatever the request sent
// (its request line, user agent and referer are the client's).
func FuzzTextHandler(f *testing.F) {
	for _, s := range []struct {
		msg, remote, referer, ua string
		status                   int
		bytes, ns, unix          int64
		items                    int
		debug                    bool
	}{
		{"POST /v1/group HTTP/1.1", "127.0.0.1", "", "Go-http-client/1.1", 201, 8, 1532000, 1700000000123456789, 0, false},
		{"GET /v1/group/9?x=1 HTTP/1.1", "::1", "http://example.com/", "curl \"evil\"\n", 200, 51, 0, 0, 0, true},
		{"POST /v1/batch HTTP/1.1", "fe80::1%eth0", "a=b", "x\\y", 444, 0, -5, 1, 128, false},
		{"GET /é日本\u00a0 HTTP/1.1", "\x00\x7f", "\xff", "\u2028", 599, -1, 1 << 62, -62135596800, 1, false},
		{"GET /a=\\b HTTP/1.0", "x\x7f y", "a=\\b", "é d", 200, 1, 999999, 1e18, 2, true},
	} {
		f.Add(s.msg, s.remote, s.referer, s.ua, s.status, s.bytes, s.ns, s.unix, s.items, s.debug)
	}
	f.Fuzz(func(t *testing.T, msg, remote, referer, ua string, status int, n, ns, unix int64, items int, debug bool) {
		line := accessLine{
			time: time.Unix(0, unix), level: slog.LevelInfo, msg: msg, remote: remote, status: status, bytes: n,
			referer: referer, userAgent: ua, duration: time.Duration(ns), items: items,
		}
		if debug {
			line.level = slog.LevelDebug
		}
		if unix == 0 {
			line.time = time.Time{} // slog leaves out a zero time
		}
		var want bytes.Buffer
		opts := &slog.HandlerOptions{Level: slog.LevelDebug}
		if err := slog.NewTextHandler(&want, opts).Handle(context.Background(), line.record()); err != nil {
			t.Skip(err) // a year slog cannot write
		}
		var got bytes.Buffer
		h := NewTextHandler(&got, opts)
		if err := h.writeAccess(&line); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("line\n%q, slog's\n%q", got.String(), want.String())
		}
		if line.time.IsZero() {
			return
		}
		// Another millisecond of the same second: its stamp comes from the
		// first line's.
		line.time = line.time.Truncate(time.Second).Add(time.Duration(uint64(ns) % uint64(time.Second)))
		got.Reset()
		want.Reset()
		if err := slog.NewTextHandler(&want, opts).Handle(context.Background(), line.record()); err != nil {
			t.Skip(err)
		}
		if err := h.writeAccess(&line); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("line at %v after one at %v:\n%q, slog's\n%q", line.time, time.Unix(0, unix), got.String(), want.String())
		}
	})
}
