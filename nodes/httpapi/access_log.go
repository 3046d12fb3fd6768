package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/reliable-ops/rops/core"
)

// accessLog writes one line per request in the common log format with the
// referer and user agent, as gunicorn does:
//
//	127.0.0.1 - - [25/Nov/2026:18:00:00 +0000] "POST /v1/group HTTP/1.1" 201 8 "-" "rops/1"
//
// Each line is built outside the lock and written with one Write under it,
// so lines never interleave and one writer may serve many servers' logs.
type accessLog struct {
	clock core.Clock
	mu    sync.Mutex
	w     io.Writer
}

func newAccessLog(w io.Writer, clock core.Clock) *accessLog {
	if clock == nil {
		clock = core.SystemClock{}
	}
	return &accessLog{w: w, clock: clock}
}

// logTime is the common log format's time layout.
const logTime = "02/Jan/2006:15:04:05 -0700"

// write logs r, whose answer lw recorded. Write errors are ignored: a
// broken log must not fail requests.
func (l *accessLog) write(r *http.Request, lw *logWriter) {
	b := make([]byte, 0, 160)
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = strings.Trim(host[:i], "[]")
	}
	b = appendLogField(b, host)
	b = append(b, " - - ["...)
	b = l.clock.Now().AppendFormat(b, logTime)
	b = append(b, `] "`...)
	b = appendLogField(b, r.Method)
	b = append(b, ' ')
	b = appendLogField(b, r.RequestURI)
	b = append(b, ' ')
	b = appendLogField(b, r.Proto)
	b = append(b, `" `...)
	status := lw.status
	if status == 0 {
		status = http.StatusOK
	}
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if lw.bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, lw.bytes, 10)
	}
	b = append(b, ` "`...)
	b = appendLogField(b, orDash(r.Header.Get("Referer")))
	b = append(b, `" "`...)
	b = appendLogField(b, orDash(r.Header.Get("User-Agent")))
	b = append(b, "\"\n"...)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendLogField appends s with quotes, backslashes and bytes outside
// printable ASCII written as \xHH, as nginx does, so that a request cannot
// forge or break a log line.
func appendLogField(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// logWriter records the status and body size of an answer for the log.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *logWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
