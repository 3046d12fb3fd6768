// Package breaker keeps the coordinator from spending a whole retry budget on a
// node that is down. Without one, every operation that needs a down node
// retries it until its timeout: an undo until CompensationTimeout (30 s), so
// that Recover with 1000 leftover intents and a node down takes an hour.
// With one, once the node has failed Failures requests in a row over at
// least Window, each "not sent" (core's EUnavailable: refused, unreachable,
// or a rops node that says it is down), the breaker opens: requests to the node
// are not sent, and the node's part of an operation gives up at once (the
// operation is rolled back, or pending). After Cooldown requests go through
// again; the first answer closes the breaker, the first "not sent" opens it
// again.
//
// Only an answer counts against a node: a timeout or a 5xx shows the node
// reachable and closes the breaker. A request the breaker refuses was never
// sent, so it is certainly not applied, which is what core's "notSent" means:
// the state machine keeps what it knew (a write that may have landed stays
// maybeWritten), and the breaker never makes an ambiguous outcome certain.
// It imports only the standard library; core consults it before every
// request (core.Config.Breaker).
package breaker

import (
	"cmp"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultFailures = 5
	DefaultWindow   = time.Second
	DefaultCooldown = 2 * time.Second
)

// Options configures a Breaker; zero fields take the defaults.
type Options struct {
	// Failures is how many requests in a row a node must leave unsent
	// before the breaker opens. Default DefaultFailures.
	Failures int
	// Window is how long, at least, from the first of those failures: a
	// blip of a few refused connections is retried as usual. Default
	// DefaultWindow.
	Window time.Duration
	// Cooldown is how long an open breaker refuses requests before it lets
	// them through again to try the node. Default DefaultCooldown.
	Cooldown time.Duration
}

// Breaker fails requests fast to nodes that are down; see Options. It
// keeps one circuit per node name, so one Breaker serves one set of nodes.
// Its methods take the time from the caller's clock. A nil *Breaker admits
// every request and records nothing. It is safe for concurrent use.
type Breaker struct {
	opts     Options
	mu       sync.Mutex
	circuits map[string]*circuit
}

// New returns a Breaker with every circuit closed.
func New(opts Options) *Breaker {
	opts.Failures = cmp.Or(opts.Failures, DefaultFailures)
	opts.Window = cmp.Or(opts.Window, DefaultWindow)
	opts.Cooldown = cmp.Or(opts.Cooldown, DefaultCooldown)
	return &Breaker{opts: opts, circuits: map[string]*circuit{}}
}

// Options returns b's options, defaults filled in.
func (b *Breaker) Options() Options { return b.opts }

// Refused returns how many requests to node b has refused.
func (b *Breaker) Refused(node string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.circuits[node]; c != nil {
		return c.refused
	}
	return 0
}

// Refusal says why a request was refused: the node left Failures requests
// in a row unsent over Over, and the breaker lets requests through again
// in ReopensIn. Last is the failure of the last of them that Fail kept,
// if any: what the node said, or why it could not be reached.
type Refusal struct {
	Failures  int
	Over      time.Duration
	ReopensIn time.Duration
	Last      error
}

// Admit reports whether a request to node may be sent at now, and if not,
// why.
func (b *Breaker) Admit(node string, now time.Time) (bool, Refusal) {
	if b == nil {
		return true, Refusal{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.circuit(node)
	if c.admit(now, b.opts) {
		return true, Refusal{}
	}
	return false, Refusal{Failures: c.failures, Over: c.opened.Sub(c.since), ReopensIn: c.opened.Add(b.opts.Cooldown).Sub(now), Last: c.last}
}

// Observe records the outcome at now of a request sent to node:
// unreachable if it could not be sent (refused, no route, or the node said
// it is down), false for any answer, a timeout included.
func (b *Breaker) Observe(node string, now time.Time, unreachable bool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.circuit(node).observe(now, unreachable, b.opts)
}

// Fail is Observe(node, now, true) that also keeps err, the failure of the
// request that could not be sent, for the Refusals that follow to name
// (Refusal.Last).
func (b *Breaker) Fail(node string, now time.Time, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.circuit(node)
	c.observe(now, true, b.opts)
	c.last = err
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
	last     error     // the failure Fail kept last, if any
}

// admit reports whether a request may be sent at now.
func (c *circuit) admit(now time.Time, o Options) bool {
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
func (c *circuit) observe(now time.Time, notSent bool, o Options) {
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
