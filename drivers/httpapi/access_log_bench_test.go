package httpapi

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
)

// BenchmarkAccessLog measures one access log record in slog's text format,
// to a writer that discards it: the cost the log adds to every request,
// through slog's text handler and through a TextHandler.
func BenchmarkAccessLog(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"slog", slog.NewTextHandler(io.Discard, nil)},
		{"TextHandler", NewTextHandler(io.Discard, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := newAccessLog(slog.New(bc.h), core.SystemClock{})
			r := httptest.NewRequest("POST", "/v1/group", nil)
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header.Set("User-Agent", "rops/1")
			aw := &answerWriter{status: 201, bytes: 8}
			b.ReportAllocs()
			for b.Loop() {
				l.write(r.Context(), r, time.Now(), aw)
			}
		})
	}
}
