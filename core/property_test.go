package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"

	"pgregory.net/rapid"
)

// The property tests run random operation sequences under random faults and
// check the coordinator's guarantee after every operation.
//
// rapid and synctest: every rapid iteration runs in its own synctest bubble
// (rapid.SyncTest), so hangs, request timeouts and backoff run on the
// bubble's fake clock, and rapid still sees failures and shrinks them. All
// draws happen on the bubble's root goroutine; the coordinator's goroutines
// never touch rapid. A failing run prints rapid's seed (-rapid.seed=...), and
// the jitter RNG's seed is one of the drawn values, so the seed alone replays
// it.

var propIDs = []GroupID{"a", "b", "c"}

// model is what the test knows about the nodes.
type model struct {
	// stable holds, per id, the records the nodes hold once everything
	// pending on the id is rolled back: the state after the last operation
	// on it that was not pending.
	stable map[GroupID]map[string]Token
	// pending holds the ids whose last operation was reported pending.
	pending map[GroupID]bool
}

var faultKinds = []fault{pass, errBefore, errAfter, hangBefore, hangAfter, down, reject}

// faultGen draws one fault, mostly none; it shrinks towards none.
var faultGen = rapid.Custom(func(t *rapid.T) fault {
	switch p := rapid.IntRange(0, 99).Draw(t, "p"); {
	case p < 50:
		return pass
	case p < 62:
		return errBefore
	case p < 74:
		return errAfter
	case p < 80:
		return hangBefore
	case p < 86:
		return hangAfter
	case p < 96:
		return down
	default:
		return reject
	}
})

// downGen draws for how many calls a node goes down: mostly not at all,
// sometimes for less than a retry budget, for more, or for longer than
// compensation lasts.
var downGen = rapid.Custom(func(t *rapid.T) int {
	switch p := rapid.IntRange(0, 99).Draw(t, "p"); {
	case p < 85:
		return 0
	case p < 92:
		return 2
	case p < 97:
		return 12
	default:
		return 300
	}
})

// drawFaults sets, for each node, the faults of its next calls (whatever
// they are: forward, read-back or compensation) and how long it is down, as
// rapid draws them.
func drawFaults(t *rapid.T, nodes fakeCluster) {
	for _, n := range nodes {
		q := rapid.SliceOfN(faultGen, 0, 3).Draw(t, "faults of "+n.name)
		downFor := downGen.Draw(t, "down for (calls) "+n.name)
		n.mu.Lock()
		n.queue = append(n.queue, q...)
		n.downFor += downFor
		n.mu.Unlock()
	}
}

func TestPropertyOperationsUnderFaults(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rapid.SyncTest(t, func(t *rapid.T) { runModel(t) })
	})
}

