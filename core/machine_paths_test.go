package core

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// Scenario tests for the transitions of the state machine (machine.go)
// that only a precise interleaving takes: an answer lost at the moment
// another writer's record comes or goes, a read after an undo waited out a
// late write. Each names the transitions it must take (takes fails it if
// the driver did not), so that it cannot drift off its path unseen, and
// asserts what matters: the outcome, and what the nodes hold after.

// takes runs f and fails t for every transition of want ("state/event")
// that is not in the table, or that the driver did not take meanwhile.
// Only TestSimulation's subtests run in parallel, among themselves, so what
// is counted while f runs is f's.
func takes(t *testing.T, want []string, f func()) {
	t.Helper()
	names := transitionNames()
	for _, name := range want {
		if !names[name] {
			t.Errorf("%s is not a transition of the table", name)
		}
	}
	before := countTaken()
	f()
	missed := untakenSince(before)
	for _, name := range want {
		if names[name] && slices.Contains(missed, name) {
			t.Errorf("the scenario did not take %s", name)
		}
	}
}

// transitionNames returns the transitions of the table, as "state/event".
func transitionNames() map[string]bool {
	names := map[string]bool{}
	for s, row := range transitions {
		for e := range row {
			names[s.String()+"/"+e.String()] = true
		}
	}
	return names
}

// when makes node run f at its kid-th call of method on an id (see
// call.KID), before the call's fault applies: what another client, or a
// late request, does to the node at that moment.
func when(node, method string, kid int, f func(n *fakeNode)) func(e *env) {
	return func(e *env) {
		n := e.nodes.byName(node)
		prev := n.onCall
		n.onCall = func(c call) {
			if prev != nil {
				prev(c)
			}
			if c.Method == method && c.KID == kid {
				f(n)
			}
		}
	}
}

// put and drop are another client's create and delete of gid on a node.
func put(tok Token) func(n *fakeNode) { return func(n *fakeNode) { n.put(gid, tok) } }
func drop(n *fakeNode)                { n.drop(gid) }

// asOriginal makes every node the original server: no tombstones, no
// replays, no tokens in reads, so that a delete, which reads first, is
// unconditional (README: "Against the original server ... deletes read
// first and are unconditional"; the original's DELETE without a
// timestamp header deletes whatever record it holds).
func asOriginal(e *env) {
	for _, n := range e.nodes {
		n.original()
	}
}

// noTombstones makes every node one that does not fence but shows tokens
// and replays creates: a rops node run without tombstones.
func noTombstones(e *env) {
	for _, n := range e.nodes {
		n.noFence = true
	}
}

// rejectLate makes node01 refuse the forward write for good once its
// first attempt timed out (2 s): the other nodes have settled by then.
func rejectLate(method string) func(e *env) {
	return script("node01", method, hangBefore, reject)
}

// rejectSoon makes node01 refuse the forward write for good at its first
// retry, 1 ms in: after every node's first attempt, before their retries
// settle.
func rejectSoon(method string) func(e *env) {
	return script("node01", method, down, reject)
}

type pathCase struct {
	opCase
	takes []string
}

