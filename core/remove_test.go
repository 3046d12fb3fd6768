package core

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// removes makes every node of e serve Remove, as rops nodes do.
func removes(e *env) {
	for _, n := range e.nodes {
		n.removes = true
	}
}

// removeCases are deletes on nodes that remove without a read.
func removeCases() []opCase {
	forever := 1000
	return []opCase{{
		name: "success: no read", before: tokens123, want: Done,
		after:    map[string]Token{},
		states:   []NodeState{StateDeleted, StateDeleted, StateDeleted},
		requests: 3, retries: 0,
	}, {
		name: "absent: unchanged", want: Unchanged,
		after:    map[string]Token{},
		states:   []NodeState{StateAbsent, StateAbsent, StateAbsent},
		requests: 3, retries: 0,
	}, {
		name: "held on some nodes only", before: map[string]Token{"node02": "T2"}, want: Done,
		after:    map[string]Token{},
		states:   []NodeState{StateAbsent, StateDeleted, StateAbsent},
		requests: 3, retries: 0,
	}, {
		name: "ambiguous and applied: the resend answers what the first removed", before: tokens123, want: Done,
		setup:    script("node02", "Remove", errAfter),
		after:    map[string]Token{},
		states:   []NodeState{StateDeleted, StateDeleted, StateDeleted},
		requests: 4, retries: 1,
	}, {
		// node03's first Remove hangs; the undo sends it again, which
		// removes T3 there too, and restores all three under the
		// operation's token.
		name: "rejected: restored under the operation's token", before: tokens123,
		setup: script("node03", "Remove", hangBefore, reject),
		want:  RolledBack, wantErr: ErrRejected,
		after:    all3(ours),
		states:   []NodeState{StateRestored, StateRestored, StateRestored},
		requests: 8, retries: 1, // 3 removes, node03's retry and undo, 3 restores
	}, {
		name: "node down: nothing sent there, the others restored", before: tokens123,
		setup: script("node03", "Remove", repeat(down, forever)...),
		want:  RolledBack, wantErr: ErrUnavailable,
		after:    map[string]Token{"node01": ours, "node02": ours, "node03": "T3"},
		states:   []NodeState{StateRestored, StateRestored, StateUnknown},
		requests: -1, retries: -1,
	}, {
		// node02's remove landed but its answer was lost, and the resend
		// hangs until node03's refusal ends the forward part: the undo
		// learns what node02 removed by sending the same Remove again.
		name: "ambiguous, then undone: the undo's resend learns what it removed", before: tokens123,
		setup: both(script("node02", "Remove", errAfter, hangBefore),
			script("node03", "Remove", hangBefore, hangBefore, reject)),
		want: RolledBack, wantErr: ErrRejected,
		after:    all3(ours),
		states:   []NodeState{StateRestored, StateRestored, StateRestored},
		requests: -1, retries: -1,
	}, {
		name: "undo cannot finish: pending, what it removed in the journal", before: tokens123,
		setup: both(script("node03", "Remove", hangBefore, reject),
			script("node01", "Create", repeat(down, forever)...)),
		want: Pending, wantErr: ErrRejected,
		after:    map[string]Token{"node02": ours, "node03": ours},
		states:   []NodeState{StateUnknown, StateRestored, StateRestored},
		requests: -1, retries: -1,
		left: 1, recover: true,
	}}
}

func TestDeleteWithoutRead(t *testing.T) {
	for _, tc := range removeCases() {
		tc.op = OpDelete
		setup := tc.setup
		tc.setup = func(e *env) {
			removes(e)
			if setup != nil {
				setup(e)
			}
		}
		t.Run(tc.name, func(t *testing.T) { runOpCase(t, tc) })
	}
}

