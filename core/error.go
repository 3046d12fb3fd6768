package core

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error. The coordinator decides what to do from the code
// alone, so every Node implementation maps its failures onto these.
type Code string

// Error codes.
const (
	// EExists: the node already holds a record with that id (and another token).
	EExists Code = "exists"
	// ENotFound: the node holds no such record (or none with that token).
	ENotFound Code = "not_found"
	// ERejected: the node refused the request as invalid; retrying cannot help.
	ERejected Code = "rejected"
	// ETransient: the request failed in a way that may pass (a node's
	// error, a timeout, a reset connection, an overloaded node). The write
	// may or may not have happened: the outcome is ambiguous.
	ETransient Code = "transient"
	// EUnavailable: the request certainly never reached the node (connection
	// refused, node down). Worth retrying, and certainly not applied.
	EUnavailable Code = "unavailable"
	// EFenced: the node refused a create because a conditional delete of the
	// same id and token left a tombstone there: the write was not applied
	// and never will be. Only nodes that keep tombstones answer it (see
	// Fencer).
	EFenced Code = "fenced"
	// EStale: the node refused a request whose fence (see WithFence) is
	// older than one a later holder of the id sent: the request comes from
	// a coordinator that lost the id's lock. Nothing was applied, and
	// retrying cannot help. Only nodes that fence answer it.
	EStale Code = "stale"
	// EUnsupported: the node does not offer that call (an older server).
	EUnsupported Code = "unsupported"
	// EInvalid: the caller's input is invalid (an id, a flag, a config).
	EInvalid Code = "invalid"
	// EInternal: anything else, such as a storage failure.
	EInternal Code = "internal"
)

// Error is the error type of rops. Match it by class with errors.Is against
// the sentinels (ErrExists, ErrNotFound, ...) or read it with errors.As.
// It says what the coordinator needs in its own terms; how a transport
// carried it (an HTTP status, say) is the transport's, kept in Err if a
// caller needs it (see drivers/httpapi's StatusError).
type Error struct {
	Code    Code
	Message string // the whole text, for a person; never parsed
	Err     error  // the cause, if any, for errors.Is and errors.As
	// RetryAfter is how long the node asked the caller to wait before
	// retrying; the coordinator waits at least that long. A node that
	// asks it is overloaded, as if Overloaded were set.
	RetryAfter time.Duration
	// Overloaded says the node asked the caller to slow down (over HTTP,
	// a 429): the coordinator waits at least DefaultBackoffBase before
	// retrying, and a Limiter running the job cuts its concurrency.
	Overloaded bool
	// Fence is, for EStale, the id's fence the node holds: the next
	// operation's token must be above it.
	Fence Token
}

// Error returns the message; without one, the code and the cause.
func (e *Error) Error() string {
	switch {
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return string(e.Code) + ": " + e.Err.Error()
	}
	return string(e.Code)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's class.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.RetryAfter == 0 && !t.Overloaded && t.Fence == "" && t.Code == e.Code
}

// Sentinels, one per class, for errors.Is.
var (
	ErrExists      = &Error{Code: EExists}
	ErrNotFound    = &Error{Code: ENotFound}
	ErrRejected    = &Error{Code: ERejected}
	ErrTransient   = &Error{Code: ETransient}
	ErrUnavailable = &Error{Code: EUnavailable}
	ErrFenced      = &Error{Code: EFenced}
	ErrStale       = &Error{Code: EStale}
	ErrUnsupported = &Error{Code: EUnsupported}
	ErrInvalid     = &Error{Code: EInvalid}
)

// Errorf returns an *Error with the given code and formatted message. A %w
// verb sets the cause.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil,
// and EInternal for an error that carries no code.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EInternal
}

// IsRetryable reports whether retrying the request that returned err may
// get another answer: the request certainly was not applied (EUnavailable),
// or nothing says what happened (ETransient, or an error without a code).
// It is the rule of the coordinator's one retry loop.
func IsRetryable(err error) bool { return mayRetry(err) }

// IsAmbiguous reports whether a write that returned err may have been applied:
// true for ETransient and for errors that carry no code.
func IsAmbiguous(err error) bool {
	c := ErrorCode(err)
	return c == ETransient || c == EInternal
}

// retryAfter returns the wait the node asked for in err, if any.
func retryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}
