package core

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

func idRange(n int) []GroupID {
	ids := make([]GroupID, n)
	for i := range ids {
		ids[i] = GroupID(fmt.Sprintf("g%02d", i))
	}
	return ids
}

func TestBulk(t *testing.T) {
	for _, tc := range []struct {
		name        string
		op          Op
		ids         []GroupID
		before      holdings
		fn          map[string]func(c call) fault // node → faults by call
		concurrency int
		want        Report // Command, counts and id lists; Requests and Retries are checked against the nodes
	}{{
		name: "create: every outcome",
		op:   OpCreate,
		ids:  append(idRange(10), "bad id"),
		before: holdings{
			"node01": {"g01": "T0", "g02": "T0"},
			"node02": {"g01": "T0", "g02": "T0"},
			"node03": {"g01": "T0", "g02": "T0"},
		},
		fn: map[string]func(c call) fault{
			"node01": func(c call) fault {
				if c.ID == "g05" && c.KID == 1 {
					return errBefore // retried once, done
				}
				return pass
			},
			"node02": func(c call) fault {
				switch {
				case c.ID == "g03" && c.Method == "Create":
					return reject // rolled back
				case c.ID == "g04" && c.Method == "Create":
					return errAfter // lands, never acknowledged...
				case c.ID == "g04" && c.Method == "Delete":
					return down // ...and cannot be undone: pending
				}
				return pass
			},
		},
		concurrency: 4,
		want: Report{Command: "create", Requested: 11, Done: 6, Unchanged: 2, RolledBack: 2, Pending: 1,
			RolledBackIDs: []GroupID{"bad id", "g03"}, PendingIDs: []GroupID{"g04"}},
	}, {
		name:   "delete: done, unchanged, rolled back",
		op:     OpDelete,
		ids:    idRange(6),
		before: holdings{"node01": {"g00": "1", "g01": "1", "g02": "1"}, "node02": {"g00": "2", "g01": "2"}, "node03": {"g00": "3"}},
		fn: map[string]func(c call) fault{
			"node03": func(c call) fault {
				if c.ID == "g00" && c.Method == "Delete" {
					return reject
				}
				return pass
			},
		},
		concurrency: 0, // default
		want: Report{Command: "delete", Requested: 6, Done: 2, Unchanged: 3, RolledBack: 1,
			RolledBackIDs: []GroupID{"g00"}},
	}, {
		name: "no ids",
		op:   OpCreate,
		want: Report{Command: "create"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				e.load(tc.before)
				for name, fn := range tc.fn {
					e.nodes.byName(name).fn = fn
				}
				var mu sync.Mutex
				seen := map[GroupID]int{}
				requests, retries := 0, 0
				rep := e.coordinator().Bulk(t.Context(), tc.op, slices.Values(tc.ids), tc.concurrency, func(res Result) {
					mu.Lock()
					defer mu.Unlock()
					seen[res.ID]++
					requests += res.Requests
					retries += res.Retries
				})
				slices.Sort(rep.RolledBackIDs)
				slices.Sort(rep.PendingIDs)
				got := rep
				got.Requests, got.Retries, got.Seconds = 0, 0, 0
				if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", tc.want); g != w {
					t.Errorf("report=%s\n  want %s", g, w)
				}
				if g, w := rep.Done+rep.Unchanged+rep.RolledBack+rep.Pending, rep.Requested; g != w {
					t.Errorf("outcomes sum to %d, want requested %d", g, w)
				}
				if g, w := rep.Requests, e.nodes.totalCalls(); g != w {
					t.Errorf("report requests=%d, but the nodes saw %d", g, w)
				}
				if g, w := rep.Requests, requests; g != w {
					t.Errorf("report requests=%d, results sum to %d", g, w)
				}
				if g, w := rep.Retries, retries; g != w {
					t.Errorf("report retries=%d, results sum to %d", g, w)
				}
				for _, id := range tc.ids {
					if seen[id] != 1 {
						t.Errorf("each saw %s %d times, want once", id, seen[id])
					}
				}
				if rep.Seconds < 0 {
					t.Errorf("seconds=%v, want >= 0", rep.Seconds)
				}
			})
		})
	}
}

