package pool

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
// seen, and grows it by its square root after the first sign of queueing.
// Once latency has stayed up two windows in a row it weighs throughput,
// estimated by Little's law (operations in flight over their mean
// latency): it moves the limit down, and keeps the cut if throughput
// barely fell (the queueing bought nothing, as on an overloaded node), or
// goes back and tries up, keeping a rise that bought throughput (as
// batching nodes and backoff waits give). A node's overload signal (429, a
// 503 with Retry-After, a timeout) cuts it at once. Failures that say
// nothing about load (a 500, a 408) are not signals: an operation that
// retried gives no latency sample, only its share of the throughput. It is
// safe for concurrent use.
type Limiter struct {
	mu         sync.Mutex
	limit      float64
	max        float64
	floor      float64 // the lowest limit rising latency alone can set
	inflight   int
	wake       chan struct{} // closed and replaced when a slot may have freed
	waiting    bool          // a caller of Acquire waits on wake
	slowStart  bool
	overloaded bool // a node's overload signal has cut the limit
	cooldown   int  // samples before another overload cut, one per op in flight
	stale      int  // samples still to come from operations started under the last limit

	window []time.Duration // the latency of the clean samples in the current window
	high   bool            // the last window's latency was over the tolerance
	minRTT time.Duration   // lowest window median: the latency without load

	// Throughput of the current window by Little's law: the sums of the
	// operations in flight at each release and of every operation's latency.
	ops         int
	sumInflight float64
	sumLatency  time.Duration
	move        int     // a move made at a high latency, to judge: +1 up, -1 down, 0 none
	moveFrom    float64 // the limit before that move
	moveBase    float64 // the throughput (operations per second) before that move
	up          bool    // the next move at a high latency goes up (the last one down did not pay)
	hold        int     // windows at a high latency to wait before the next move
}

// limiterMinWindow is the fewest clean samples a latency window holds, so
// that its median is not one operation's luck.
const limiterMinWindow = 32

// limiterTolerance is how far a window's average latency may rise over the lowest
// seen before the Limiter takes it for queueing.
const limiterTolerance = 2.0

// At a high latency the limit moves by limiterStep, up or down, and the
// next window judges the move against what throughput would do if it
// followed the limit in proportion: a move up is kept if throughput gained
// limiterUpGain of that, a move down if it lost no more than
// limiterDownLoss of it (the queueing it removed bought little). After a
// move that did not pay, limiterHold windows pass before the next.
const (
	limiterStep     = 1.5
	limiterUpGain   = 0.2
	limiterDownLoss = 0.4
	limiterHold     = 4
)

// NewLimiter returns a Limiter starting at initial operations at once and
// never above ceiling (nor below 1). Rising latency alone never takes it
// below initial (or the floor RaiseFloor sets); overload signals can, down
// to 1.
func NewLimiter(initial, ceiling int) *Limiter {
	ceiling = max(ceiling, 1)
	start := float64(min(max(initial, 1), ceiling))
	return &Limiter{limit: start, max: float64(ceiling), floor: start, slowStart: true, wake: make(chan struct{})}
}

// RaiseFloor raises the least limit that rising latency alone can set to
// floor, and the limit to floor if it is lower, unless a node's overload
// signal has cut the limit already: the node's own word outranks what the
// caller expects of it. A floor at or under the current one changes
// nothing, so it is cheap to call on every operation.
func (l *Limiter) RaiseFloor(floor int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := min(float64(floor), l.max)
	if f <= l.floor || l.overloaded {
		return
	}
	l.floor = f
	if l.limit < f {
		l.setLimit(f)
		l.wakeAll()
	}
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
		l.waiting = true
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
	l.wakeAll()
}

