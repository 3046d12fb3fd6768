package core

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
)

// holdings is what every node holds: node → id → token.
type holdings map[string]map[GroupID]Token

func (e *env) load(h holdings) {
	for name, recs := range h {
		for id, tok := range recs {
			e.nodes.byName(name).put(id, tok)
		}
	}
}

func (e *env) checkHoldings(want holdings) {
	e.t.Helper()
	for _, n := range e.nodes {
		got, w := n.snapshot(), want[n.name]
		if len(got) == 0 && len(w) == 0 {
			continue
		}
		if !maps.Equal(got, w) {
			e.t.Errorf("%s holds %v, want %v", n.name, got, w)
		}
	}
}

var allNodes = []string{"node01", "node02", "node03"}

func TestRecover(t *testing.T) {
	for _, tc := range []struct {
		name        string
		intents     []Intent
		before      holdings
		setup       func(e *env)
		concurrency int
		want        []Outcome // one per intent, journal order
		wantErr     error     // of the first result that has one
		after       holdings
		left        int
	}{{
		name: "leftover creates: ours deleted, someone else's kept",
		intents: []Intent{
			{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes},
			{Op: OpCreate, ID: "g2", Token: "B", Nodes: allNodes},
		},
		before: holdings{
			"node01": {"g1": "A", "g2": "T0"},
			"node02": {"g1": "A", "g2": "B"},
		},
		want:  []Outcome{RolledBack, RolledBack},
		after: holdings{"node01": {"g2": "T0"}},
	}, {
		// Restored under the delete's own token: node02, whose delete may
		// still land, is cleared and re-created.
		name: "leftover delete: pre-image restored",
		intents: []Intent{{Op: OpDelete, ID: "g1", Token: "D", Nodes: allNodes,
			PreImage: map[string]Token{"node01": "T1", "node02": "T2"}}},
		before: holdings{"node02": {"g1": "T2"}},
		want:   []Outcome{RolledBack},
		after:  holdings{"node01": {"g1": "D"}, "node02": {"g1": "D"}},
	}, {
		name:    "node down: pending, the intent stays",
		intents: []Intent{{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes}},
		before:  holdings{"node01": {"g1": "A"}, "node02": {"g1": "A"}},
		setup:   func(e *env) { e.nodes[1].down = true },
		want:    []Outcome{Pending}, wantErr: ErrUnavailable,
		after: holdings{"node02": {"g1": "A"}},
		left:  1,
	}, {
		name:    "intent names a node the target does not have: pending",
		intents: []Intent{{Op: OpCreate, ID: "g1", Token: "A", Nodes: []string{"node01", "node09"}}},
		before:  holdings{"node01": {"g1": "A"}},
		want:    []Outcome{Pending}, wantErr: ErrInvalid,
		after: holdings{"node01": {"g1": "A"}},
		left:  1,
	}, {
		// A create left g1 on node01; a later delete removed it and was left
		// too. Undone newest first, nothing remains; oldest first, the
		// delete's undo would bring back what the create's undo removed.
		name: "two intents on one id: undone newest first",
		intents: []Intent{
			{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes},
			{Op: OpDelete, ID: "g1", Token: "B", Nodes: allNodes, PreImage: map[string]Token{"node01": "A"}},
		},
		concurrency: 1,
		want:        []Outcome{RolledBack, RolledBack},
		after:       holdings{},
	}, {
		name: "two intents on one id, the newer cannot be undone: both pending",
		intents: []Intent{
			{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes},
			{Op: OpDelete, ID: "g1", Token: "B", Nodes: allNodes, PreImage: map[string]Token{"node01": "A"}},
		},
		setup: func(e *env) { e.nodes[0].down = true },
		want:  []Outcome{Pending, Pending},
		after: holdings{},
		left:  2,
	}, {
		name:  "journal unreadable",
		setup: func(e *env) { e.j.failList = errors.New("disk gone") },
		want:  nil, wantErr: errors.New("any"),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				e.load(tc.before)
				e.j.intents = slices.Clone(tc.intents)
				if tc.setup != nil {
					tc.setup(e)
				}
				results, err := e.coordinator().Recover(t.Context(), tc.concurrency)
				if tc.want == nil {
					if err == nil {
						t.Fatalf("Recover err=nil, want an error")
					}
					return
				}
				if err != nil {
					t.Fatalf("Recover: %v", err)
				}
				if got, want := len(results), len(tc.want); got != want {
					t.Fatalf("%d results, want %d", got, want)
				}
				byToken := map[Token]Result{}
				for _, res := range results {
					byToken[res.Token] = res
				}
				for i, in := range tc.intents {
					res, ok := byToken[in.Token]
					if !ok {
						t.Fatalf("no result for intent %s", in.Token)
					}
					if got, want := res.Outcome, tc.want[i]; got != want {
						t.Errorf("intent %s: outcome=%v, want %v (%v)", in.Token, got, want, res.Err)
					}
					if got, want := res.ID, in.ID; got != want {
						t.Errorf("intent %s: id=%v, want %v", in.Token, got, want)
					}
					if got, want := res.Op, in.Op; got != want {
						t.Errorf("intent %s: op=%v, want %v", in.Token, got, want)
					}
				}
				if tc.wantErr != nil && !errors.Is(results[0].Err, tc.wantErr) && !errors.Is(results[len(results)-1].Err, tc.wantErr) {
					t.Errorf("err=%v, want one that is %v", results[0].Err, tc.wantErr)
				}
				if got, want := len(e.j.left()), tc.left; got != want {
					t.Errorf("journal holds %d intents, want %d", got, want)
				}
				e.checkHoldings(tc.after)
			})
		})
	}
}

func TestRecoverWithoutJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.cfg.Journal = nil
		results, err := e.coordinator().Recover(t.Context(), 0)
		if err != nil || len(results) != 0 {
			t.Fatalf("Recover = %v, %v; want nothing to do", results, err)
		}
		// What this coordinator left pending is still known, in memory.
		e.leavePending(OpCreate, "g1")
		e.mustRecover(RolledBack)
		if got := e.nodes.holders("g1"); len(got) != 0 {
			t.Fatalf("nodes hold %v, want nothing", got)
		}
	})
}

// leavePending runs op on id so that it ends pending: node02 loses the
// acknowledgement of every forward request and refuses every compensating
// one. It then heals the cluster.
func (e *env) leavePending(op Op, id GroupID) Result {
	e.t.Helper()
	forward, undo := "Create", "Delete"
	if op == OpDelete {
		forward, undo = "Delete", "Create"
	}
	n := e.nodes[1]
	n.fn = func(c call) fault {
		switch c.Method {
		case forward:
			return errAfter
		case undo:
			return down
		}
		return pass
	}
	var res Result
	if op == OpCreate {
		res, _ = e.coordinator().Create(e.t.Context(), id)
	} else {
		res, _ = e.coordinator().Delete(e.t.Context(), id)
	}
	if got, want := res.Outcome, Pending; got != want {
		e.t.Fatalf("%s %s: outcome=%v, want %v", op, id, got, want)
	}
	e.nodes.heal()
	return res
}

func (e *env) mustDo(op Op, id GroupID, want Outcome) Result {
	e.t.Helper()
	var res Result
	var err error
	if op == OpCreate {
		res, err = e.coordinator().Create(e.t.Context(), id)
	} else {
		res, err = e.coordinator().Delete(e.t.Context(), id)
	}
	if got := res.Outcome; got != want {
		e.t.Fatalf("%s %s: outcome=%v, want %v (err %v)", op, id, got, want, err)
	}
	return res
}

func (e *env) mustRecover(want ...Outcome) {
	e.t.Helper()
	results, err := e.coordinator().Recover(e.t.Context(), 0)
	if err != nil {
		e.t.Fatalf("Recover: %v", err)
	}
	if got, want := len(results), len(want); got != want {
		e.t.Fatalf("Recover returned %d results (%v), want %d", got, results, want)
	}
	for i, res := range results {
		if got, want := res.Outcome, want[i]; got != want {
			e.t.Fatalf("Recover result %d: outcome=%v, want %v (%v)", i, got, want, res.Err)
		}
	}
}