func TestMachinePaths(t *testing.T) {
	const (
		t0     Token = "1.000001" // the record before the operation
		t9     Token = "1.000009" // another client's record
		future Token = "4102444800.000000"
	)
	hang3 := repeat(hangBefore, 3)
	for _, tc := range []pathCase{{
		// A fencing node refuses the first attempt (another record is
		// there) and tombstones our token, but the answer is lost; the
		// record goes; the retry is fenced: nothing of ours is there, or
		// ever can be, and the create is undone elsewhere.
		opCase: opCase{
			name: "create refused, answer lost, other record gone: fenced", op: OpCreate,
			before: map[string]Token{"node02": t0},
			setup:  both(script("node02", "Create", errAfter), when("node02", "Create", 2, drop)),
			want:   RolledBack, wantErr: ErrFenced,
			states: []NodeState{StateRestored, StateAbsent, StateRestored},
		},
		takes: []string{"untouched/ambiguous", "maybeWritten/fenced", "fenced/undoCreate"},
	}, {
		// The original server: the retry finds a record, the read finds
		// it gone, and the create goes on.
		opCase: opCase{
			name: "create ambiguous, exists, gone when read: created (original)", op: OpCreate,
			before: map[string]Token{"node02": t0},
			setup:  both(asOriginal, script("node02", "Create", errBefore), when("node02", "Get", 1, drop)),
			want:   Done,
			after:  all3(ours),
			states: []NodeState{StateCreated, StateCreated, StateCreated},
		},
		takes: []string{"maybeWritten/exists", "reading/notFound", "maybeWritten/applied"},
	}, {
		// The same on a node that fences: its "exists" tombstoned our
		// token, so the create once more is fenced, and undone.
		opCase: opCase{
			name: "create ambiguous, exists, gone when read: fenced", op: OpCreate,
			before: map[string]Token{"node02": t0},
			setup:  both(script("node02", "Create", errBefore), when("node02", "Get", 1, drop)),
			want:   RolledBack, wantErr: ErrFenced,
			states: []NodeState{StateRestored, StateAbsent, StateRestored},
		},
		takes: []string{"reading/notFound", "maybeWritten/fenced", "fenced/undoCreate"},
	}, {
		opCase: opCase{
			name: "create ambiguous, exists, the read refused", op: OpCreate,
			before: map[string]Token{"node02": t0},
			setup:  both(script("node02", "Create", errBefore), script("node02", "Get", reject)),
			want:   RolledBack, wantErr: ErrRejected,
			after: map[string]Token{"node02": t0},
		},
		takes: []string{"reading/rejected", "reading/undoCreate", "unwriting/notFound"},
	}, {
		// A node that does not fence, in maybeWritten when node01
		// refuses: its record was there all along, and the read after
		// the wait for late writes finds it, not ours.
		opCase: opCase{
			name: "undone create, read after the wait: another's record (no tombstones)", op: OpCreate,
			before: map[string]Token{"node02": t0},
			setup:  both(noTombstones, script("node02", "Create", append([]fault{errBefore}, hang3...)...), rejectLate("Create")),
			want:   RolledBack, wantErr: ErrRejected,
			after: map[string]Token{"node02": t0},
		},
		takes: []string{"maybeWritten/undoCreate", "unwriting/notFound", "unwritten/lapsed", "verifyGone/readOther"},
	}, {
		// The original server: node03's create waits in a queue and
		// lands after the undo's delete; the read after the wait sees a
		// record, whose token it cannot tell, and deletes ours again.
		opCase: opCase{
			name: "undone create, a late create lands: read and deleted again (original)", op: OpCreate,
			setup: both(asOriginal, script("node03", "Create", late, reject)),
			want:  RolledBack, wantErr: ErrRejected,
			after: nil,
		},
		takes: []string{"maybeWritten/rejected", "unwriting/notFound", "verifyGone/readNoToken", "unwriting/applied"},
	}, {
		opCase: opCase{
			name: "undone create, the read after the wait refused: pending, then recovered", op: OpCreate,
			setup: both(noTombstones, script("node02", "Create", errAfter, reject), script("node02", "Get", reject)),
			want:  Pending, wantErr: ErrRejected,
			after: map[string]Token{}, left: 1, recover: true,
		},
		takes: []string{"unwriting/applied", "verifyGone/rejected"},
	}, {
		// Nodes that do not fence but show tokens: node02's delete
		// applied, its answer lost; when the undo re-creates the record,
		// another client's is there. The read after the wait finds it.
		opCase: opCase{
			name: "undone delete, another's record there: held (no tombstones)", op: OpDelete,
			before: all3(t0),
			setup: both(noTombstones, script("node02", "Delete", errAfter), when("node02", "Create", 1, put(t9)),
				rejectLate("Delete")),
			want: RolledBack, wantErr: ErrRejected,
			after:  map[string]Token{"node01": ours, "node02": t9, "node03": ours},
			states: []NodeState{StateRestored, StateRestored, StateRestored},
		},
		takes: []string{"maybeWritten/notFound", "rewriting/exists", "rewritten/lapsed", "verifyHeld/readOther", "verifyHeld/readOurs"},
	}, {
		// The same with node02's delete still unanswered when node01
		// refuses: the undo clears first.
		opCase: opCase{
			name: "undone delete that may land, another's record there: held (no tombstones)", op: OpDelete,
			before: all3(t0),
			setup: both(noTombstones, script("node02", "Delete", errAfter, down, down, down),
				when("node02", "Create", 1, put(t9)), rejectSoon("Delete")),
			want: RolledBack, wantErr: ErrRejected,
			after: map[string]Token{"node01": t0, "node02": t9, "node03": ours},
		},
		takes: []string{"maybeWritten/undoDelete", "clearing/notFound", "cleared/exists", "verifyHeld/readOther"},
	}, {
		opCase: opCase{
			name: "undone delete that may land, the re-create refused: pending, then recovered", op: OpDelete,
			before: all3(t0),
			setup: both(noTombstones, script("node02", "Delete", errAfter, down, down, down),
				script("node02", "Create", reject), rejectSoon("Delete")),
			want: Pending, wantErr: ErrRejected,
			after: map[string]Token{"node01": t0, "node03": ours}, left: 1, recover: true,
		},
		takes: []string{"clearing/notFound", "cleared/rejected"},
	}, {
		// The read after the wait fails once, or finds the node down
		// once, and is sent again (the original server).
		opCase: opCase{
			name: "undone delete, the read after the wait ambiguous (original)", op: OpDelete,
			before: all3(t0),
			setup:  both(asOriginal, script("node02", "Delete", errAfter), script("node02", "Get", pass, errBefore), rejectLate("Delete")),
			want:   RolledBack, wantErr: ErrRejected,
			after: all3(ours),
		},
		takes: []string{"verifyHeld/ambiguous", "verifyHeld/readNoToken"},
	}, {
		opCase: opCase{
			name: "undone delete, the read after the wait not sent (original)", op: OpDelete,
			before: all3(t0),
			setup:  both(asOriginal, script("node02", "Delete", errAfter), script("node02", "Get", pass, down), rejectLate("Delete")),
			want:   RolledBack, wantErr: ErrRejected,
			after: all3(ours),
		},
		takes: []string{"verifyHeld/notSent", "verifyHeld/readNoToken"},
	}, {
		opCase: opCase{
			name: "undone delete, the read after the wait refused: pending, then recovered", op: OpDelete,
			before: all3(t0),
			setup:  both(noTombstones, script("node02", "Delete", errAfter), script("node02", "Get", pass, reject), rejectLate("Delete")),
			want:   Pending, wantErr: ErrRejected,
			after: all3(ours), left: 1, recover: true,
		},
		takes: []string{"verifyHeld/rejected"},
	}, {
		// The read fails until the compensation timeout.
		opCase: opCase{
			name: "undone delete, the read after the wait never answered: pending, then recovered", op: OpDelete,
			before: all3(t0),
			setup: both(noTombstones, script("node02", "Delete", errAfter),
				script("node02", "Get", append([]fault{pass}, repeat(errBefore, 1000)...)...), rejectLate("Delete")),
			want:  Pending,
			after: all3(ours), left: 1, recover: true,
		},
		takes: []string{"verifyHeld/ambiguous", "verifyHeld/giveUp"},
	}, {
		// A node holds a record whose token is not older than the
		// delete's (its writer's clock runs ahead of ours). Remove's
		// first attempt is lost; the second says so: nothing removed.
		// The delete is undone and runs again with a token above it.
		opCase: opCase{
			name: "delete without a read, ambiguous, then a newer record", op: OpDelete,
			before: map[string]Token{"node01": t0, "node02": future, "node03": t0},
			setup:  both(removes, script("node02", "Remove", errBefore)),
			want:   Done,
			after:  nil,
		},
		takes: []string{"removing/ambiguous", "maybeRemoved/exists"},
	}, {
		// The same, with node02's Remove still unanswered when node01
		// refuses: the undo sends it again to learn what it removed, and
		// learns it removed nothing.
		opCase: opCase{
			name: "delete without a read undone, a newer record: nothing removed", op: OpDelete,
			before: map[string]Token{"node01": t0, "node02": future, "node03": t0},
			setup:  both(removes, script("node02", "Remove", append([]fault{errBefore}, hang3...)...), rejectLate("Remove")),
			want:   RolledBack, wantErr: ErrRejected,
			after: map[string]Token{"node01": ours, "node02": future, "node03": ours},
		},
		takes: []string{"maybeRemoved/undoDelete", "unremoving/exists", "unremoving/applied"},
	}} {
		tc.requests, tc.retries = -1, -1
		t.Run(tc.name, func(t *testing.T) {
			takes(t, tc.takes, func() { runOpCase(t, tc.opCase) })
		})
	}
}

