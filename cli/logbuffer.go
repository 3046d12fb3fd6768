package cli

import (
	"io"
	"time"

	"go.uber.org/zap/zapcore"
)

// logFlushInterval is how long a line of serve's log may wait in its
// buffer: short enough to read as live, long enough that a busy server
// writes many access log lines at once.
const logFlushInterval = 100 * time.Millisecond

// newBufferedLog returns the writer of serve's log, writing to w: a busy
// server writes its lines together, at most interval after each, never
// more than 64 KiB held and never half a line at a time; Sync writes out
// what is held and Stop the rest. Write and Sync are safe for concurrent
// use.
//
// Once w fails, lines are dropped and Write returns the error, which
// slog.Logger and the access log ignore: the log never fails a request.
// Stop returns the first error.
func newBufferedLog(w io.Writer, interval time.Duration) *zapcore.BufferedWriteSyncer {
	return &zapcore.BufferedWriteSyncer{
		// Hide w's own Sync: the buffer calls it at every flush, and on
		// stderr it would fsync a file every interval, or fail on a pipe
		// or terminal (EINVAL).
		WS:            zapcore.AddSync(struct{ io.Writer }{w}),
		Size:          64 << 10,
		FlushInterval: interval,
	}
}