// TestDeleteSendsNoRead fails if deletes on rops nodes go back to reading
// first: at 0 faults a delete of a present id costs one request per node,
// and no node is read.
func TestDeleteSendsNoRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		removes(e)
		c := e.coordinator()
		const n = 10
		for i := range n {
			if _, err := c.Create(t.Context(), GroupID(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		before := e.nodes.totalCalls()
		for i := range n {
			res, err := c.Delete(t.Context(), GroupID(fmt.Sprint(i)))
			if err != nil || res.Outcome != Done {
				t.Fatalf("delete %d: %v (%v)", i, res.Outcome, err)
			}
			if got, want := res.Requests, 3; got != want {
				t.Errorf("delete %d: %d requests, want %d", i, got, want)
			}
		}
		if got, want := e.nodes.totalCalls()-before, 3*n; got != want {
			t.Errorf("the nodes saw %d calls for %d deletes, want %d", got, n, want)
		}
		for _, node := range e.nodes {
			if got := node.callCount("Get"); got != 0 {
				t.Errorf("%s was read %d times", node.name, got)
			}
		}
	})
}

// TestDeleteWithoutReadPendingIntent: a delete reported pending has, in the
// journal, what it learned before the report: marked for roll back, the
// tokens it removed, the nodes where it may have removed one.
func TestDeleteWithoutReadPendingIntent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		removes(e)
		e.load(holdings{"node01": {gid: "T1"}, "node02": {gid: "T2"}, "node03": {gid: "T3"}})
		script("node03", "Remove", hangBefore, reject)(e)
		// node02 removes, its answer is lost, and it hangs until node03
		// refuses; then it is down.
		script("node02", "Remove", append([]fault{errAfter, hangBefore, hangBefore, hangBefore}, repeat(down, 1000)...)...)(e)
		script("node01", "Create", repeat(down, 1000)...)(e)
		res, _ := e.coordinator().Delete(t.Context(), gid)
		if res.Outcome != Pending {
			t.Fatalf("outcome=%v, want pending (%v)", res.Outcome, res.Err)
		}
		left := e.j.left()
		if len(left) != 1 {
			t.Fatalf("journal holds %v, want one intent", left)
		}
		in := left[0]
		if !in.Blind || !in.RollBack {
			t.Errorf("intent %+v: want Blind and RollBack", in)
		}
		if got, want := in.PreImage, map[string]Token{"node01": "T1", "node03": "T3"}; !maps.Equal(got, want) {
			t.Errorf("pre-image=%v, want %v (node02's removal is not known)", got, want)
		}
		if got, want := in.Nodes, []string{"node01", "node02", "node03"}; !slices.Equal(got, want) {
			t.Errorf("nodes=%v, want %v", got, want)
		}
		// node02's record of the removal tells Recover what to restore.
		e.nodes.heal()
		e.mustRecover(RolledBack)
		e.checkHoldings(holdings{"node01": {gid: res.Token}, "node02": {gid: res.Token}, "node03": {gid: res.Token}})
	})
}

// TestDeleteWithoutReadCrashRollsForward: a delete whose process died is
// rolled forward by Recover: Remove again everywhere, all end without the
// id, and what the dead process removed is not brought back.
func TestDeleteWithoutReadCrashRollsForward(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		removes(e)
		e.load(holdings{"node01": {gid: "1.000001"}, "node02": {gid: "1.000001"}, "node03": {gid: "1.000001"}})
		const tok = "2.000000"
		if _, err := e.nodes.byName("node01").Remove(t.Context(), gid, tok); err != nil {
			t.Fatal(err)
		}
		if err := e.j.Begin(t.Context(), Intent{Op: OpDelete, ID: gid, Token: tok, Nodes: names(e.nodes), Blind: true}); err != nil {
			t.Fatal(err)
		}
		e.mustRecover(Done)
		e.checkHoldings(holdings{})
		if left := e.j.left(); len(left) != 0 {
			t.Fatalf("journal holds %v", left)
		}
	})
}