// TestMachinePathsFencedUndo: the undo of a delete re-creates the record
// under the operation's token on a node that fences; another client's
// record is there, so the node refuses and tombstones the token, but the
// answer is lost; the record goes; the retry is fenced. The delete stays
// pending (the node holds nothing, and the tombstone refuses the
// re-create) until the tombstone expires; then Recover restores the id.
func TestMachinePathsFencedUndo(t *testing.T) {
	const t0, t9 Token = "1.000001", "1.000009"
	for _, tc := range []struct {
		name  string
		node2 []fault // node02's deletes
		takes []string
	}{
		{"delete landed", []fault{errAfter}, []string{"rewriting/ambiguous", "rewriting/fenced"}},
		{"delete may land", append([]fault{errAfter}, repeat(hangBefore, 3)...), []string{"clearing/notFound", "cleared/ambiguous", "cleared/fenced"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			takes(t, tc.takes, func() {
				synctest.Test(t, func(t *testing.T) {
					e := newEnv(t, 3)
					e.load(holdings{"node01": {gid: t0}, "node02": {gid: t0}, "node03": {gid: t0}})
					both(script("node02", "Delete", tc.node2...), rejectLate("Delete"),
						when("node02", "Create", 1, put(t9)), script("node02", "Create", errAfter),
						when("node02", "Create", 2, drop))(e)
					res, err := e.coordinator().Delete(t.Context(), gid)
					if got, want := res.Outcome, Pending; got != want {
						t.Fatalf("outcome=%v (%v), want %v", got, err, want)
					}
					if !errors.Is(err, ErrFenced) {
						t.Errorf("error %v, want one that says fenced", err)
					}
					want := map[string]Token{"node01": res.Token, "node03": res.Token}
					if got := e.nodes.holders(gid); !maps.Equal(got, want) {
						t.Errorf("nodes hold %v, want %v", got, want)
					}
					// While the tombstone lasts, Recover cannot restore
					// node02, and says so.
					e.nodes.heal()
					e.mustRecover(Pending)
					time.Sleep(DefaultTombstoneTTL)
					n := e.nodes.byName("node02")
					n.mu.Lock()
					n.tombs = nil // expired
					n.mu.Unlock()
					e.mustRecover(RolledBack)
					e.checkHoldings(holdings{"node01": {gid: res.Token}, "node02": {gid: res.Token}, "node03": {gid: res.Token}})
					if left := e.j.left(); len(left) != 0 {
						t.Errorf("the journal holds %v, want nothing", left)
					}
				})
			})
		})
	}
}

