package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"
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
		// A create left g1 on node01 and node02; a later delete removed it
		// from node01 and was left too. Undone newest first, the delete
		// restores both under its own token and the create's undo deletes
		// them under that name: nothing remains.
		name: "two intents on one id: undone newest first",
		intents: []Intent{
			{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes},
			{Op: OpDelete, ID: "g1", Token: "B", Nodes: allNodes, PreImage: map[string]Token{"node01": "A", "node02": "A"}},
		},
		before:      holdings{"node02": {"g1": "A"}},
		concurrency: 1,
		want:        []Outcome{RolledBack, RolledBack},
		after:       holdings{},
	}, {
		// The create finished on every node but its finish was lost: it
		// may have been reported done, so it is finished, not undone.
		name:    "leftover create complete on every node: done, the records stay",
		intents: []Intent{{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes}},
		before:  holdings{"node01": {"g1": "A"}, "node02": {"g1": "A"}, "node03": {"g1": "A"}},
		want:    []Outcome{Done},
		after:   holdings{"node01": {"g1": "A"}, "node02": {"g1": "A"}, "node03": {"g1": "A"}},
	}, {
		// As the create itself counts it: a node that held another record
		// kept it, and the id is on every node.
		name:    "leftover create complete, one node held another record: done",
		intents: []Intent{{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes}},
		before:  holdings{"node01": {"g1": "A"}, "node02": {"g1": "T0"}, "node03": {"g1": "A"}},
		want:    []Outcome{Done},
		after:   holdings{"node01": {"g1": "A"}, "node02": {"g1": "T0"}, "node03": {"g1": "A"}},
	}, {
		name: "leftover delete complete on every node: done, nothing restored",
		intents: []Intent{{Op: OpDelete, ID: "g1", Token: "D", Nodes: allNodes,
			PreImage: map[string]Token{"node01": "T1", "node02": "T2"}}},
		want:  []Outcome{Done},
		after: holdings{},
	}, {
		// node02 cannot be read: the create may be complete, and so
		// reported done; nothing is touched until it can be told.
		name:    "complete create, a node down: pending, nothing touched",
		intents: []Intent{{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes}},
		before:  holdings{"node01": {"g1": "A"}, "node02": {"g1": "A"}, "node03": {"g1": "A"}},
		setup:   func(e *env) { e.nodes[1].down = true },
		want:    []Outcome{Pending}, wantErr: ErrUnavailable,
		after: holdings{"node01": {"g1": "A"}, "node02": {"g1": "A"}, "node03": {"g1": "A"}},
		left:  1,
	}, {
		// An operation reported pending promised a rollback.
		name:    "complete create reported pending: rolled back",
		intents: []Intent{{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes, RollBack: true}},
		before:  holdings{"node01": {"g1": "A"}, "node02": {"g1": "A"}, "node03": {"g1": "A"}},
		want:    []Outcome{RolledBack},
		after:   holdings{},
	}, {
		// A damaged journal may have held the finish of an intent it can
		// still read: nothing is acted on.
		name:    "journal damaged: nothing rolled back",
		intents: []Intent{{Op: OpCreate, ID: "g1", Token: "A", Nodes: allNodes}},
		before:  holdings{"node01": {"g1": "A"}},
		setup:   func(e *env) { e.cfg.Journal = damagedJournal{e.j} },
		want:    nil, wantErr: errDamaged,
		after: holdings{"node01": {"g1": "A"}},
		left:  1,
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
		want:  nil,
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
					if err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
						t.Fatalf("Recover err=%v, want %v", err, tc.wantErr)
					}
					if len(results) != 0 {
						t.Errorf("Recover results=%v, want none", results)
					}
					if got, want := len(e.j.left()), tc.left; got != want {
						t.Errorf("journal holds %d intents, want %d", got, want)
					}
					e.checkHoldings(tc.after)
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

var errDamaged = errors.New("damaged journal entry")

// damagedJournal is a journal with an entry it cannot read: Pending returns
// the intents it can read with an error, as a damaged log does.
type damagedJournal struct{ *fakeJournal }

func (j damagedJournal) Pending(ctx context.Context) ([]Intent, error) {
	ins, _ := j.fakeJournal.Pending(ctx)
	return ins, fmt.Errorf("bytes 100-120: %w", errDamaged)
}

// lossyJournal loses every finish, as a crash loses the finishes written
// since the last sync.
type lossyJournal struct{ *fakeJournal }

func (lossyJournal) Finish(context.Context, Token) error { return nil }

// strictJournal refuses a Begin whose token it holds, as the durable
// journals do, and remembers the greatest token it recorded (TokenKeeper).
type strictJournal struct {
	*fakeJournal
	last Token
}

func (j *strictJournal) Begin(ctx context.Context, in Intent) error {
	for _, l := range j.left() {
		if l.Token == in.Token {
			return Errorf(EInvalid, "intent %s is recorded already", in.Token)
		}
	}
	if CompareTokens(in.Token, j.last) > 0 {
		j.last = in.Token
	}
	return j.fakeJournal.Begin(ctx, in)
}

func (j *strictJournal) LastToken() Token { return j.last }

