package httpapi

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// TextHandler is a slog.Handler that writes what slog.NewTextHandler
// writes, and lets a Server's access log (ServerOptions.AccessLog) write
// its lines without building a slog.Record: the same bytes
// (FuzzTextHandler) for a fraction of the cost, which slog's handler spends
// mostly on quoting checks of constant keys and on the record's attrs.
// Every other record, and the handlers that WithAttrs and WithGroup
// return, are slog's own. It is safe for concurrent use, and writes each
// line with one Write under one lock, whichever path it took.
type TextHandler struct {
	slog.Handler // slog's, writing through w
	w            *lockedWriter
	// fast: the options change nothing the access log's lines show
	// (no ReplaceAttr, no AddSource), so it may write them itself.
	fast  bool
	stamp atomic.Pointer[stamp] // the last second a line was stamped with
}

var _ slog.Handler = (*TextHandler)(nil)

// NewTextHandler returns a TextHandler writing to w with opts, as
// slog.NewTextHandler(w, opts) does; opts may be nil.
func NewTextHandler(w io.Writer, opts *slog.HandlerOptions) *TextHandler {
	lw := &lockedWriter{w: w}
	h := &TextHandler{Handler: slog.NewTextHandler(lw, opts), w: lw, fast: true}
	if opts != nil && (opts.ReplaceAttr != nil || opts.AddSource) {
		h.fast = false
	}
	return h
}

// lockedWriter makes a TextHandler's own lines and slog's take turns.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// lineBufs keeps the buffers of access log lines for the next lines.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// writeAccess writes line as slog's text handler writes its record; the
// caller has checked that its level is enabled.
func (h *TextHandler) writeAccess(line *accessLine) error {
	p := lineBufs.Get().(*[]byte)
	b := line.appendText((*p)[:0], &h.stamp)
	_, err := h.w.Write(b)
	// A line that grew the buffer far (a long URL) does not stay in the
	// pool, as slog's own buffers do not.
	if cap(b) <= 16<<10 {
		*p = b
		lineBufs.Put(p)
	}
	return err
}

// appendText appends the line in slog's text format, key=value separated
// by spaces, values quoted when slog quotes them; last is the last second
// a line was stamped with, which appendText may replace.
func (a *accessLine) appendText(b []byte, last *atomic.Pointer[stamp]) []byte {
	if !a.time.IsZero() {
		b = append(b, "time="...)
		b = appendStamp(b, a.time.Round(0), last)
		b = append(b, ' ')
	}
	b = append(b, "level="...)
	b = appendTextString(b, a.level.String())
	b = append(b, " msg="...)
	b = appendTextString(b, a.msg)
	b = append(b, " remote="...)
	b = appendTextString(b, a.remote)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, a.bytes, 10)
	b = append(b, " referer="...)
	b = appendTextString(b, a.referer)
	b = append(b, " user_agent="...)
	b = appendTextString(b, a.userAgent)
	b = append(b, " duration="...)
	b = append(b, a.duration.String()...)
	if a.items > 0 {
		b = append(b, " items="...)
		b = strconv.AppendInt(b, int64(a.items), 10)
	}
	return append(b, '\n')
}

// appendTextString appends s as slog's text handler writes a string: as
// it is, or Go-quoted if slog quotes it.
func appendTextString(b []byte, s string) []byte {
	switch textQuoting(s) {
	case quoteNone:
		return append(b, s...)
	case quotePlain:
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return strconv.AppendQuote(b, s)
}

// How slog's text handler writes a string (textQuoting).
const (
	quoteNone  = iota // as it is
	quotePlain        // quoted, with nothing to escape: strconv.Quote adds the quotes alone
	quoteFull         // quoted by strconv.Quote, escapes and all
)

// textQuoting returns how slog's text handler writes s. It quotes an empty
// string, and one holding a space, '=', '"', an ASCII control character,
// invalid UTF-8, or a character that is a space or not printable.
// strconv.Quote escapes '"', '\\', and what is not printable; the quotes
// of the request lines of creates and deletes, the most of a log, are
// then plain.
func textQuoting(s string) int {
	quote, plain := s == "", true
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c < ' ' || c == '"':
				return quoteFull
			case c == ' ' || c == '=':
				quote = true
			case c == '\\' || c == utf8.RuneSelf-1: // DEL
				plain = false
			}
			i++
			continue
		}
		plain = false
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return quoteFull
		}
		i += size
	}
	switch {
	case !quote:
		return quoteNone
	case plain:
		return quotePlain
	}
	return quoteFull
}

// stamp is a second as appendRFC3339Millis writes it, at its millisecond
// 0, in a location.
type stamp struct {
	sec  int64
	loc  *time.Location
	text []byte
}

// millisAt is where the milliseconds are in a stamp's text.
const millisAt = len("2006-01-02T15:04:05.")

// appendStamp appends t as appendRFC3339Millis does, from last if it holds
// t's second, which most lines of a busy log share, else after putting
// t's second there: the same bytes, and only the milliseconds to write.
func appendStamp(b []byte, t time.Time, last *atomic.Pointer[stamp]) []byte {
	sec, loc := t.Unix(), t.Location()
	st := last.Load()
	if st == nil || st.sec != sec || st.loc != loc {
		if y := t.Year(); y < 1000 || y > 9999 {
			// Not four digits: the milliseconds are elsewhere.
			return appendRFC3339Millis(b, t)
		}
		st = &stamp{sec: sec, loc: loc, text: appendRFC3339Millis(nil, time.Unix(sec, 0).In(loc))}
		last.Store(st)
	}
	n := len(b)
	b = append(b, st.text...)
	ms := t.Nanosecond() / int(time.Millisecond)
	b[n+millisAt], b[n+millisAt+1], b[n+millisAt+2] = byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10)
	return b
}

// appendRFC3339Millis appends t as slog's text handler writes a time:
// RFC 3339 with exactly three digits of milliseconds, truncated.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	// RFC3339Nano drops trailing zeros, so a tenth of a millisecond added
	// makes four digits, of which the fourth is dropped.
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}
