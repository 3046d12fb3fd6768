package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/reliable-ops/rops/core"
)

// op names a client call, for the classes of answers that depend on it.
type op int

const (
	opCreate op = iota
	opDelete
	opGet
	opList
	opCount
	opPing
)

// maxRetryAfter bounds the wait a Retry-After header can ask for.
const maxRetryAfter = time.Hour

// statusError is the one place that maps an HTTP answer that is not a
// success to a core error, the inverse of the server's errorStatus. The
// message is the server's; the status itself is the cause (StatusError),
// for a request log to show, and what core needs of it is said in core's
// terms: the code, RetryAfter, and Overloaded for a 429 (a Retry-After is
// an overload signal of its own).
//
// A 400 to a POST is ErrExists, a 409 to a POST ErrFenced, a 409 to any
// call ErrStale (with the node's fence, from Rops-Fence, in Fence), and a
// 404 to a GET or DELETE of a record ErrNotFound only with the server's own
// message: a proxy's 400 or 409 or the 404 of a wrong URL must not pass for
// "someone else's record", "never will be", "refused for good" or "already
// gone", which the coordinator would count as settled. 408, 429 and 5xx are transient (a
// write may have been applied), and so is a 503 unless a rops server marks
// it as its node's own "down" (Rops-Applied: false): a proxy answers 503
// too, sometimes after it forwarded the request. Only the marked 503 is
// EUnavailable, certainly not applied. 501 says the call is not offered.
// Every other status is a permanent rejection.
func statusError(o op, status int, h http.Header, body []byte, now time.Time) error {
	msg, isJSON := answerMessage(status, h, body)
	shown := clip(msg)
	switch {
	case !isJSON && msg == "" && len(bytes.TrimSpace(body)) > 0:
		shown = fmt.Sprintf("%d %s: %s", status, http.StatusText(status), clip(string(bytes.TrimSpace(body))))
	case !isJSON && msg == "":
		shown = fmt.Sprintf("%d %s", status, http.StatusText(status))
	}
	e := &core.Error{Code: core.ERejected, Message: shown, Err: &StatusError{Status: status},
		RetryAfter: parseRetryAfter(h.Get("Retry-After"), now), Overloaded: status == http.StatusTooManyRequests}
	switch {
	case status == http.StatusBadRequest && o == opCreate && msg == msgExists:
		e.Code = core.EExists
	case status == http.StatusConflict && o == opCreate && msg == msgFenced:
		e.Code = core.EFenced
	case status == http.StatusConflict && msg == msgStale:
		e.Code = core.EStale
		if v := h[headerFence]; len(v) == 1 {
			e.Fence = core.Token(v[0])
		}
	case status == http.StatusNotFound && (o == opGet || o == opDelete) && strings.HasPrefix(msg, msgNotFound):
		e.Code = core.ENotFound
	case status == http.StatusNotFound && o == opList, status == http.StatusNotImplemented:
		// The original server has no GET /groups.
		e.Code = core.EUnsupported
	case status == http.StatusServiceUnavailable && isNotApplied(h):
		e.Code = core.EUnavailable
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		e.Code = core.ETransient
	}
	return e
}

// answerMessage returns what a server said in an answer that is not a
// success: the message of a JSON error, else the body as text after the
// status, else the status text; a redirect says where to. The message is
// as the server sent it, for statusError to recognize; print it through
// clip.
func answerMessage(status int, h http.Header, body []byte) (msg string, isJSON bool) {
	if status >= 300 && status < 400 {
		return fmt.Sprintf("%d %s to %s: give the URL it redirects to", status, http.StatusText(status), quoteClipped(h.Get("Location"), maxQuoted)), false
	}
	var e struct {
		Message *string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != nil {
		return *e.Message, true
	}
	return "", false
}

// maxQuoted bounds what a message quotes of a server's answer, in bytes.
const maxQuoted = 200

// clip returns s, words of a server, fit to print in a message: as it is
// if it is at most maxQuoted bytes of printable text on one line, else
// quoted with Go's escapes and cut to maxQuoted bytes of s ("..." after
// the quote if cut), so that no control character, escape sequence or
// megabyte of a page reaches the user's terminal.
func clip(s string) string {
	if len(s) <= maxQuoted && isPlain(s) {
		return s
	}
	return quoteClipped(s, maxQuoted)
}

// quoteBody returns a body for a message: "no body", or clip's quote of it.
func quoteBody(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return "no body"
	}
	return quoteClipped(string(body), maxQuoted)
}

// isPlain reports whether s is valid UTF-8 of printable characters and
// spaces only.
func isPlain(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r != ' ' && !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// parseRetryAfter reads a Retry-After header, in seconds or an HTTP date; 0
// if there is none or it is not one of those.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// isNotApplied reports whether an answer's header says, as a rops server's
// "node is down" does, that the request was not applied.
func isNotApplied(h http.Header) bool {
	v := h[headerApplied]
	return len(v) > 0 && v[0] == notApplied[0]
}

// transportError classifies an error of the HTTP client, which got no
// answer; wrote says whether any attempt at the request began to write it
// (writeTrace). The context's end is transient (the request may have
// arrived). A failed dial is unavailable (certainly not applied) only if
// nothing was written: once bytes may have left, on this connection or on
// one that closed before the transport retried, the node may have applied
// them, so a refused dial then is transient like a reset. A TLS failure
// (TLSError: a certificate not trusted either way, or HTTPS against plain
// HTTP) is a permanent rejection, and anything else (a reset,
// an EOF, a timeout mid-request) is transient; but any failure of a
// request to a server that refused the pool for TLS is that rejection (see
// refusals).
func (c *Client) transportError(ctx context.Context, method, path string, err error, wrote bool) error {
	if err := c.knownRefusal(isWrite(method)); err != nil {
		return err // whatever cut it off, the server took none of it
	}
	if cerr := ctx.Err(); cerr != nil {
		if !wrote {
			// Ended before a byte of the request was written (while
			// dialing, say): certainly not applied, and no sign that
			// the node is down.
			return &core.Error{Code: core.EUnavailable, Err: cerr,
				Message: fmt.Sprintf("%s: %s %s: not sent: %v", c.name, method, path, cerr)}
		}
		return &core.Error{Code: core.ETransient, Err: cerr,
			Message: fmt.Sprintf("%s: %s %s: no answer: %v", c.name, method, path, cerr)}
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		reason := op.Err.Error()
		if errno, ok := errors.AsType[syscall.Errno](err); ok {
			reason = errno.Error()
		} else if dns, ok := errors.AsType[*net.DNSError](err); ok {
			reason = dns.Error()
		}
		if wrote {
			return &core.Error{Code: core.ETransient, Err: err,
				Message: fmt.Sprintf("%s: %s %s: the connection closed after the request was sent, and a new one failed (%s): the request may have been applied", c.name, method, path, reason)}
		}
		return &core.Error{Code: core.EUnavailable, Err: err,
			Message: fmt.Sprintf("%s at %s: %s: is the server running? Start one with rops serve", c.name, c.base, reason)}
	}
	if te := tlsError(err); te != nil {
		// Refused in the handshake (the server's alert comes after the
		// client wrote its request, in TLS 1.3): not applied.
		if te.refused {
			c.refused(te)
		}
		return c.tlsFailure(te)
	}
	return &core.Error{Code: core.ETransient, Err: err,
		Message: fmt.Sprintf("%s: %s %s: %v", c.name, method, path, unwrapURLError(err))}
}

// unwrapURLError drops the *url.Error around err, whose text repeats the
// method and URL.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