// wakeAll wakes the callers waiting in Acquire, if any, to look at the
// limit again. With none (the usual case while the limit is not reached)
// it does nothing: closing and making a channel on every Release was 2% of
// a job's CPU.
func (l *Limiter) wakeAll() {
	if !l.waiting {
		return
	}
	close(l.wake)
	l.wake = make(chan struct{})
	l.waiting = false
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
			l.slowStart, l.overloaded = false, true
			l.move, l.up = 0, false
			l.cooldown = l.inflight + 1
		}
		return
	}
	if l.stale > 0 {
		l.stale--
		return
	}
	if s.Latency > 0 {
		l.ops++
		l.sumInflight += float64(l.inflight + 1)
		l.sumLatency += s.Latency
	}
	if !s.Clean {
		return
	}
	l.window = append(l.window, s.Latency)
	// Long enough to average out noise, short enough to follow the limit
	// it measures.
	if clean, all := limiterWindow(int(l.limit)); len(l.window) < clean || l.ops < all {
		return
	}
	// The median, not the mean: a synced journal's or a busy machine's
	// latency has rare spikes many times the usual, which say nothing
	// about the load the limit puts on the nodes.
	slices.Sort(l.window)
	avg := l.window[len(l.window)/2]
	// Little's law: throughput is the operations in flight over their
	// latency, here every operation's, retried or not.
	throughput := l.sumInflight / l.sumLatency.Seconds()
	if l.minRTT == 0 || avg < l.minRTT {
		l.minRTT = avg
	}
	ratio := float64(avg) / float64(max(l.minRTT, 1))
	high := ratio > limiterTolerance
	wasHigh := l.high
	l.high = high
	defer l.resetWindow()
	if l.move != 0 && l.judge(high, throughput) {
		return
	}
	switch {
	case !high:
		if l.slowStart {
			l.setLimit(l.limit * 2)
		} else {
			l.setLimit(l.limit + math.Sqrt(l.limit))
		}
	case !wasHigh:
		// One window can be a spike of the machine's: hold the limit and
		// look again. Queueing the limit caused persists.
		l.slowStart = false
	case l.hold > 0:
		l.hold--
	case l.up:
		l.step(+1, throughput)
	default:
		l.step(-1, throughput)
	}
}

// judge decides on the move made at a high latency, from the window that
// followed it: it keeps the move if it paid (more throughput up; as much
// for less queueing down) and goes on the same way while latency stays up,
// or else goes back and tries the other way later. A cut always brings
// latency down, so it is judged by throughput even if latency is flat now.
// It reports whether it set the limit.
func (l *Limiter) judge(high bool, throughput float64) bool {
	change := l.limit/l.moveFrom - 1
	paid := throughput >= l.moveBase*(1+limiterUpGain*change)
	if l.move < 0 {
		paid = throughput >= l.moveBase*(1+limiterDownLoss*change)
	}
	switch {
	case !paid:
		l.setLimit(l.moveFrom)
		l.up = l.move < 0
		l.move = 0
		l.hold = limiterHold
		return true
	case high:
		l.step(l.move, throughput)
		return true
	}
	l.move = 0
	return false
}

// step moves the limit up (dir > 0) or down by limiterStep and remembers
// where it was and the throughput that gave, so that the next window can
// judge the move. A move that cannot be made (at the cap, or at the floor
// that rising latency alone may not cross) holds instead.
func (l *Limiter) step(dir int, throughput float64) {
	from := l.limit
	next := l.limit * limiterStep
	if dir < 0 {
		// Latency on a busy machine also rises for reasons of its own, so
		// this never takes the limit below where it started; only a node's
		// own overload signal does.
		next = max(l.floor, l.limit/limiterStep)
	}
	l.slowStart = false
	l.move = 0
	l.setLimit(next)
	if l.limit == from {
		l.hold = limiterHold
		return
	}
	l.move, l.moveFrom, l.moveBase = dir, from, throughput
}

// limiterWindow returns how many clean samples, and how many samples in all,
// a window at limit holds before it is judged: half the limit's worth of
// clean latencies, and one limit's worth of operations for the throughput.
func limiterWindow(limit int) (clean, all int) {
	return max(limiterMinWindow, limit/2), limit
}

func (l *Limiter) resetWindow() {
	l.window = l.window[:0]
	l.ops, l.sumInflight, l.sumLatency = 0, 0, 0
}

// setLimit sets the limit to v within bounds and starts a new latency
// window once the operations started under the old limit have ended.
func (l *Limiter) setLimit(v float64) {
	l.limit = max(1, min(v, l.max))
	l.stale = l.inflight
	l.resetWindow()
}
