package badger_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/drivers/memory"
)

// storeWrite is a Create, or a Delete if del is set.
type storeWrite struct {
	del   bool
	id    core.GroupID
	token core.Token
}

func (w storeWrite) String() string {
	if w.del {
		return fmt.Sprintf("Delete(%s, %q)", w.id, w.token)
	}
	return fmt.Sprintf("Create(%s, %s)", w.id, w.token)
}

func (w storeWrite) run(ctx context.Context, s core.Store) error {
	if w.del {
		return s.Delete(ctx, w.id, w.token)
	}
	return s.Create(ctx, w.id, w.token)
}

// batch queues writes on s while its committer is held, one after another
// so that they arrive in order, runs them as one batch and returns each
// one's outcome. It fails the test unless they took one commit, or none if
// none of them writes.
func batch(t *testing.T, s *badger.Store, ctxs []context.Context, writes []storeWrite) []error {
	t.Helper()
	release := s.Hold()
	commits := s.Commits()
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		ctx := t.Context()
		if ctxs != nil {
			ctx = ctxs[i]
		}
		wg.Go(func() { errs[i] = w.run(ctx, s) })
		for s.Queued() < i+1 {
			// Spin until w is queued: the next write must come after it.
			runtime.Gosched()
		}
	}
	release()
	wg.Wait()
	if got := s.Commits() - commits; got > 1 {
		t.Errorf("%d writes took %d commits, want them in one", len(writes), got)
	}
	return errs
}

// TestStoreBatchSameID: concurrent Creates of one id with different tokens,
// all in one batch: exactly one wins, and the record holds its token.
func TestStoreBatchSameID(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	const n = 16
	var writes []storeWrite
	for i := range n {
		writes = append(writes, storeWrite{id: "x", token: core.Token(fmt.Sprintf("1700000000.%06d", i))})
	}
	errs := batch(t, s, nil, writes)
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%v and %v both succeeded", writes[winner], writes[i])
		case err == nil:
			winner = i
		case !errors.Is(err, core.ErrExists):
			t.Fatalf("%v: err=%v, want nil or %v", writes[i], err, core.ErrExists)
		}
	}
	if winner != 0 {
		t.Fatalf("winner=%d, want the first queued, 0", winner)
	}
	rec, err := s.Get(t.Context(), "x")
	if err != nil || rec.Token != writes[0].token {
		t.Fatalf("Get(x)=%+v, %v; want token %s", rec, err, writes[0].token)
	}
}

// TestStoreBatchSequence queues a batch in which writes depend on earlier
// ones of the same id, and some fail, and checks that each caller gets what
// it would get had the writes been applied one at a time in that order, as
// the memory store applies them, and that the records end up the same.
func TestStoreBatchSequence(t *testing.T) {
	const a, b = core.Token("1700000000.000001"), core.Token("1700000000.000002")
	writes := []storeWrite{
		// Create then delete, and create again with another token.
		{id: "n", token: a}, {del: true, id: "n", token: a}, {id: "n", token: b},
		// A replay, then a conflict that must not undo it.
		{id: "r", token: a}, {id: "r", token: a}, {id: "r", token: b},
		// On a record from before the batch: a conflict, a conditional
		// delete with the wrong token, the right one, a new create.
		{id: "p", token: b}, {del: true, id: "p", token: b}, {del: true, id: "p", token: a}, {id: "p", token: b},
		// Deletes of what is not there, before and after creating it.
		{del: true, id: "m"}, {id: "m", token: a}, {del: true, id: "m"}, {del: true, id: "m"},
	}
	dir := t.TempDir()
	s := mustOpen(t, dir)
	oracle := memory.New()
	for _, st := range []core.Store{s, oracle} {
		if err := st.Create(t.Context(), "p", a); err != nil {
			t.Fatalf("Create(p): %v", err)
		}
	}
	errs := batch(t, s, nil, writes)
	for i, w := range writes {
		want := w.run(t.Context(), oracle)
		if got := errs[i]; core.ErrorCode(got) != core.ErrorCode(want) {
			t.Errorf("#%d %v: err=%v, want %v", i, w, got, want)
		}
	}
	want, err := oracle.List(t.Context(), "", 100)
	if err != nil {
		t.Fatalf("List(oracle): %v", err)
	}
	checkRecords(t, s, want)
	// What the batch wrote survives a reopen.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkRecords(t, mustOpen(t, dir), want)
}

func checkRecords(t *testing.T, s core.Store, want []core.Record) {
	t.Helper()
	got, err := s.List(t.Context(), "", 100)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records=%v, want %v", got, want)
	}
}

// TestStoreCancel: a write whose ctx ends before the committer takes it
// writes nothing and returns ctx's error, and the others of its batch go
// on.
func TestStoreCancel(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Create(ctx, "early", "1.000001"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with an ended ctx: err=%v, want %v", err, context.Canceled)
	}

	ctx, cancel = context.WithCancel(t.Context())
	release := s.Hold()
	commits := s.Commits()
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, id := range []core.GroupID{"before", "cancelled", "after"} {
		c := t.Context()
		if id == "cancelled" {
			c = ctx
		}
		wg.Go(func() { errs[i] = s.Create(c, id, "1.000001") })
		for s.Queued() < i+1 {
			runtime.Gosched()
		}
	}
	cancel()
	release()
	wg.Wait()
	if errs[0] != nil || !errors.Is(errs[1], context.Canceled) || errs[2] != nil {
		t.Fatalf("errs=%v, want [nil %v nil]", errs, context.Canceled)
	}
	if got := s.Commits() - commits; got != 1 {
		t.Fatalf("commits=%d, want 1", got)
	}
	for id, want := range map[core.GroupID]error{"early": core.ErrNotFound, "cancelled": core.ErrNotFound, "before": nil, "after": nil} {
		if _, err := s.Get(t.Context(), id); !errors.Is(err, want) {
			t.Errorf("Get(%s): err=%v, want %v", id, err, want)
		}
	}
}

// TestStoreGroupCommit: concurrent writers share commits.
func TestStoreGroupCommit(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	const workers, each = core.DefaultConcurrency, 50
	commits := s.Commits()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := s.Create(t.Context(), core.GroupID(fmt.Sprint(w, "-", i)), "1.000001"); err != nil {
					t.Errorf("Create: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	n, err := s.Count(t.Context())
	if err != nil || n != workers*each {
		t.Fatalf("Count=%d, %v; want %d", n, err, workers*each)
	}
	got := s.Commits() - commits
	t.Logf("%d writes in %d commits: %.1f writes/commit", n, got, float64(n)/float64(got))
	if got >= uint64(n) {
		t.Fatalf("%d writes took %d commits, want fewer", n, got)
	}
}

// TestStoreClosed: writes after Close fail, and do not hang.
func TestStoreClosed(t *testing.T) {
	s, err := badger.Open(t.TempDir())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, w := range []storeWrite{{id: "a", token: "1.000001"}, {del: true, id: "a"}} {
		if err := w.run(t.Context(), s); core.ErrorCode(err) != core.EInternal {
			t.Fatalf("%v after Close: err=%v, want code %s", w, err, core.EInternal)
		}
	}
}
