package core

import (
	"errors"
	"fmt"
	"time"

	"github.com/reliable-ops/rops/core/breaker"
)

// ErrBreakerOpen is the cause of the EUnavailable error of a request a
// Breaker refused: it was not sent.
var ErrBreakerOpen = errors.New("breaker open")

// admit asks b whether a request to node may be sent at now: nil, or the
// EUnavailable error of a request not sent (see package breaker).
func admit(b *breaker.Breaker, node string, now time.Time) error {
	ok, why := b.Admit(node, now)
	if ok {
		return nil
	}
	return &Error{Code: EUnavailable, Err: ErrBreakerOpen, Message: fmt.Sprintf(
		"%s: not sent: the node left %d requests in a row unsent over %v; the breaker lets requests through again in %v",
		node, why.Failures, why.Over.Round(time.Millisecond), why.ReopensIn.Round(time.Millisecond))}
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
