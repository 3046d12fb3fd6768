package core

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff says how long to wait before the next retry, and whether to retry
// at all. It has the method set of github.com/sethvargo/go-retry's Backoff, so
// a go-retry backoff can be handed to the coordinator as it is: the rops CLI
// builds both of its backoffs (Config.NewBackoff and
// Config.NewCompensationBackoff) with go-retry, while core, which imports
// only the standard library, keeps Exponential as the default for embedders.
// A Backoff keeps state: the coordinator builds a fresh one for every node
// of every operation.
type Backoff interface {
	// Next returns the next delay, or stop = true to stop retrying (as in
	// go-retry, the second result means stop, not ok).
	Next() (next time.Duration, stop bool)
}

// BackoffFunc adapts a function to Backoff.
type BackoffFunc func() (time.Duration, bool)

// Next calls f.
func (f BackoffFunc) Next() (next time.Duration, stop bool) { return f() }

// Exponential returns a Backoff that waits base, 2*base, 4*base, ... capped at
// max, each delay drawn uniformly from its upper half ("equal jitter") using
// rng, for at most retries retries (retries < 0: no limit). A nil rng means no
// jitter. An rng shared between goroutines must be safe for concurrent use,
// as one over NewLockedSource is. It is the Coordinator's default, for
// embedders that bring no backoff of their own; a seeded rng makes its
// delays replay exactly, as the simulation needs.
func Exponential(base, max time.Duration, retries int, rng *rand.Rand) Backoff {
	return &exponential{base: base, max: max, left: retries, rng: rng}
}

type exponential struct {
	base, max time.Duration
	left      int
	next      time.Duration
	rng       *rand.Rand
}

func (b *exponential) Next() (next time.Duration, stop bool) {
	if b.left == 0 {
		return 0, true
	}
	if b.left > 0 {
		b.left--
	}
	if b.next == 0 {
		b.next = b.base
	}
	d := min(b.next, b.max)
	if b.next < b.max {
		// Doubling past max/2 would only be capped, and may overflow.
		if b.next > b.max/2 {
			b.next = b.max
		} else {
			b.next *= 2
		}
	}
	if b.rng != nil && d > 1 {
		d = d/2 + time.Duration(b.rng.Int64N(int64(d/2)+1))
	}
	return d, false
}

// DefaultFirstRetry is how soon the first retry of a request comes after a
// failure that is no sign of load (a node's random error, a lost answer):
// about one loopback round trip, where DefaultBackoffBase is many.
const DefaultFirstRetry = time.Millisecond

// QuickFirst returns a Backoff whose first retry comes after
// DefaultFirstRetry, then b's delays: most failures of a healthy node are
// one-off, and a full DefaultBackoffBase after each of them would be most of
// an operation's time. The first retry does not count against b's limit, so
// wrap QuickFirst in the limit (go-retry's WithMaxRetries) to keep the
// count. The driver never retries sooner than the failed request took, nor
// before the wait the node asked for (Error.RetryAfter), nor that soon
// after an overload signal or an unreachable node, so a slow, overloaded or
// down node is still backed off.
func QuickFirst(b Backoff) Backoff {
	done := false
	return BackoffFunc(func() (time.Duration, bool) {
		if !done {
			done = true
			return DefaultFirstRetry, false
		}
		return b.Next()
	})
}

// pace is the least wait before a retry of a request that failed with err
// after took, whatever the backoff says: never sooner than the failure
// took, as a node slow to fail is one under load, and never at once after
// an overload signal (a node asking to slow down, a timeout: isOverload)
// nor after a node was unreachable or said it is down (EUnavailable), which
// a retry at once would not change.
// It is bounded by DefaultBackoffCap, so a timed-out request is not
// followed by as long a wait.
func pace(err error, took time.Duration) time.Duration {
	d := min(took, DefaultBackoffCap)
	if signOfLoad(err) {
		d = max(d, DefaultBackoffBase)
	}
	return d
}

// signOfLoad reports whether err says the node may be in trouble, so that
// a retry at once would not help: an overload signal (isOverload), or a
// node unreachable or saying it is down (EUnavailable).
func signOfLoad(err error) bool {
	return isOverload(err) || ErrorCode(err) == EUnavailable
}

// NewLockedSource returns a seeded random source that is safe for concurrent
// use, so one seeded *rand.Rand can serve every goroutine of a run and the run
// stays reproducible from its seed.
func NewLockedSource(seed uint64) rand.Source {
	return &lockedSource{src: rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)}
}

type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

func (s *lockedSource) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Uint64()
}
