package core

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// AutoConcurrency, given as a bulk job's concurrency, lets a Limiter choose
// it: the job starts at DefaultConcurrency and adapts between 1 and
// MaxConcurrency.
const AutoConcurrency = 0

// Sample is what one finished operation tells a Limiter.
type Sample struct {
	// Latency is how long the operation took.
	Latency time.Duration
	// Clean is set when no request of the operation was retried, so that
	// Latency is the nodes' own and holds no backoff.
	Clean bool
	// Overload is set when a node said it was overloaded (429, a 503 with
	// Retry-After) or a request timed out.
	Overload bool
}

// Limiter decides how many operations run at once, in the family of TCP
// Vegas and Netflix's gradient limiters: it doubles the limit while the
// median latency of a window of clean operations stays near the lowest
// seen, grows it by its square root after the first sign of queueing, and
// cuts it when latency stays up two windows in a row or a node reports
// overload. Failures that say nothing about load (a
// 500, a 408) are not signals: an operation that retried gives no latency
// sample. It is safe for concurrent use.
type Limiter struct {
	mu        sync.Mutex
	limit     float64
	max       float64
	floor     float64 // the lowest limit rising latency alone can set
	inflight  int
	wake      chan struct{} // closed and replaced when a slot may have freed
	slowStart bool
	cooldown  int // samples before another overload cut, one per op in flight
	stale     int // samples still to come from operations started under the last limit

	window []time.Duration // the latency of the clean samples in the current window
	high   bool            // the last window's latency was over the tolerance
	minRTT time.Duration   // lowest window median: the latency without load
}

// limiterMinWindow is the fewest clean samples a latency window holds, so
// that its median is not one operation's luck.
const limiterMinWindow = 32

// limiterTolerance is how far a window's average latency may rise over the lowest
// seen before the Limiter takes it for queueing.
const limiterTolerance = 2.0

// NewLimiter returns a Limiter starting at initial operations at once and
// never above ceiling (nor below 1). Rising latency alone never takes it
// below initial; overload signals can, down to 1.
func NewLimiter(initial, ceiling int) *Limiter {
	ceiling = max(ceiling, 1)
	start := float64(min(max(initial, 1), ceiling))
	return &Limiter{limit: start, max: float64(ceiling), floor: start, slowStart: true, wake: make(chan struct{})}
}

// Limit returns how many operations may run at once now.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// Acquire waits until fewer than Limit operations run and counts one more.
// It returns ctx.Err() if ctx ends first. Every nil return must be matched
// by one Release.
func (l *Limiter) Acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.inflight < int(l.limit) {
			l.inflight++
			l.mu.Unlock()
			return nil
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release counts one operation done and learns from s.
func (l *Limiter) Release(s Sample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	l.learn(s)
	close(l.wake)
	l.wake = make(chan struct{})
}

func (l *Limiter) learn(s Sample) {
	if l.cooldown > 0 {
		l.cooldown--
	}
	if s.Overload {
		// One cut per round of operations in flight, as TCP cuts once per
		// round trip: the others that saw the same overload started before
		// the cut.
		if l.cooldown == 0 {
			l.setLimit(l.limit * 0.75)
			l.slowStart = false
			l.cooldown = l.inflight + 1
		}
		return
	}
	if l.stale > 0 {
		l.stale--
		return
	}
	if !s.Clean {
		return
	}
	l.window = append(l.window, s.Latency)
	// A window of half the limit: long enough to average out noise, short
	// enough to follow the limit it measures.
	if len(l.window) < max(limiterMinWindow, int(l.limit)/2) {
		return
	}
	// The median, not the mean: a synced journal's or a busy machine's
	// latency has rare spikes many times the usual, which say nothing
	// about the load the limit puts on the nodes.
	slices.Sort(l.window)
	avg := l.window[len(l.window)/2]
	l.window = l.window[:0]
	if l.minRTT == 0 || avg < l.minRTT {
		l.minRTT = avg
	}
	ratio := float64(avg) / float64(max(l.minRTT, 1))
	high := ratio > limiterTolerance
	wasHigh := l.high
	l.high = high
	switch {
	case high && !wasHigh:
		// One window can be a spike of the machine's: hold the limit and
		// look again. Queueing the limit caused persists.
		l.slowStart = false
	case high:
		// Latency on a busy machine also rises for reasons of its own, so
		// it alone never takes the limit below where it started; only a
		// node's own overload signal does.
		l.setLimit(max(l.floor, l.limit*max(0.5, min(0.9, limiterTolerance/ratio))))
	case l.slowStart:
		l.setLimit(l.limit * 2)
	default:
		l.setLimit(l.limit + math.Sqrt(l.limit))
	}
}

// setLimit sets the limit to v within bounds and starts a new latency
// window once the operations started under the old limit have ended.
func (l *Limiter) setLimit(v float64) {
	l.limit = max(1, min(v, l.max))
	l.stale = l.inflight
	l.window = l.window[:0]
}