// TestBulkHappyPathCost pins the cost of a fault-free job: one request per
// node per create, one read and one delete per node per delete.
func TestBulkHappyPathCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		ids := idRange(50)
		rep := e.coordinator().Bulk(t.Context(), OpCreate, slices.Values(ids), 8, nil)
		if got, want := rep.Requests, 3*len(ids); got != want {
			t.Errorf("create requests=%d, want %d", got, want)
		}
		if got, want := rep.Done, len(ids); got != want {
			t.Errorf("done=%d, want %d", got, want)
		}
		rep = e.coordinator().Bulk(t.Context(), OpDelete, slices.Values(ids), 8, nil)
		if got, want := rep.Requests, 6*len(ids); got != want {
			t.Errorf("delete requests=%d, want %d", got, want)
		}
		if got, want := rep.Retries, 0; got != want {
			t.Errorf("retries=%d, want %d", got, want)
		}
		if got := e.nodes.ids(); len(got) != 0 {
			t.Errorf("nodes still hold %v", got)
		}
	})
}

func TestBulkStopsWhenCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		ctx, cancel := context.WithCancel(t.Context())
		// Cancel once 5 ids have been taken: the rest are never started.
		ids := func(yield func(GroupID) bool) {
			for i, id := range idRange(20) {
				if i == 5 {
					cancel()
				}
				if !yield(id) {
					return
				}
			}
		}
		rep := e.coordinator().Bulk(ctx, OpCreate, iter.Seq[GroupID](ids), 1, nil)
		if got, want := rep.Requested, 5; got != want {
			t.Fatalf("requested=%d, want %d", got, want)
		}
		if got, want := rep.Done+rep.RolledBack+rep.Pending+rep.Unchanged, rep.Requested; got != want {
			t.Errorf("outcomes sum to %d, want %d", got, want)
		}
		for _, id := range e.nodes.ids() {
			if !e.nodes.agree(id) && !slices.Contains(rep.PendingIDs, id) {
				t.Errorf("nodes disagree on %s (not reported pending): %v", id, e.nodes.holders(id))
			}
		}
		results, err := e.coordinator().Recover(t.Context(), 0)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if got, want := len(results), rep.Pending; got != want {
			t.Errorf("Recover handled %d intents, want %d", got, want)
		}
		for _, id := range e.nodes.ids() {
			if !e.nodes.agree(id) {
				t.Errorf("after Recover nodes disagree on %s: %v", id, e.nodes.holders(id))
			}
		}
	})
}

// TestBulkConcurrentSameIDs runs creates and deletes of the same few ids at
// once under faults: the per-id lock serializes them, so the nodes must agree
// once everything pending is recovered.
func TestBulkConcurrentSameIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		for i, n := range e.nodes {
			n.fn = func(c call) fault {
				if (c.K+i)%4 == 0 {
					return []fault{errBefore, errAfter, hangAfter}[c.K%3]
				}
				return pass
			}
		}
		ids := slices.Repeat(idRange(4), 10)
		c := e.coordinator()
		var wg sync.WaitGroup
		for _, op := range []Op{OpCreate, OpDelete} {
			wg.Go(func() {
				c.Bulk(t.Context(), op, slices.Values(ids), 4, nil)
			})
		}
		wg.Wait()
		e.nodes.heal()
		if _, err := e.coordinator().Recover(t.Context(), 0); err != nil {
			t.Fatalf("Recover: %v", err)
		}
		for _, id := range e.nodes.ids() {
			if !e.nodes.agree(id) {
				t.Errorf("nodes disagree on %s: %v", id, e.nodes.holders(id))
			}
		}
		if left := e.j.left(); len(left) != 0 {
			t.Errorf("journal holds %v", left)
		}
	})
}
