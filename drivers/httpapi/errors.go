package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/reliable-ops/rops/core"
)

// httpError is an answer that is not a success: a status and the message of
// its JSON body.
type httpError struct {
	status  int
	message string
}

func (e *httpError) Error() string { return e.message }

// reject returns an httpError, for requests the server refuses.
func reject(status int, message string) *httpError {
	return &httpError{status: status, message: message}
}

// StatusError is the HTTP status of an answer that was not a success: the
// cause (core.Error.Err) of the error a Client returns for it, so that a
// request log can show the status while core, which knows nothing of HTTP,
// decides from the error's code alone. Find it with errors.As, or any error
// that came with a status with its HTTPStatus method (see HTTPStatus).
type StatusError struct {
	Status int
}

// Error returns the status and its text, such as "429 Too Many Requests".
func (e *StatusError) Error() string {
	return strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
}

// HTTPStatus returns the status.
func (e *StatusError) HTTPStatus() int { return e.Status }

// HTTPStatus returns the HTTP status that err came with, and whether it came
// with one: that of the first error in err's chain with a method
// HTTPStatus() int, such as a Client's StatusError or an injected fault's
// 500, 408 or 502-504 (decorators/faults), which need not import this package.
func HTTPStatus(err error) (int, bool) {
	var s interface{ HTTPStatus() int }
	if errors.As(err, &s) {
		return s.HTTPStatus(), true
	}
	return 0, false
}

// errorStatus is the one place that maps a node's error to an HTTP status,
// the inverse of the client's statusError. An error that came with a status
// of 400 or more (HTTPStatus: the injected 500s and 408s) keeps it and its
// message, as the original answered them.
func errorStatus(err error) (int, string) {
	if status, ok := HTTPStatus(err); ok && status >= 400 {
		msg := err.Error()
		if e, ok := errors.AsType[*core.Error](err); ok {
			msg = e.Message
		}
		return status, msg
	}
	switch core.ErrorCode(err) {
	case core.EExists:
		return http.StatusBadRequest, msgExists
	case core.EFenced:
		return http.StatusConflict, msgFenced
	case core.EStale:
		return http.StatusConflict, msgStale
	case core.ENotFound:
		return http.StatusNotFound, err.Error()
	case core.ERejected, core.EInvalid:
		return http.StatusNotAcceptable, err.Error()
	case core.EUnavailable:
		return http.StatusServiceUnavailable, err.Error()
	case core.EUnsupported:
		return http.StatusNotImplemented, err.Error()
	case core.ETransient:
		// A node that did not answer in time, such as a hang whose caller
		// gave up.
		return http.StatusGatewayTimeout, err.Error()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// nodeError answers err, which node returned for a request on id (with
// token, for a conditional delete), in the original's words: a missing
// record names the id, a node that is down says so, and marks the answer
// as not applied (markNotApplied). A node that is up and asks the caller
// to wait (a store whose tombstones are full: EUnavailable with RetryAfter
// or Overloaded) keeps its message and says how long in Retry-After, so
// that the Client's error asks for the wait too and no breaker takes the
// node for down. A 503 for any other reason, such as an injected gateway
// fault, keeps its message and is not marked. A stale request's 409
// carries the node's fence (markStale).
func nodeError(w http.ResponseWriter, node core.Node, err error, id core.GroupID, token core.Token) {
	status, msg := errorStatus(err)
	switch {
	case status == http.StatusNotFound:
		msg = notFoundMessage(string(id), string(token))
	case status == http.StatusServiceUnavailable && markNotApplied(w, err):
		if wait, ok := askedWait(err); ok {
			w.Header()["Retry-After"] = []string{strconv.FormatInt(int64(wait/time.Second), 10)}
		} else {
			msg = node.Name() + " is down"
		}
	case status == http.StatusConflict:
		markStale(w, err)
	}
	writeError(w, status, msg)
}

// askedWait returns the wait err asks the caller for, in whole seconds
// (rounded up, at least one), and whether it asks for one: RetryAfter, or
// Overloaded alone.
func askedWait(err error) (time.Duration, bool) {
	e, ok := errors.AsType[*core.Error](err)
	if !ok || e.RetryAfter <= 0 && !e.Overloaded {
		return 0, false
	}
	return max(time.Second, (e.RetryAfter + time.Second - 1).Truncate(time.Second)), true
}

// markStale puts the fence that err, an EStale error, says the node holds
// in the answer's Rops-Fence header, where the Client reads it back into
// core.Error.Fence. Any other error, or a fence that cannot travel in a
// header, marks nothing.
func markStale(w http.ResponseWriter, err error) {
	e, ok := errors.AsType[*core.Error](err)
	if !ok || e.Code != core.EStale || !validHeaderValue(string(e.Fence)) {
		return
	}
	w.Header()[headerFence] = []string{string(e.Fence)}
}

// markNotApplied marks the answer to err as "not applied" (Rops-Applied:
// false) if err says the request never reached the node's store
// (EUnavailable: the node is down), and reports whether it did. The client
// takes only a marked 503 for certainly not applied.
func markNotApplied(w http.ResponseWriter, err error) bool {
	if core.ErrorCode(err) != core.EUnavailable {
		return false
	}
	w.Header()[headerApplied] = notApplied
	return true
}

// writeError writes the JSON error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header()["Content-Type"] = contentJSON
	w.WriteHeader(status)
	_, _ = w.Write(appendErrorBody(make([]byte, 0, 40+len(msg)), status, msg))
}

// writeHTTPError writes e.
func writeHTTPError(w http.ResponseWriter, e *httpError) { writeError(w, e.status, e.message) }
