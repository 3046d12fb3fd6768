package core

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// losableLocker is a Locker whose locks the test can lose, as an etcd lease
// that expires: lose ends the context of every lock held.
type losableLocker struct {
	mu    keyedMutex
	guard sync.Mutex
	held  []context.CancelCauseFunc
}

var errLost = errors.New("lease expired")

func (l *losableLocker) Lock(ctx context.Context, id GroupID) (context.Context, func(), error) {
	unlock, err := l.mu.lock(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	held, cancel := context.WithCancelCause(ctx)
	l.guard.Lock()
	l.held = append(l.held, cancel)
	l.guard.Unlock()
	return held, func() { cancel(nil); unlock() }, nil
}

func (l *losableLocker) lose() {
	l.guard.Lock()
	defer l.guard.Unlock()
	for _, cancel := range l.held {
		cancel(errLost)
	}
}

// TestLockLostStopsSending: an operation whose lock is lost mid-way sends
// nothing more for its id, not even its undo (another coordinator may hold
// the id now), and ends pending with its intent left for whoever holds the
// lock next.
func TestLockLostStopsSending(t *testing.T) {
	for _, op := range []Op{OpCreate, OpDelete} {
		t.Run(string(op), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				if op == OpDelete {
					for _, n := range e.nodes {
						n.put(gid, "1.000000")
					}
				}
				locks := &losableLocker{}
				e.cfg.Locks = locks
				var once sync.Once
				atLoss := -1
				n1 := e.nodes.byName("node01")
				n1.onCall = func(c call) {
					if c.Method == "Create" || c.Method == "Delete" || c.Method == "Remove" {
						once.Do(func() {
							locks.lose()
							atLoss = e.nodes.totalCalls()
						})
					}
				}
				script("node01", "Create", hangAfter)(e)
				script("node01", "Delete", hangAfter)(e)
				script("node01", "Remove", hangAfter)(e)
				c := e.coordinator()
				var res Result
				if op == OpCreate {
					res, _ = c.Create(context.Background(), gid)
				} else {
					res, _ = c.Delete(context.Background(), gid)
				}
				if got, want := res.Outcome, Pending; got != want {
					t.Fatalf("outcome=%v (%v), want %v", got, res.Err, want)
				}
				// The calls made at once with node01's (the fan-out) may
				// be counted after the loss; nothing after them.
				if got, max := e.nodes.totalCalls(), atLoss+len(e.nodes)-1; atLoss < 0 || got > max {
					t.Fatalf("calls=%d after the lock was lost at %d, want at most %d: the operation went on sending", got, atLoss, max)
				}
				if got := len(e.j.left()); got != 1 {
					t.Fatalf("intents left=%d, want 1 (for the next holder of the lock)", got)
				}
			})
		})
	}
}

// sharedJournal is a fakeJournal that other coordinators write too: it
// reads an id's intents afresh and keeps each id's greatest token begun.
type sharedJournal struct {
	*fakeJournal
	floors sync.Map // GroupID → Token
}

var _ SharedJournal = (*sharedJournal)(nil)

func (j *sharedJournal) Begin(ctx context.Context, in Intent) error {
	if err := j.fakeJournal.Begin(ctx, in); err != nil {
		return err
	}
	j.floors.Store(in.ID, in.Token)
	return nil
}

func (j *sharedJournal) Intents(ctx context.Context, id GroupID) ([]Intent, Token, error) {
	var ins []Intent
	for _, in := range j.left() {
		if in.ID == id {
			ins = append(ins, in)
		}
	}
	floor, _ := j.floors.Load(id)
	f, _ := floor.(Token)
	return ins, f, nil
}

// TestSharedJournalSeesOthersIntents: a coordinator that loaded the journal
// before another coordinator left an intent on an id settles that intent
// when it next takes the id's lock, and takes a token above every token
// begun on the id, however far ahead the other's clock was.
func TestSharedJournalSeesOthersIntents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		j := &sharedJournal{fakeJournal: e.j}
		e.cfg.Journal = j
		c := e.coordinator()
		// This coordinator reads the journal once, on its first operation.
		if _, err := c.Create(context.Background(), "other"); err != nil {
			t.Fatalf("Create other: %v", err)
		}
		// Another coordinator, whose clock is far ahead, crashed mid-create
		// of gid: its token is on node01 only.
		const theirs Token = "9999999999.000001"
		if err := j.Begin(context.Background(), Intent{Op: OpCreate, ID: gid, Token: theirs, Nodes: names(e.nodes)}); err != nil {
			t.Fatal(err)
		}
		e.nodes.byName("node01").put(gid, theirs)

		res, err := c.Create(context.Background(), gid)
		if err != nil || res.Outcome != Done {
			t.Fatalf("Create: %v %v, want done", res.Outcome, err)
		}
		if CompareTokens(res.Token, theirs) <= 0 {
			t.Fatalf("token=%s, want above %s, the greatest begun on %q", res.Token, theirs, gid)
		}
		if got := e.nodes.holders(gid); len(got) != 3 || slices.ContainsFunc([]string{"node01", "node02", "node03"}, func(n string) bool { return got[n] != res.Token }) {
			t.Fatalf("holders=%v, want every node holding %s", got, res.Token)
		}
		if got := j.left(); len(got) != 0 {
			t.Fatalf("intents left=%v, want none: the other's was settled first", got)
		}
	})
}

// TestSharedJournalRecoverSkipsFinished: an intent that another coordinator
// finished after this one read the journal is not acted on again: with
// nodes that keep no tombstones, a stale rollback of a delete would bring
// back a record that a later, reported delete removed.
func TestSharedJournalRecoverSkipsFinished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		for _, n := range e.nodes {
			n.original()
		}
		j := &sharedJournal{fakeJournal: e.j}
		e.cfg.Journal = j
		c := e.coordinator()
		// A delete reported pending by another coordinator: roll back.
		in := Intent{Op: OpDelete, ID: gid, Token: "5.000000", Nodes: names(e.nodes),
			PreImage: map[string]Token{"node01": "1.000000", "node02": "1.000000", "node03": "1.000000"}, RollBack: true}
		if err := j.Begin(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		// This coordinator reads it...
		if _, err := c.Create(context.Background(), "other"); err != nil {
			t.Fatalf("Create other: %v", err)
		}
		// ...then the other settles it and deletes gid, reported done.
		if err := j.Finish(context.Background(), in.Token); err != nil {
			t.Fatal(err)
		}
		results, err := c.Recover(context.Background(), 4)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if len(results) != 0 {
			t.Fatalf("results=%+v, want none", results)
		}
		if got := e.nodes.holders(gid); len(got) != 0 {
			t.Fatalf("holders=%v, want none: a finished delete was rolled back", got)
		}
	})
}
