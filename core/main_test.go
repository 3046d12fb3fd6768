package core

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind (the
// coordinator starts one per node per operation, or a crew per job, and
// each must end with its operation or job), or if a whole run of the
// package never takes a transition the state machine lists (see untaken).
func TestMain(m *testing.M) {
	taken = func(s state, e event) { takenCount[s][e].Add(1) }
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if code == 0 && wholeRun() {
			if missed := untaken(); len(missed) > 0 {
				fmt.Fprintf(os.Stderr, "FAIL: the tests never took %d transitions of the state machine (core/machine.go): %v\n"+
					"Take each in a test (a scenario or the simulation), or delete it from the table if it cannot happen.\n", len(missed), missed)
				code = 1
			}
		}
		os.Exit(code)
	}))
}

// takenCount counts the transitions the driver took, by state and event.
var takenCount [stNumStates][numEvents]atomic.Int64

// untaken returns the transitions listed in the table that no operation
// took, as "state/event", sorted.
func untaken() []string { return untakenSince(takenCounts{}) }

// takenCounts is a copy of takenCount.
type takenCounts [stNumStates][numEvents]int64

// countTaken returns the counts of takenCount now.
func countTaken() takenCounts {
	var c takenCounts
	for s := range c {
		for e := range c[s] {
			c[s][e] = takenCount[s][e].Load()
		}
	}
	return c
}

// untakenSince returns the transitions listed in the table that no
// operation took since before was counted, as "state/event", sorted.
func untakenSince(before takenCounts) []string {
	var missed []string
	for s, row := range transitions {
		for e := range row {
			if takenCount[s][e].Load() == before[s][e] {
				missed = append(missed, s.String()+"/"+e.String())
			}
		}
	}
	slices.Sort(missed)
	return missed
}

// wholeRun reports whether every test of the package ran, so that every
// transition should have been taken: no -run, -skip or -sim.seed.
func wholeRun() bool {
	for _, name := range []string{"test.run", "test.skip", "sim.seed"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != f.DefValue {
			return false
		}
	}
	return true
}
