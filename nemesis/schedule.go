package nemesis

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Bounds bound the windows of a schedule and the gaps before them.
type Bounds struct {
	MinWindow, MaxWindow time.Duration
	MinGap, MaxGap       time.Duration
}

// DefaultBounds are windows of 0.5 s to 3 s with gaps of 0.5 s to 2 s:
// long enough that a paused or killed node outlasts a request's timeout
// and retries, short enough that a run of tens of seconds sees several.
var DefaultBounds = Bounds{MinWindow: 500 * time.Millisecond, MaxWindow: 3 * time.Second, MinGap: 500 * time.Millisecond, MaxGap: 2 * time.Second}

// minScaled is the shortest window or gap BoundsFor gives.
const minScaled = 100 * time.Millisecond

// BoundsFor returns DefaultBounds scaled to a run expected to last run:
// no window or gap longer than an eighth of it (but 100 ms at least), so
// that a short run sees several, and minimums at most half the maximums,
// so that lengths vary; in whole milliseconds.
func BoundsFor(run time.Duration) Bounds {
	limit := max(run/8, minScaled).Round(time.Millisecond)
	b := DefaultBounds
	b.MaxWindow, b.MaxGap = min(b.MaxWindow, limit), min(b.MaxGap, limit)
	b.MinWindow = min(b.MinWindow, (b.MaxWindow / 2).Round(time.Millisecond))
	b.MinGap = min(b.MinGap, (b.MaxGap / 2).Round(time.Millisecond))
	return b
}

// Validate says what is wrong with b, if anything.
func (b Bounds) Validate() error {
	switch {
	case b.MinWindow <= 0 || b.MaxWindow < b.MinWindow:
		return fmt.Errorf("windows of %v to %v: give 0 < min <= max", b.MinWindow, b.MaxWindow)
	case b.MinGap < 0 || b.MaxGap < b.MinGap:
		return fmt.Errorf("gaps of %v to %v: give 0 <= min <= max", b.MinGap, b.MaxGap)
	}
	return nil
}

// String describes b, such as "windows 0.5s-3s, gaps 0.5s-2s".
func (b Bounds) String() string {
	return fmt.Sprintf("windows %v-%v, gaps %v-%v", b.MinWindow, b.MaxWindow, b.MinGap, b.MaxGap)
}

// Plan is one window of a schedule, before it happens.
type Plan struct {
	N      int // 1 first
	Fault  Fault
	Node   string
	Gap    time.Duration // wait this long after the previous window (or the start)
	Length time.Duration // then strike for this long
}

// String describes p, such as "window 3: kill node02 for 1.2s after 800ms".
func (p Plan) String() string {
	return fmt.Sprintf("window %d: %s %s for %v after %v", p.N, p.Fault, p.Node, p.Length, p.Gap)
}

// Schedule draws a run's windows from its seed: which fault, on which
// node, after what gap and for how long. The same seed, faults, nodes and
// bounds give the same plans, whatever happens while they run. Faults come
// in rounds, each a seeded shuffle of them all, so that every fault strikes
// within the first len(faults) windows. It is not safe for concurrent use.
type Schedule struct {
	rng     *rand.Rand
	faults  []Fault
	targets map[Fault][]string
	b       Bounds
	round   []Fault // what is left of the current round
	n       int
}

// NewSchedule returns the schedule of seed. faults and nodes must not be
// empty, and b must be valid.
func NewSchedule(seed uint64, faults []Fault, nodes []string, b Bounds) *Schedule {
	targets := map[Fault][]string{}
	for _, f := range faults {
		targets[f] = nodes
	}
	return NewScheduleOf(seed, faults, targets, b)
}

// NewScheduleOf returns the schedule of seed, each fault striking one of
// its own targets (nodes for a node's faults, coordinators for a
// coordinator's): none empty. With every fault on the same targets, it is
// NewSchedule's.
func NewScheduleOf(seed uint64, faults []Fault, targets map[Fault][]string, b Bounds) *Schedule {
	// A stream of its own: the check's workload draws from the same seed.
	return &Schedule{rng: rand.New(rand.NewPCG(seed, 0x4E3E5)), faults: faults, targets: targets, b: b}
}

// Next returns the next window's plan.
func (s *Schedule) Next() Plan {
	if len(s.round) == 0 {
		s.round = append(s.round[:0], s.faults...)
		s.rng.Shuffle(len(s.round), func(i, j int) { s.round[i], s.round[j] = s.round[j], s.round[i] })
	}
	s.n++
	nodes := s.targets[s.round[0]]
	p := Plan{N: s.n, Fault: s.round[0], Node: nodes[s.rng.IntN(len(nodes))]}
	s.round = s.round[1:]
	p.Gap = s.draw(s.b.MinGap, s.b.MaxGap)
	p.Length = s.draw(s.b.MinWindow, s.b.MaxWindow)
	return p
}

// draw returns a duration from lo to hi, in whole milliseconds when the
// range allows, so that printed plans read easily.
func (s *Schedule) draw(lo, hi time.Duration) time.Duration {
	unit := time.Millisecond
	if hi-lo < 10*unit {
		unit = 1
	}
	return lo + time.Duration(s.rng.Int64N(int64((hi-lo)/unit)+1))*unit
}
