package httpapi

import (
	"context"
	"crypto/tls"
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
// message is the server's; Status and RetryAfter carry the rest.
//
// A 400 to a POST is ErrExists, a 409 to a POST ErrFenced, and a 404 to a
// GET or DELETE of a record ErrNotFound only with the server's own message:
// a proxy's 400 or 409 or the 404 of a wrong URL must not pass for
// "someone else's record", "never will be" or "already gone", which the
// coordinator would count as settled. 408, 429 and 5xx are transient (a
// write may have been applied), and so is a 503 unless a rops server marks
// it as its node's own "down" (Rops-Applied: false): a proxy answers 503
// too, sometimes after it forwarded the request. Only the marked 503 is
// EUnavailable, certainly not applied. 501 says the call is not offered.
// Every other status is a permanent rejection.
func statusError(o op, status int, h http.Header, body []byte, now time.Time) error {
	msg := answerMessage(status, h, body)
	e := &core.Error{Code: core.ERejected, Status: status, Message: msg,
		RetryAfter: parseRetryAfter(h.Get("Retry-After"), now)}
	switch {
	case status == http.StatusBadRequest && o == opCreate && msg == msgExists:
		e.Code = core.EExists
	case status == http.StatusConflict && o == opCreate && msg == msgFenced:
		e.Code = core.EFenced
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
// success: the message of a JSON error, else the start of the body as text,
// else the status text; a redirect says where to.
func answerMessage(status int, h http.Header, body []byte) string {
	if status >= 300 && status < 400 {
		return fmt.Sprintf("%d %s to %q: give the URL it redirects to", status, http.StatusText(status), h.Get("Location"))
	}
	var e struct {
		Message *string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != nil {
		return *e.Message
	}
	const max = 200
	text := strings.TrimSpace(strings.ToValidUTF8(string(body[:min(len(body), max)]), ""))
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	if text == "" {
		return fmt.Sprintf("%d %s", status, http.StatusText(status))
	}
	return fmt.Sprintf("%d %s: %s", status, http.StatusText(status), text)
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
// them, so a refused dial then is transient like a reset. A certificate
// that is not trusted is a permanent rejection, and anything else (a reset,
// an EOF, a timeout mid-request) is transient.
func (c *Client) transportError(ctx context.Context, method, path string, err error, wrote bool) error {
	if cerr := ctx.Err(); cerr != nil {
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
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return &core.Error{Code: core.ERejected, Err: err,
			Message: fmt.Sprintf("%s at %s: %v", c.name, c.base, err)}
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