var bugs = flag.Bool("bugs", false, "run the tests of bugs not yet fixed, which fail")

// TestCreateTokenEqualToAnothersRecord (a bug not yet fixed; run with
// -bugs): a client of the original protocol whose clock runs ahead created
// gid under its timestamp; a process whose clock is behind the tokens it
// draws (each is then the last plus a microsecond) draws that very
// timestamp for a create of gid. The nodes answer the create as a replay,
// so the coordinator takes the record for its own, and when node03
// refuses, the undo deletes it from the other nodes: the rolled-back
// create lost the id there. The simulation found it while the
// timestamps of the original's client (createdAhead) were printed with 6
// decimals, as rops prints tokens.
func TestCreateTokenEqualToAnothersRecord(t *testing.T) {
	if !*bugs {
		t.Skip("a bug not yet fixed: run with -bugs")
	}
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		// The bubble's clock stands still between these requests: each
		// token drawn is the last plus a microsecond.
		t1, _ := e.mustDo(OpCreate, "x", Done).Token.micros()
		t2, _ := e.mustDo(OpCreate, "y", Done).Token.micros()
		us := 2*t2 - t1
		theirs := Token(fmt.Sprintf("%d.%06d", us/1e6, us%1e6))
		e.load(holdings{"node01": {gid: theirs}, "node02": {gid: theirs}, "node03": {gid: theirs}})
		// node03 refuses it for good once its first attempt timed out.
		e.nodes.byName("node03").fn = func(c call) fault {
			if c.ID == gid && c.Method == "Create" {
				return map[int]fault{1: hangBefore, 2: reject}[c.KID]
			}
			return pass
		}
		res, err := e.coordinator().Create(t.Context(), gid)
		if res.Token != theirs {
			t.Fatalf("the create drew %s, not %s: the scenario needs another way to draw it", res.Token, theirs)
		}
		if res.Outcome != RolledBack && res.Outcome != Unchanged {
			t.Errorf("outcome=%v (%v), want rolled back or unchanged", res.Outcome, err)
		}
		if got, want := e.nodes.holders(gid), all3(theirs); !maps.Equal(got, want) {
			t.Errorf("nodes hold %v, want the other client's record everywhere, as before: %v", got, want)
		}
	})
}