func runModel(t *rapid.T) {
	seed := rapid.Uint64().Draw(t, "jitter seed")
	nodes := newCluster(3)
	for _, n := range nodes {
		n.noReplay = rapid.Bool().Draw(t, "no replay on "+n.name)
	}
	j := &fakeJournal{}
	c, err := New(Config{Nodes: nodes.nodes(), Journal: j, Rand: rand.New(NewLockedSource(seed))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	m := model{stable: map[GroupID]map[string]Token{}, pending: map[GroupID]bool{}}
	for _, id := range propIDs {
		m.stable[id] = map[string]Token{}
	}

	steps := rapid.IntRange(1, 20).Draw(t, "steps")
	for step := range steps {
		op := rapid.SampledFrom([]Op{OpCreate, OpDelete}).Draw(t, "op")
		id := rapid.SampledFrom(propIDs).Draw(t, "id")
		drawFaults(t, nodes)
		cancelMidway := rapid.IntRange(0, 5).Draw(t, "cancel midway (0)") == 0

		pre := nodes.holders(id)
		wasPending := m.pending[id]
		calls := nodes.totalCalls()
		res := runOp(c, op, id, cancelMidway)
		where := fmt.Sprintf("step %d: %s %s (token %s) -> %s, err %v; nodes %v", step, op, id, res.Token, res.Outcome, res.Err, nodes)

		if got, want := res.Requests, nodes.totalCalls()-calls; got != want {
			t.Fatalf("%s: requests=%d, but the nodes saw %d", where, got, want)
		}
		after := nodes.holders(id)
		switch res.Outcome {
		case Done:
			if op == OpCreate {
				// Every node holds it: what it held before (settled), or ours.
				for _, n := range nodes {
					want, ok := m.stable[id][n.name]
					if !ok {
						want = res.Token
					}
					if got := after[n.name]; got != want {
						t.Fatalf("%s: done create left %s with %q, want %q", where, n.name, got, want)
					}
				}
			} else if len(after) != 0 {
				t.Fatalf("%s: done delete left %v", where, after)
			}
			m.stable[id] = after
			m.pending[id] = false
		case Unchanged:
			if !wasPending && !sameHolders(after, pre) {
				t.Fatalf("%s: unchanged, but the nodes went from %v to %v", where, pre, after)
			}
			if !sameHolders(after, m.stable[id]) {
				t.Fatalf("%s: unchanged, but the nodes hold %v, want %v", where, after, m.stable[id])
			}
			if wantAll := op == OpCreate; (len(after) == len(nodes)) != wantAll || !wantAll && len(after) != 0 {
				t.Fatalf("%s: unchanged %s, but the nodes hold %v", where, op, after)
			}
			m.pending[id] = false
		case RolledBack:
			// Every node exactly as before: as before this operation, and
			// as before any earlier pending one it settled.
			if !wasPending && !sameHolders(after, pre) {
				t.Fatalf("%s: rolled back, but the nodes went from %v to %v", where, pre, after)
			}
			if !sameHolders(after, m.stable[id]) {
				t.Fatalf("%s: rolled back, but the nodes hold %v, want %v", where, after, m.stable[id])
			}
			m.pending[id] = false
		case Pending:
			m.pending[id] = true
		default:
			t.Fatalf("%s: unknown outcome", where)
		}

		// The guarantee: nodes agree on every id not pending, exactly as the
		// model says; the journal holds an intent for exactly the pending ids.
		for _, id := range propIDs {
			if m.pending[id] {
				continue
			}
			if got := nodes.holders(id); !sameHolders(got, m.stable[id]) {
				t.Fatalf("%s: %s is not pending, nodes hold %v, want %v", where, id, got, m.stable[id])
			}
			if !nodes.agree(id) {
				t.Fatalf("%s: nodes disagree on %s, which is not pending", where, id)
			}
		}
		journaled := j.leftIDs()
		for _, id := range propIDs {
			if journaled[id] != m.pending[id] {
				t.Fatalf("%s: journal has an intent on %s: %v, pending: %v (%v)", where, id, journaled[id], m.pending[id], j.left())
			}
		}
	}

	// With faults off, Recover resolves everything pending, and every
	// node holds exactly what the model says.
	nodes.heal()
	results, err := c.Recover(context.Background(), 0)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	for _, res := range results {
		if res.Outcome != RolledBack {
			t.Fatalf("Recover: %s %s -> %s (%v)", res.Op, res.ID, res.Outcome, res.Err)
		}
	}
	var wantRecovered []GroupID
	for _, id := range propIDs {
		if m.pending[id] {
			wantRecovered = append(wantRecovered, id)
		}
	}
	var recovered []GroupID
	for _, res := range results {
		recovered = append(recovered, res.ID)
	}
	slices.Sort(recovered)
	if !slices.Equal(slices.Compact(recovered), wantRecovered) {
		t.Fatalf("Recover rolled back %v, want the pending ids %v", recovered, wantRecovered)
	}
	if left := j.left(); len(left) != 0 {
		t.Fatalf("after Recover the journal holds %v", left)
	}
	for _, id := range propIDs {
		if got := nodes.holders(id); !sameHolders(got, m.stable[id]) || !nodes.agree(id) {
			t.Fatalf("after Recover nodes hold %v of %s, want %v; nodes %v", got, id, m.stable[id], nodes)
		}
	}
}

// runOp runs one operation; if cancelMidway, it cancels the caller's context
// once every goroutine of the bubble is blocked (on a hang, a backoff or a
// timeout), or once the operation is over.
func runOp(c *Coordinator, op Op, id GroupID, cancelMidway bool) Result {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var res Result
	run := func() {
		if op == OpCreate {
			res, _ = c.Create(ctx, id)
		} else {
			res, _ = c.Delete(ctx, id)
		}
	}
	if !cancelMidway {
		run()
		return res
	}
	done := make(chan struct{})
	go func() { defer close(done); run() }()
	synctest.Wait()
	cancel()
	<-done
	return res
}

// TestPropertyConcurrentBulk runs creates and deletes of a few ids from
// several goroutines at once, with random faults from a seeded RNG, then
// recovers: the nodes must agree on everything, and on every id no
// operation reported pending whatever happened meanwhile.
func TestPropertyConcurrentBulk(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rapid.SyncTest(t, func(t *rapid.T) {
			seed := rapid.Uint64().Draw(t, "fault seed")
			rate := rapid.SampledFrom([]float64{0.05, 0.2, 0.5}).Draw(t, "fault rate")
			workers := rapid.IntRange(1, 4).Draw(t, "workers")
			ids := rapid.SliceOfN(rapid.SampledFrom(propIDs), 1, 30).Draw(t, "ids")
			nodes := newCluster(3)
			c, j := faultyCoordinator(t, nodes, seed, rate)
			ctx := context.Background()
			reps := make([]Report, workers)
			done := make(chan struct{})
			for w := range workers {
				go func() {
					defer func() { done <- struct{}{} }()
					op := []Op{OpCreate, OpDelete}[w%2]
					reps[w] = c.Bulk(ctx, op, slices.Values(ids), 2, nil)
				}()
			}
			for range workers {
				<-done
			}
			pending := map[GroupID]bool{}
			for w, rep := range reps {
				if got, want := rep.Requested, len(ids); got != want {
					t.Fatalf("worker %d: requested=%d, want %d", w, got, want)
				}
				for _, id := range rep.PendingIDs {
					pending[id] = true
				}
			}
			for _, id := range propIDs {
				if !pending[id] && !nodes.agree(id) {
					t.Fatalf("nodes disagree on %s, which no operation reported pending: %v", id, nodes)
				}
			}
			nodes.heal()
			if _, err := c.Recover(ctx, 0); err != nil {
				t.Fatalf("Recover: %v", err)
			}
			for _, id := range propIDs {
				if !nodes.agree(id) {
					t.Fatalf("after Recover nodes disagree on %s: %v", id, nodes)
				}
			}
			if left := j.left(); len(left) != 0 {
				t.Fatalf("after Recover the journal holds %v", left)
			}
		})
	})
}

// faultyCoordinator makes every node fail calls at rate (randomFaults,
// seeded) and returns a coordinator over them with an in-test journal.
func faultyCoordinator(t interface{ Fatalf(string, ...any) }, nodes fakeCluster, seed uint64, rate float64) (*Coordinator, *fakeJournal) {
	rng := rand.New(NewLockedSource(seed))
	for _, n := range nodes {
		n.fn = randomFaults(rng, rate)
	}
	j := &fakeJournal{}
	c, err := New(Config{Nodes: nodes.nodes(), Journal: j, Rand: rand.New(NewLockedSource(seed + 1))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, j
}

// randomFaults fails a call with probability rate, with a fault kind drawn
// from rng (which must be safe for concurrent use).
func randomFaults(rng *rand.Rand, rate float64) func(call) fault {
	return func(call) fault {
		if rng.Float64() >= rate {
			return pass
		}
		return faultKinds[1+rng.IntN(len(faultKinds)-1)]
	}
}