// TestDeleteWithoutReadUndoThenCrash: a process that died while undoing a
// delete had marked it for roll back first, so Recover rolls it back: were
// it rolled forward, a copy of Remove would answer from the node's record
// of the removal, and the record the undo re-created would stay on one
// node only.
func TestDeleteWithoutReadUndoThenCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		removes(e)
		e.load(holdings{"node01": {gid: "1.000001"}, "node02": {gid: "1.000001"}, "node03": {gid: "1.000001"}})
		p := newProcess(t, 1, e.nodes, e.j, -1, false, 0)
		// node03 refuses; the process dies at node02's restore.
		script("node03", "Remove", hangBefore, reject)(e)
		e.nodes.byName("node02").onCall = func(c call) {
			if c.Method == "Create" {
				p.mu.Lock()
				p.crashAt = p.calls
				p.mu.Unlock()
			}
		}
		script("node02", "Create", hangBefore)(e)
		res, _ := p.c.Delete(t.Context(), gid)
		if !p.dead() {
			t.Fatalf("the process did not crash: %v (%v)", res.Outcome, res.Err)
		}
		e.nodes.heal()
		e.mustRecover(RolledBack)
		e.checkHoldings(holdings{"node01": {gid: res.Token}, "node02": {gid: res.Token}, "node03": {gid: res.Token}})
	})
}

// TestDeleteWithoutReadNewerRecord: a node holding a record whose token is
// not older than the delete's (written by a clock ahead of ours) refuses;
// the delete is undone and runs again with a token above it.
func TestDeleteWithoutReadNewerRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		removes(e)
		const future = "4102444800.000000" // 2100
		e.load(holdings{"node01": {gid: "1.000001"}, "node02": {gid: future}, "node03": {gid: "1.000001"}})
		res, err := e.coordinator().Delete(t.Context(), gid)
		if err != nil || res.Outcome != Done {
			t.Fatalf("outcome=%v (%v), want done", res.Outcome, err)
		}
		if CompareTokens(res.Token, future) <= 0 {
			t.Errorf("token %s, want one above %s", res.Token, future)
		}
		e.checkHoldings(holdings{})
		if got, want := res.Requests, e.nodes.totalCalls(); got != want {
			t.Errorf("result counts %d requests, the nodes saw %d", got, want)
		}
	})
}

// TestDeleteWithoutReadLateCopies: copies of a delete's Remove that land
// late, after a create of the id that followed it, remove nothing.
func TestDeleteWithoutReadLateCopies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		removes(e)
		e.load(holdings{"node01": {gid: "T1"}, "node02": {gid: "T2"}, "node03": {gid: "T3"}})
		script("node01", "Remove", late)(e)
		script("node02", "Remove", duplicate)(e)
		e.mustDo(OpDelete, gid, Done)
		res := e.mustDo(OpCreate, gid, Done)
		time.Sleep(time.Hour) // every late copy has landed
		synctest.Wait()
		if got, want := e.nodes.holders(gid), all3(res.Token); !maps.Equal(got, want) {
			t.Fatalf("after late copies of the delete, nodes hold %v, want the create's %v", got, want)
		}
	})
}

// TestDeleteWithoutReadRecoveredLate: a pending delete recovered after the
// nodes forgot what its Removes removed (their records live as long as
// tombstones) is restored on the nodes whose answer it never learned, as
// on those it did: asking them again would find nothing, and leave the id
// on some nodes only.
func TestDeleteWithoutReadRecoveredLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		removes(e)
		e.load(holdings{"node01": {gid: "T1"}, "node02": {gid: "T2"}, "node03": {gid: "T3"}})
		script("node03", "Remove", hangBefore, reject)(e)
		script("node02", "Remove", append([]fault{errAfter, hangBefore, hangBefore, hangBefore}, repeat(down, 1000)...)...)(e)
		script("node01", "Create", repeat(down, 1000)...)(e)
		res, _ := e.coordinator().Delete(t.Context(), gid)
		if res.Outcome != Pending {
			t.Fatalf("outcome=%v, want pending (%v)", res.Outcome, res.Err)
		}
		time.Sleep(DefaultTombstoneTTL)
		e.nodes.heal()
		node02 := e.nodes.byName("node02")
		node02.mu.Lock()
		node02.removals = nil // expired
		node02.mu.Unlock()
		e.mustRecover(RolledBack)
		e.checkHoldings(holdings{"node01": {gid: res.Token}, "node02": {gid: res.Token}, "node03": {gid: res.Token}})
	})
}
