package core

import (
	"slices"
	"sync"
	"time"

	"github.com/reliable-ops/rops/history"
)

// simHistory is a schedule's history in the format of package history, for
// the judge from outside (issue 18): every operation a process ran, with its
// call and return on the bubble's clock (no return if it is pending or its
// process died first), and a read of every id whose nodes agree at each
// verification, unless the Checker holds it pending (an operation whose
// outcome Recover has yet to settle: a read could see a write that Recover
// then undoes, an effect the history cannot show), on each node. history.Verify judges it
// at the end of the schedule, as a second judge beside the Checker.
type simHistory struct {
	mu    sync.Mutex
	start time.Time
	procs map[string]int // process numbers, by name
	ops   []history.Op
	last  time.Duration // the last time handed out
}

func newSimHistory() *simHistory {
	return &simHistory{start: time.Now(), procs: map[string]int{}}
}

// now returns the bubble's time since the history's start, made to
// increase at every call: the bubble's clock stands still while
// goroutines run, so what is observed later gets a later time (an
// operation called after another returned is after it), as the reads of
// a snapshot do.
func (h *simHistory) now() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tick()
}

// tick is now with h.mu held.
func (h *simHistory) tick() time.Duration {
	h.last = max(time.Since(h.start), h.last+1)
	return h.last
}

// op records an operation of process proc called at call, with res as its
// report; a pending res (or a process that died) has no return.
func (h *simHistory) op(proc string, op Op, id GroupID, call time.Duration, res Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := history.Op{Kind: history.Kind(op), Process: h.proc(proc), ID: string(id), Call: call,
		Outcome: history.Outcome(res.Outcome), Return: h.tick(), Token: string(res.Token)}
	if res.Outcome == Pending || res.Outcome == "" {
		o.Outcome, o.Return = history.Pending, history.NoReturn
	}
	h.ops = append(h.ops, o)
}

// reads records, for each id in ids that chk does not hold pending, a
// read of it on each node, as a user reading every node would: present
// where holders says the node holds it, absent elsewhere, one node after
// the other, twice. Nodes that disagree cannot both be right, so an id left on
// some nodes only, with nothing pending on it, fails the judge as the
// Checker's divergent does.
func (h *simHistory) reads(ids []GroupID, nodes []string, holders func(GroupID) map[string]Token, chk *Checker) {
	pending := map[GroupID]bool{}
	for _, id := range chk.Pending() {
		pending[id] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if pending[id] {
			continue
		}
		held := holders(id)
		// Twice over: a pending operation that takes effect between two
		// nodes' reads of one pass cannot take effect again in the next.
		for _, n := range slices.Concat(nodes, nodes) {
			out := history.Absent
			if _, ok := held[n]; ok {
				out = history.Present
			}
			// One after the other: the bubble's clock stands still while
			// the nodes are read, so they are a snapshot, which any order
			// of its reads describes; at one instant, present and absent
			// reads could all be explained by one pending operation
			// taking effect among them.
			call := h.tick()
			h.ops = append(h.ops, history.Op{Kind: history.Read, Process: 0, ID: string(id), Outcome: out, Call: call, Return: h.tick()})
		}
	}
}

// proc returns the number of the process named name; call it with h.mu
// held. The reader is 0.
func (h *simHistory) proc(name string) int {
	n, ok := h.procs[name]
	if !ok {
		n = len(h.procs) + 1
		h.procs[name] = n
	}
	return n
}

// verify judges the history, and returns what history.Verify found.
func (h *simHistory) verify() (history.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return history.Verify(h.ops)
}