// TestRecoverAfterLostFinish: a create done on every node whose finish a
// crash lost comes back as an intent; the next process's Recover finds it
// complete and leaves the record on every node.
func TestRecoverAfterLostFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.cfg.Journal = lossyJournal{e.j}
		res := e.mustDo(OpCreate, "g1", Done)
		e.mustDo(OpCreate, "g2", Done)
		e.mustDo(OpDelete, "g2", Done)
		if got := len(e.j.left()); got != 3 {
			t.Fatalf("journal holds %d intents, want 3 (the finishes lost)", got)
		}
		// The process crashes; the next one recovers.
		next := newEnv(t, 3)
		next.nodes, next.j = e.nodes, e.j
		next.cfg.Nodes, next.cfg.Journal = e.nodes.nodes(), e.j
		results, err := next.coordinator().Recover(t.Context(), 0)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		for _, r := range results {
			if r.Op == OpCreate && r.ID == "g2" {
				// Older than the done delete: g2 is on no node.
				if r.Outcome != RolledBack {
					t.Errorf("%s %s: outcome=%v, want %v", r.Op, r.ID, r.Outcome, RolledBack)
				}
				continue
			}
			if r.Outcome != Done {
				t.Errorf("%s %s: outcome=%v, want %v (%v)", r.Op, r.ID, r.Outcome, Done, r.Err)
			}
		}
		if got, want := e.nodes.holders("g1"), all3(res.Token); !maps.Equal(got, want) {
			t.Fatalf("after Recover nodes hold %v, want %v: Recover undid a done create", got, want)
		}
		if got := e.nodes.holders("g2"); len(got) != 0 {
			t.Fatalf("after Recover nodes hold g2 %v, want nothing", got)
		}
		if got := e.j.left(); len(got) != 0 {
			t.Fatalf("journal holds %v, want nothing", got)
		}
	})
}

// TestTokensAfterClockStepsBack: a process that restarts with its clock
// behind the tokens of its journal makes tokens above them, and a Begin that
// fails never finishes an intent it did not write.
func TestTokensAfterClockStepsBack(t *testing.T) {
	t.Run("clock behind the journal", func(t *testing.T) { synctest.Test(t, testClockBehindJournal) })
	t.Run("Begin fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 3)
			e.j.intents = []Intent{{Op: OpCreate, ID: "g9", Token: "A", Nodes: allNodes}}
			e.j.failBegin = Errorf(EInvalid, "intent is recorded already")
			e.mustDo(OpCreate, "g1", RolledBack)
			if len(e.j.finished) != 0 {
				t.Fatalf("finished %v after a failed Begin, want nothing", e.j.finished)
			}
			if got := e.j.left(); len(got) != 1 || got[0].Token != "A" {
				t.Fatalf("journal holds %v, want the intent A", got)
			}
		})
	})
	t.Run("a pre-image token is observed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 3)
			ahead := Token(fmt.Sprintf("%d.000000", time.Now().Unix()+3600))
			e.load(holdings{"node01": {"g1": ahead}, "node02": {"g1": ahead}, "node03": {"g1": ahead}})
			e.mustDo(OpDelete, "g1", Done)
			res := e.mustDo(OpCreate, "g1", Done)
			if CompareTokens(res.Token, ahead) <= 0 {
				t.Errorf("token %s is not above %s, read on the nodes", res.Token, ahead)
			}
		})
	})
}

// testClockBehindJournal: an earlier process left an intent on g9 and had
// finished one with a greater token; this one's clock reads the earlier's
// time. Its Begin must not meet the leftover's token (which today's journal
// refuses, and the coordinator then finished the leftover).
func testClockBehindJournal(t *testing.T) {
	e := newEnv(t, 3)
	j := &strictJournal{fakeJournal: e.j}
	e.cfg.Journal = j
	at := time.Now()
	left := NewTokenSource(&fixedClock{at}).Next()
	j.intents = []Intent{{Op: OpCreate, ID: "g9", Token: left, Nodes: allNodes}}
	e.load(holdings{"node01": {"g9": left}})
	last := Token(fmt.Sprintf("%d.000000", at.Unix()+5))
	j.last = last
	e.cfg.Tokens = NewTokenSource(&fixedClock{at})
	res := e.mustDo(OpCreate, "g1", Done)
	if CompareTokens(res.Token, last) <= 0 {
		t.Errorf("token %s is not above the journal's last token %s", res.Token, last)
	}
	if got := e.j.left(); len(got) != 1 || got[0].Token != left {
		t.Fatalf("journal holds %v, want the earlier process's intent %s", got, left)
	}
}

// fixedClock reads one time.
type fixedClock struct{ at time.Time }

func (c *fixedClock) Now() time.Time { return c.at }
func (c *fixedClock) Sleep(ctx context.Context, d time.Duration) error {
	return SystemClock{}.Sleep(ctx, d)
}

func TestCompareTokens(t *testing.T) {
	for _, tc := range []struct {
		a, b Token
		want int
	}{
		{"1.000001", "1.000002", -1},
		{"2", "1.999999", 1},
		{"1.5", "1.500000", -1}, // equal in time: bytewise
		{"1.0000019", "1.000001", 1},
		{"abc", "0.000001", -1},
		{"", "1", -1},
		{"abc", "abd", -1},
		{"1e9", "2", -1}, // not a decimal number
		{"-1", "0", -1},
	} {
		if got := CompareTokens(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareTokens(%q, %q)=%d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareTokens(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareTokens(%q, %q)=%d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
	s := NewTokenSource(&fixedClock{time.Unix(100, 0)})
	s.Observe("100.0000019")
	if got, want := s.Next(), Token("100.000002"); got != want {
		t.Errorf("Next after Observe=%s, want %s", got, want)
	}
}
