package httpapi

import (
	"context"
	"errors"
	"net/http"

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

// errorStatus is the one place that maps a node's error to an HTTP status,
// the inverse of the client's statusError. An error that carries a status
// (the injected 500s and 408s) keeps it and its message, as the original
// answered them.
func errorStatus(err error) (int, string) {
	if e, ok := errors.AsType[*core.Error](err); ok && e.Status >= 400 {
		return e.Status, e.Message
	}
	switch core.ErrorCode(err) {
	case core.EExists:
		return http.StatusBadRequest, msgExists
	case core.EFenced:
		return http.StatusConflict, msgFenced
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
// as not applied (markNotApplied). A 503 for any other reason, such as an
// injected gateway fault, keeps its message and is not marked.
func nodeError(w http.ResponseWriter, node core.Node, err error, id core.GroupID, token core.Token) {
	status, msg := errorStatus(err)
	switch {
	case status == http.StatusNotFound:
		msg = notFoundMessage(string(id), string(token))
	case status == http.StatusServiceUnavailable && markNotApplied(w, err):
		msg = node.Name() + " is down"
	}
	writeError(w, status, msg)
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
