package core

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/reliable-ops/rops/core/breaker"
)

// ErrBreakerOpen is the cause of the EUnavailable error of a request a
// Breaker refused: it was not sent. The error also wraps the failure of
// the last request the node could not take, if the breaker kept one.
var ErrBreakerOpen = errors.New("breaker open")

// admit asks b whether a request to node may be sent at now: nil, or the
// EUnavailable error of a request not sent (see package breaker), in the
// user's words: "node02 did not answer 9 requests in a row: node02 is down
// (connection refused); rops stops sending to it for 1.5s, then tries
// again".
func admit(b *breaker.Breaker, node string, now time.Time) error {
	ok, why := b.Admit(node, now)
	if ok {
		return nil
	}
	said := ""
	cause := ErrBreakerOpen
	if why.Last != nil {
		said = ": " + failureReason(why.Last)
		cause = errors.Join(ErrBreakerOpen, why.Last)
	}
	wait := why.ReopensIn.Round(100 * time.Millisecond)
	if wait <= 0 {
		wait = why.ReopensIn.Round(time.Millisecond)
	}
	return &Error{Code: EUnavailable, Err: cause, Message: fmt.Sprintf(
		"%s did not answer %d requests in a row%s; rops stops sending to it for %v, then tries again",
		node, why.Failures, said, wait)}
}

// failureReason is what a request that could not be sent met, briefly:
// the system's error of a dial (connection refused), else the whole
// error, which names the node ("node02 is down").
func failureReason(err error) string {
	if errno, ok := errors.AsType[syscall.Errno](err); ok {
		return errno.Error()
	}
	return err.Error()
}

// observe tells b at now how a request sent to node ended: err, nil for
// an answer. A failure that says the node cannot be reached is kept for
// the breaker's refusals to name (see admit).
func observe(b *breaker.Breaker, node string, now time.Time, err error) {
	if unreachable(err) {
		b.Fail(node, now, err)
		return
	}
	b.Observe(node, now, false)
}

// unreachable reports whether err says a node cannot be reached, for the
// breaker: an EUnavailable that is not the node's own answer asking the
// caller to wait (a store whose tombstones are full answers so: it is up,
// and a retry after the wait it asked for goes through, where a breaker
// would give up).
func unreachable(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Code == EUnavailable && !e.Overloaded && e.RetryAfter == 0
}
