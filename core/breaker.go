package core

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A Breaker keeps the coordinator from spending a whole retry budget on a
// node that is down. Without one, every operation that needs a down node
// retries it until its timeout: an undo until CompensationTimeout (30 s), so
// that Recover with 1000 leftover intents and a node down takes an hour.
// With one, once the node has failed Failures requests in a row over at
// least Window, each "not sent" (EUnavailable: refused, unreachable, or a
// rops node that says it is down), the breaker opens: requests to the node
// are not sent, and the node's part of an operation gives up at once (the
// operation is rolled back, or pending). After Cooldown requests go through
// again; the first answer closes the breaker, the first "not sent" opens it
// again.
//
// Only an answer counts against a node: a timeout or a 5xx shows the node
// reachable and closes the breaker. A request the breaker refuses was never
// sent, so it is certainly not applied, which is what evNotSent means: the
// state machine keeps what it knew (a write that may have landed stays
// maybeWritten), and the breaker never makes an ambiguous outcome certain.

// Breaker defaults.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerWindow   = time.Second
	DefaultBreakerCooldown = 2 * time.Second
)

// BreakerOptions configures a Breaker; zero fields take the defaults.
type BreakerOptions struct {
	// Failures is how many requests in a row a node must leave unsent
	// (EUnavailable) before the breaker opens. Default
	// DefaultBreakerFailures.
	Failures int
	// Window is how long, at least, from the first of those failures: a
	// blip of a few refused connections is retried as usual. Default
	// DefaultBreakerWindow.
	Window time.Duration
	// Cooldown is how long an open breaker refuses requests before it lets
	// them through again to try the node. Default DefaultBreakerCooldown.
	Cooldown time.Duration
}

// ErrBreakerOpen is the cause of the EUnavailable error of a request a
// Breaker refused: it was not sent.
var ErrBreakerOpen = errors.New("breaker open")

// Breaker fails requests fast to nodes that are down; see BreakerOptions.
// It keeps one circuit per node name, so one Breaker serves one set of
// nodes (one Coordinator, or several over the same nodes). Its clock is the
// Coordinator's. It is safe for concurrent use.
type Breaker struct {
	opts     BreakerOptions
	mu       sync.Mutex
	circuits map[string]*circuit
}

// NewBreaker returns a Breaker with every circuit closed.
func NewBreaker(opts BreakerOptions) *Breaker {
	opts.Failures = cmp.Or(opts.Failures, DefaultBreakerFailures)
	opts.Window = cmp.Or(opts.Window, DefaultBreakerWindow)
	opts.Cooldown = cmp.Or(opts.Cooldown, DefaultBreakerCooldown)
	return &Breaker{opts: opts, circuits: map[string]*circuit{}}
}

// Options returns b's options, defaults filled in.
func (b *Breaker) Options() BreakerOptions { return b.opts }

// Refused returns how many requests to node b has refused.
func (b *Breaker) Refused(node string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.circuits[node]; c != nil {
		return c.refused
	}
	return 0
}

// admit says whether a request to node may be sent at now: nil, or the
// EUnavailable error of a request not sent. A nil b admits everything.
func (b *Breaker) admit(node string, now time.Time) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.circuit(node)
	if c.admit(now, b.opts) {
		return nil
	}
	return &Error{Code: EUnavailable, Err: ErrBreakerOpen, Message: fmt.Sprintf(
		"%s: not sent: the node left %d requests in a row unsent over %v; the breaker lets requests through again in %v",
		node, c.failures, c.opened.Sub(c.since).Round(time.Millisecond), c.opened.Add(b.opts.Cooldown).Sub(now).Round(time.Millisecond))}
}

// observe records the outcome of a request sent to node: err is its
// error. A nil b records nothing.
func (b *Breaker) observe(node string, now time.Time, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.circuit(node).observe(now, unreachable(err), b.opts)
}

// unreachable reports whether err says a node cannot be reached: an
// EUnavailable that is not the node's own answer asking the caller to wait
// (a store whose tombstones are full answers so: it is up, and a retry
// after the wait it asked for goes through, where a breaker would give up).
func unreachable(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Code == EUnavailable && !e.Overloaded && e.RetryAfter == 0
}

// circuit returns node's circuit; call it with b.mu held.
func (b *Breaker) circuit(node string) *circuit {
	c := b.circuits[node]
	if c == nil {
		c = &circuit{}
		b.circuits[node] = c
	}
	return c
}

// circuitState is where one node's circuit is.
type circuitState uint8

const (
	// closed: requests are sent; failures in a row are counted.
	closed circuitState = iota
	// open: requests are refused until the cooldown is over.
	open
	// trial: the cooldown is over: requests are sent; the next answer
	// closes the circuit, the next "not sent" opens it again.
	trial
)

func (s circuitState) String() string { return [...]string{"closed", "open", "trial"}[s] }

// circuit is one node's breaker state.
type circuit struct {
	state    circuitState
	failures int       // requests in a row not sent
	since    time.Time // when the first of them was seen
	opened   time.Time // when the circuit last opened
	refused  int       // requests refused, in all
}

// admit reports whether a request may be sent at now.
func (c *circuit) admit(now time.Time, o BreakerOptions) bool {
	if c.state == open && now.Sub(c.opened) >= o.Cooldown {
		c.state = trial
	}
	if c.state == open {
		c.refused++
		return false
	}
	return true
}

// observe records a request's outcome at now: notSent, or any answer.
func (c *circuit) observe(now time.Time, notSent bool, o BreakerOptions) {
	switch {
	case !notSent:
		// The node answered (or may have: a timeout): it is reachable.
		c.state, c.failures = closed, 0
	case c.state == trial:
		c.failures++
		c.state, c.opened = open, now
	case c.state == open:
		// Sent before the circuit opened; it changes nothing.
		c.failures++
	default:
		if c.failures == 0 {
			c.since = now
		}
		c.failures++
		if c.failures >= o.Failures && now.Sub(c.since) >= o.Window {
			c.state, c.opened = open, now
		}
	}
}