// TestLaterOperationSupersedesPending checks that an operation on an id whose
// earlier operation is still pending first rolls that one back, so that a
// later Recover cannot undo the newer, reported, operation.
func TestLaterOperationSupersedesPending(t *testing.T) {
	t.Run("pending create, create again, recover", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 3)
			e.leavePending(OpCreate, "g1") // node02 keeps the record
			res := e.mustDo(OpCreate, "g1", Done)
			if got, want := e.nodes.holders("g1"), all3(res.Token); !maps.Equal(got, want) {
				t.Fatalf("after the second create nodes hold %v, want %v", got, want)
			}
			e.mustRecover()
			if got, want := e.nodes.holders("g1"), all3(res.Token); !maps.Equal(got, want) {
				t.Fatalf("after Recover nodes hold %v, want %v: Recover undid a done create", got, want)
			}
		})
	})
	t.Run("pending delete, create and delete again, recover", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 3)
			e.load(holdings{"node01": {"g1": "T1"}, "node02": {"g1": "T2"}, "node03": {"g1": "T3"}})
			e.leavePending(OpDelete, "g1")
			e.mustDo(OpCreate, "g1", Unchanged)
			e.mustDo(OpDelete, "g1", Done)
			e.mustRecover()
			if got := e.nodes.holders("g1"); len(got) != 0 {
				t.Fatalf("after Recover nodes hold %v, want nothing: Recover brought back a deleted record", got)
			}
		})
	})
	t.Run("earlier operation cannot be undone: pending, nothing begun", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 3)
			first := e.leavePending(OpCreate, "g1")
			e.nodes[1].down = true
			res, err := e.coordinator().Create(t.Context(), "g1")
			if got, want := res.Outcome, Pending; got != want {
				t.Fatalf("outcome=%v, want %v", got, want)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("err=%v, want one that is unavailable", err)
			}
			left := e.j.left()
			if len(left) != 1 || left[0].Token != first.Token {
				t.Fatalf("journal holds %v, want only the first intent %s", left, first.Token)
			}
			if got := e.nodes.holders("g1"); len(got) != 1 || got["node02"] != first.Token {
				t.Fatalf("nodes hold %v, want only node02's record of the first create", got)
			}
			e.nodes.heal()
			e.mustRecover(RolledBack)
			if got := e.nodes.holders("g1"); len(got) != 0 {
				t.Fatalf("after Recover nodes hold %v, want nothing", got)
			}
		})
	})
	t.Run("intents of an earlier process are settled by the next operation", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 3)
			// A crashed run left a create on node01 only.
			e.j.intents = []Intent{{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes}}
			e.load(holdings{"node01": {"g1": "A"}})
			res := e.mustDo(OpCreate, "g1", Done)
			if got, want := e.nodes.holders("g1"), all3(res.Token); !maps.Equal(got, want) {
				t.Fatalf("nodes hold %v, want %v", got, want)
			}
			if got := e.j.left(); len(got) != 0 {
				t.Fatalf("journal holds %v, want nothing", got)
			}
		})
	})
}

func TestRecoverIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.leavePending(OpCreate, "g1")
		e.mustRecover(RolledBack)
		e.mustRecover()
		if got := e.nodes.holders("g1"); len(got) != 0 {
			t.Fatalf("nodes hold %v, want nothing", got)
		}
	})
}

func TestRecoverCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.leavePending(OpCreate, "g1")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		results, err := e.coordinator().Recover(ctx, 0)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err=%v, want context.Canceled", err)
		}
		for _, res := range results {
			if res.Outcome != Pending {
				t.Errorf("outcome=%v, want pending", res.Outcome)
			}
		}
		if got := len(e.j.left()); got != 1 {
			t.Fatalf("journal holds %d intents, want 1", got)
		}
	})
}
