package history_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/history"
)

// realRun runs creates and deletes through a core.Coordinator over three
// memory stores behind faulty nodes (20% of requests fail), from workers
// goroutines, at most one operation per id at a time, and records them.
// After each operation, and before the first, its worker reads the id on
// every store, as a user would, and at the end every id is read again. It
// returns the history as written and read back from a file.
func realRun(t *testing.T, seed uint64, ops, ids, workers int) []history.Op {
	t.Helper()
	var stores []*memory.Store
	var nodes []core.Node
	for i := range 3 {
		s := memory.New()
		n := faults.New(fmt.Sprintf("node%02d", i+1), s, faults.Options{Faults: faults.Faults{ErrorRate: 0.2}, Seed: seed*10 + uint64(i)})
		t.Cleanup(func() { n.Close() })
		stores, nodes = append(stores, s), append(nodes, n)
	}
	c, err := core.New(core.Config{Nodes: nodes, Journal: memory.NewJournal(), Rand: rand.New(core.NewLockedSource(seed))})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := history.NewWriter(f)
	ctx := context.Background()
	read := func(p int, id core.GroupID) {
		op := history.Op{Kind: history.Read, Process: p, ID: string(id), Call: w.Now()}
		held := 0
		for _, s := range stores {
			rec, err := s.Get(ctx, id)
			switch {
			case err == nil:
				held++
				op.Token = string(rec.Token)
			case core.ErrorCode(err) != core.ENotFound:
				t.Errorf("read %s: %v", id, err)
			}
		}
		op.Return = w.Now()
		switch held {
		case 0:
			op.Outcome = history.Absent
		case len(stores):
			op.Outcome = history.Present
		default:
			t.Errorf("%s is on %d of %d stores", id, held, len(stores))
			return
		}
		if err := w.Write(op); err != nil {
			t.Error(err)
		}
	}
	all := make([]core.GroupID, ids)
	for i := range all {
		all[i] = core.GroupID(fmt.Sprintf("id-%d", i))
		read(0, all[i])
	}

	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 0x18))
	busy := map[core.GroupID]bool{}
	started := 0
	take := func() (core.GroupID, bool, bool) {
		mu.Lock()
		defer mu.Unlock()
		free := slices.DeleteFunc(slices.Clone(all), func(id core.GroupID) bool { return busy[id] })
		if started >= ops || len(free) == 0 {
			return "", false, false
		}
		started++
		id := free[rng.IntN(len(free))]
		busy[id] = true
		return id, rng.IntN(2) == 0, true
	}
	var wg sync.WaitGroup
	for p := range workers {
		wg.Go(func() {
			for {
				id, create, ok := take()
				if !ok {
					return
				}
				op := history.Op{Kind: history.Delete, Process: p, ID: string(id), Call: w.Now()}
				run := c.Delete
				if create {
					op.Kind, run = history.Create, c.Create
				}
				res, _ := run(ctx, id)
				op.Return, op.Token = w.Now(), string(res.Token)
				op.Outcome = history.Outcome(res.Outcome)
				if op.Outcome == history.Pending {
					op.Return = history.NoReturn
				}
				if err := w.Write(op); err != nil {
					t.Error(err)
				}
				read(p, id)
				mu.Lock()
				delete(busy, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if _, err := c.Recover(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, id := range all {
		read(workers, id)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := history.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRealRun: the history of a real run is linearizable, and each
// mutation of it is not, named at the operation it broke.
func TestRealRun(t *testing.T) {
	ops := realRun(t, 18, 400, 8, 4)
	res, err := history.Verify(ops)
	if err != nil {
		t.Fatal(err)
	}
	count := map[history.Outcome]int{}
	for _, op := range ops {
		count[op.Outcome]++
	}
	t.Logf("%d operations on %d ids: %v", res.Ops, res.IDs, count)
	if !res.OK() {
		f := res.Failures[0]
		t.Fatalf("the real run is not linearizable: %v; before it, %s is %s", f.Op, f.ID, f.State)
	}
	if count[history.Done] < 100 {
		t.Fatalf("only %d operations done: the run judged too little", count[history.Done])
	}

	// site returns the index of an operation that matches, whose id has
	// no pending operation, and the indexes of the operations on its id
	// just before and after it.
	site := func(match func(prev, op, next history.Op) bool) (int, int, int) {
		t.Helper()
		pending := map[string]bool{}
		last := map[string]int{}
		for _, op := range ops {
			pending[op.ID] = pending[op.ID] || op.Outcome == history.Pending
		}
		for i := range ops {
			if p, ok := last[ops[i].ID]; ok && !pending[ops[i].ID] {
				// ops on one id never overlap here: the next one is the
				// first later op on the id.
				for j := i + 1; j < len(ops); j++ {
					if ops[j].ID == ops[i].ID {
						if match(ops[p], ops[i], ops[j]) {
							return p, i, j
						}
						break
					}
				}
			}
			last[ops[i].ID] = i
		}
		t.Fatal("no operation to mutate")
		return 0, 0, 0
	}
	doneCreate := func(prev, op, next history.Op) bool {
		return op.Kind == history.Create && op.Outcome == history.Done && prev.Outcome == history.Absent && next.Outcome == history.Present
	}
	for _, tc := range []struct {
		name   string
		mutate func([]history.Op) ([]history.Op, int) // and the line of the op that cannot be explained
	}{
		{"a done create said rolled back", func(h []history.Op) ([]history.Op, int) {
			_, i, next := site(doneCreate)
			h[i].Outcome = history.RolledBack
			return h, h[next].Line
		}},
		{"a done create dropped", func(h []history.Op) ([]history.Op, int) {
			_, i, next := site(doneCreate)
			line := h[next].Line
			return slices.Delete(h, i, i+1), line
		}},
		{"a done delete said unchanged", func(h []history.Op) ([]history.Op, int) {
			_, i, _ := site(func(prev, op, next history.Op) bool {
				return op.Kind == history.Delete && op.Outcome == history.Done && prev.Outcome == history.Present
			})
			h[i].Outcome = history.Unchanged
			return h, h[i].Line
		}},
		{"a read flipped", func(h []history.Op) ([]history.Op, int) {
			_, i, _ := site(func(prev, op, next history.Op) bool {
				return op.Kind == history.Read && op.Outcome == history.Present && prev.Outcome == history.Done
			})
			h[i].Outcome, h[i].Token = history.Absent, ""
			return h, h[i].Line
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, line := tc.mutate(slices.Clone(ops))
			res, err := history.Verify(h)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() {
				t.Fatalf("the mutated history is linearizable")
			}
			f := res.Failures[0]
			t.Logf("first that cannot be explained: %v; before it, %s is %s", f.Op, f.ID, f.State)
			if got, want := f.Op.Line, line; got != want {
				t.Errorf("first unexplained on line %d, want %d", got, want)
			}
			if got, want := len(res.Failures), 1; got != want {
				t.Errorf("%d ids fail, want %d", got, want)
			}
		})
	}
}
