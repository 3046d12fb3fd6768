package core

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A coordinator paused past its lease (issue 17): another settles its
// intent and reports the create done; what the old holder sends after it
// resumes must change nothing. Recover reads every node under a fence of
// its own, above the intent's token, so the nodes refuse the old holder's
// requests (which carry its token as their fence) from then on.
func TestRecoverFencesTheOldHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		old := Token("1700000000.000001")
		e.load(holdings{"node01": {gid: old}, "node02": {gid: old}, "node03": {gid: old}})
		if err := e.j.Begin(t.Context(), Intent{Op: OpCreate, ID: gid, Token: old, Nodes: []string{"node01", "node02", "node03"}}); err != nil {
			t.Fatal(err)
		}
		e.mustRecover(Done)

		// The old holder resumes and compensates: a conditional delete
		// of its own record, under its own fence, on every node.
		stale := WithFence(t.Context(), old)
		for _, n := range e.nodes {
			err := n.Delete(stale, gid, old)
			if got, want := ErrorCode(err), EStale; got != want {
				t.Fatalf("%s: the old holder's delete: code %q (%v), want %q", n.Name(), got, err, want)
			}
			if e, _ := errors.AsType[*Error](err); e.Fence == "" || CompareTokens(e.Fence, old) <= 0 {
				t.Errorf("%s: EStale carries fence %q, want one above %q", n.Name(), e.Fence, old)
			}
		}
		e.checkHoldings(holdings{"node01": {gid: old}, "node02": {gid: old}, "node03": {gid: old}})

		// A later operation of a live coordinator goes through: its token
		// is drawn once it holds the lock, above the fence.
		e.mustDo(OpDelete, gid, Done)
		e.checkHoldings(holdings{"node01": {}, "node02": {}, "node03": {}})
		for _, n := range e.nodes {
			if err := n.Create(stale, gid, old); ErrorCode(err) != EStale {
				t.Fatalf("%s: the old holder's late create after the delete: %v, want EStale", n.Name(), err)
			}
		}
		e.checkHoldings(holdings{"node01": {}, "node02": {}, "node03": {}})
	})
}

// An operation's token is drawn once it holds the id's lock: one drawn
// while a Recover held it would be below Recover's fence, and the nodes
// would refuse every request of the operation.
func TestOperationAfterRecoverIsNotStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		res := e.leavePending(OpCreate, gid)
		c := e.coordinator()
		// Hold the lock as Recover does, draw the Create's token
		// meanwhile, then let Recover settle the id under a fence drawn
		// after it.
		unlock, err := c.cfg.Locks.(*keyedMutex).lock(t.Context(), gid)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan Result)
		go func() {
			res, _ := c.Create(t.Context(), gid)
			done <- res
		}()
		synctest.Wait() // the Create waits for the lock, its first token drawn
		fence := c.cfg.Tokens.Next()
		for _, n := range e.nodes {
			if _, err := n.Get(WithFence(t.Context(), fence), gid); err != nil && ErrorCode(err) != ENotFound {
				t.Fatal(err)
			}
		}
		unlock()
		got := <-done
		if got.Outcome != Done {
			t.Fatalf("create after a fence: %v (%v); the pending one was %s", got.Outcome, got.Err, res.Token)
		}
	})
}

// A pending report promises a roll back, and marks its intent so in the
// journal; a mark that fails must reach the result (issue 17): the intent
// is left unmarked, and a Recover may finish it instead.
func TestPendingMarkFailureIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.j.failUpdate = []error{Errorf(ETransient, "journal: unreachable")}
		n := e.nodes[1]
		n.fn = func(c call) fault {
			switch c.Method {
			case "Create":
				return errAfter
			case "Delete":
				return down
			}
			return pass
		}
		res, err := e.coordinator().Create(t.Context(), gid)
		if res.Outcome != Pending {
			t.Fatalf("outcome %v, want pending", res.Outcome)
		}
		if !strings.Contains(err.Error(), "cannot mark intent") || !errors.Is(err, ErrIntentUnsure) {
			t.Fatalf("err = %v, want the failed mark, with ErrIntentUnsure", err)
		}
		if !errors.Is(res.Err, ErrIntentUnsure) {
			t.Fatalf("res.Err = %v, want the failed mark too", res.Err)
		}
	})
}

// A Blind delete that ends pending writes what it learned into its intent;
// a write that fails must reach the result too.
func TestLearnedUpdateFailureIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.load(holdings{"node01": {gid: "1.000001"}, "node02": {gid: "1.000001"}, "node03": {gid: "1.000001"}})
		for _, n := range e.nodes {
			n.removes = true
		}
		// The mark before the undo succeeds; the write of what the
		// delete learned, after the undo failed, does not.
		e.j.failUpdate = []error{nil, Errorf(ETransient, "journal: unreachable")}
		// node02 refuses for good once the others have removed the
		// record (its first answers are lost), and cannot restore it.
		e.nodes[1].script = map[string][]fault{"Remove": {errBefore, errBefore, reject}}
		e.nodes[1].fn = func(c call) fault {
			if c.Method == "Create" {
				return down
			}
			return pass
		}
		e.nodes[0].fn = func(c call) fault {
			if c.Method == "Create" {
				return down
			}
			return pass
		}
		res, err := e.coordinator().Delete(t.Context(), gid)
		if res.Outcome != Pending {
			t.Fatalf("outcome %v (%v), want pending", res.Outcome, err)
		}
		if err == nil || !strings.Contains(err.Error(), "cannot record what the delete") {
			t.Fatalf("err = %v, want the failed journal write", err)
		}
	})
}

// Against a node that does not fence, an undo that met an ambiguous write
// waits out the write's lifetime, but never past the compensation timeout
// (issue 17): beyond it the operation is pending, not stalled.
func TestUndoLifetimeWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2)
		for _, n := range e.nodes {
			n.noFence = true
		}
		e.cfg.CompensationTimeout = 5 * time.Second
		e.cfg.RequestLifetime = time.Minute
		// node01's create lands but its answer is lost; node02 refuses
		// for good once node01 has answered.
		e.nodes[0].script = map[string][]fault{"Create": {errAfter}}
		e.nodes[1].script = map[string][]fault{"Create": {errBefore, errBefore, reject}}
		start := time.Now()
		res, err := e.coordinator().Create(t.Context(), gid)
		took := time.Since(start) // the bubble's clock: exact
		if res.Outcome != Pending {
			t.Fatalf("outcome %v (%v), want pending", res.Outcome, err)
		}
		if !strings.Contains(err.Error(), "past the compensation timeout") {
			t.Fatalf("err = %v, want the lifetime past the compensation timeout", err)
		}
		if took > e.cfg.CompensationTimeout {
			t.Fatalf("the undo took %v, beyond the compensation timeout %v", took, e.cfg.CompensationTimeout)
		}
	})
}
