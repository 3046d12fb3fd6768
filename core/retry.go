package core

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// The one retry loop. Every request rops sends to a node goes out through
// call (stream, for a scan), which asks the Breaker first, and is retried
// by retry under one rule, whoever sends it: an operation's state machine,
// Recover's reads, Stats' listings and counts, Holders.
//
//   - Only an answer that a retry may change is retried: one that classify
//     calls notSent or ambiguous (EUnavailable, ETransient, or an error
//     without a code). The caller's f says so by returning retryable(err),
//     as go-retry's RetryableError does.
//   - The wait before a retry is the backoff's, but never less than the
//     failed request took, nor than DefaultBackoffBase after an overload
//     signal or an unreachable node (pace), nor than the wait the node
//     asked for (Error.RetryAfter).
//   - While the node answers other requests, a failure that is no sign of
//     load (a 500, a 408, a lost answer) is retried after DefaultFirstRetry
//     whatever the backoff says (quick): the node is up and taking work,
//     so the failure was this request's luck, and waiting out a backoff
//     meant for a node in trouble would only stretch the job's tail. The
//     backoff still counts the retry, and its delays come back as soon as
//     a failure finds the node answering nothing else, or after
//     quickRetries quick ones: a request that fails that often on a node
//     that answers others is no longer luck (at 0.2, one in ten million),
//     and an undo, which no count bounds, must not be sent a thousand
//     times a second until its timeout.
//   - A node the breaker refuses is not retried: nothing would be sent.
//   - It stops when the backoff says stop or ctx ends, with a *gaveUp
//     error that says why and wraps the last failure.
//
// Its shape is go-retry's DoValue; the backoff and the clock are the
// Coordinator's, so the simulation replays it exactly.

// quickRetries bounds the retries of one request that retry makes quick.
const quickRetries = DefaultRetries

// retryableError marks an error that f wants retried.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// retryable marks err as worth a retry, if it is one a retry may change
// (see mayRetry); nil stays nil.
func retryable(err error) error {
	if !mayRetry(err) {
		return err
	}
	return &retryableError{err}
}

// mayRetry reports whether a retry may change the answer err: the request
// was not applied for certain (notSent), or nothing says what happened
// (ambiguous).
func mayRetry(err error) bool {
	ev := classify(err)
	return err != nil && (ev == evNotSent || ev == evAmbiguous)
}

// gaveUp is the error of a retry loop that stopped while its request's
// answer could still change: why, and the last failure. If the breaker
// refused the last attempt, err is the failure of the last request sent
// (what the user needs to know: connection refused), and refused the
// breaker's; it wraps both.
type gaveUp struct {
	err     error
	why     string
	refused error
}

func (e *gaveUp) Error() string { return fmt.Sprintf("%v (%s)", e.err, e.why) }

func (e *gaveUp) Unwrap() []error {
	if e.refused == nil {
		return []error{e.err}
	}
	return []error{e.err, e.refused}
}

// retry calls f until it returns an error not marked retryable (or none),
// then returns what f returned; or, once the backoff says stop, ctx ends
// or the breaker refuses the node, the last value and a *gaveUp error.
// attempt counts f's calls from 0. newBackoff is called at the first
// failure, not before: most requests need none. answers, if not nil,
// counts the node's answers (see Coordinator.answered), for quick.
func retry[T any](ctx context.Context, clock Clock, answers *atomic.Uint64, newBackoff func() Backoff, f func(ctx context.Context, attempt int) (T, error)) (T, error) {
	var bo Backoff
	var lastSent error // the failure of the last request sent, not refused
	quick := 0         // the retries made quick
	for attempt := 0; ; attempt++ {
		sent := clock.Now()
		var before uint64
		if answers != nil {
			before = answers.Load()
		}
		v, err := f(ctx, attempt)
		re, ok := err.(*retryableError)
		if !ok {
			return v, err
		}
		err = re.err
		why := ""
		switch {
		case ctx.Err() != nil:
			why = "gave up: " + context.Cause(ctx).Error()
		case errors.Is(err, ErrBreakerOpen):
			// The node is down: retrying until the timeout would only
			// delay the report, which names what the node last said.
			why = "not retried while the node is down"
			if lastSent != nil {
				return v, &gaveUp{err: lastSent, why: why, refused: err}
			}
		default:
			if bo == nil {
				bo = newBackoff()
			}
			d, stop := bo.Next()
			if stop {
				why = "retries exhausted"
				break
			}
			if answers != nil && answers.Load() != before && !signOfLoad(err) && quick < quickRetries {
				d = min(d, DefaultFirstRetry)
				quick++
			}
			if clock.Sleep(ctx, max(d, retryAfter(err), pace(err, clock.Now().Sub(sent)))) == nil {
				lastSent = err
				continue
			}
			why = "gave up: " + context.Cause(ctx).Error()
		}
		return v, &gaveUp{err: err, why: why}
	}
}

// fetch sends f, one request to node outside a state machine, through call,
// retried by retry with a fresh backoff: the way Stats, Holders and
// Recover's reads are sent.
func fetch[T any](ctx context.Context, r *opRun, node Node, f func(ctx context.Context) (T, error)) (T, error) {
	return retry(ctx, r.c.cfg.Clock, r.c.answered(node), r.c.cfg.NewBackoff, func(ctx context.Context, attempt int) (T, error) {
		var v T
		err := r.call(ctx, node, attempt > 0, func(ctx context.Context) error {
			var err error
			v, err = f(ctx)
			return err
		})
		return v, retryable(err)
	})
}
