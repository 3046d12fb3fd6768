package memory_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/memory"
	"github.com/reliable-ops/rops/nodes/storetest"
)

func TestStore(t *testing.T) {
	storetest.RunWithOptions(t, func(testing.TB) core.Store { return memory.New() }, storetest.Options{
		Fences: true,
		TTL:    time.Minute,
		OpenWithClock: func(_ testing.TB, clock core.Clock) core.Store {
			return memory.NewWithOptions(memory.Options{TombstoneTTL: time.Minute, Clock: clock})
		},
	})
}

// TestStoreWithoutTombstones: a Store that keeps no tombstones meets the
// contract as the original server does, and says that it does not fence.
func TestStoreWithoutTombstones(t *testing.T) {
	open := func(testing.TB) core.Store { return memory.NewWithOptions(memory.Options{MaxTombstones: -1}) }
	storetest.Run(t, open)
	s := open(t).(*memory.Store)
	if s.Fences() {
		t.Fatalf("Fences()=true, want false")
	}
	wantNotFound(t, s.Delete(t.Context(), "a", "1.000001"))
	if err := s.Create(t.Context(), "a", "1.000001"); err != nil {
		t.Fatalf("Create(a) after Delete(a, 1.000001): %v, want nil", err)
	}
}

// TestStoreTombstoneBound keeps at most three tombstones: a fourth drops
// the oldest, which no longer fences, before its TTL.
func TestStoreTombstoneBound(t *testing.T) {
	clock := storetest.NewClock(time.Unix(1700000000, 0))
	s := memory.NewWithOptions(memory.Options{MaxTombstones: 3, Clock: clock})
	for _, id := range []core.GroupID{"a", "b", "c", "d"} {
		clock.Advance(time.Second)
		if err := s.Delete(t.Context(), id, "1.000001"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("Delete(%s): err=%v, want %v", id, err, core.ErrNotFound)
		}
	}
	if err := s.Create(t.Context(), "a", "1.000001"); err != nil {
		t.Fatalf("Create(a) of the oldest tombstone: %v, want nil", err)
	}
	for _, id := range []core.GroupID{"b", "c", "d"} {
		if err := s.Create(t.Context(), id, "1.000001"); !errors.Is(err, core.ErrFenced) {
			t.Fatalf("Create(%s): err=%v, want %v", id, err, core.ErrFenced)
		}
	}
}

// TestStoreTombstoneRenewals renews one tombstone far more often than the
// bound, with a clock that stands still, between two others: renewals
// count once against the bound, so all three stay.
func TestStoreTombstoneRenewals(t *testing.T) {
	clock := storetest.NewClock(time.Unix(1700000000, 0))
	s := memory.NewWithOptions(memory.Options{MaxTombstones: 3, Clock: clock})
	wantNotFound(t, s.Delete(t.Context(), "b", "1.000001"))
	for range 1000 {
		wantNotFound(t, s.Delete(t.Context(), "x", "1.000001"))
	}
	wantNotFound(t, s.Delete(t.Context(), "c", "1.000001"))
	for _, id := range []core.GroupID{"b", "x", "c"} {
		if err := s.Create(t.Context(), id, "1.000001"); !errors.Is(err, core.ErrFenced) {
			t.Fatalf("Create(%s): err=%v, want %v", id, err, core.ErrFenced)
		}
	}
}

// TestStoreChurn creates and deletes an id far more often than the store
// holds records, with no List in between, so the store must tidy its index
// on its own; the records kept meanwhile must survive that.
func TestStoreChurn(t *testing.T) {
	s := memory.New()
	for i := range 5000 {
		// A token per round: a deleted token is fenced.
		tok := core.Token(fmt.Sprintf("1700000000.%06d", i))
		if err := s.Create(t.Context(), "churn", tok); err != nil {
			t.Fatalf("Create(churn): %v", err)
		}
		if err := s.Delete(t.Context(), "churn", tok); err != nil {
			t.Fatalf("Delete(churn): %v", err)
		}
		if i%100 == 0 {
			id := core.GroupID(fmt.Sprintf("keep%02d", i/100))
			if err := s.Create(t.Context(), id, "t"); err != nil {
				t.Fatalf("Create(%s): %v", id, err)
			}
		}
	}
	page, err := s.List(t.Context(), "", 100)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, want := len(page), 50; got != want {
		t.Fatalf("len(List)=%d, want %d", got, want)
	}
	if got, want := page[0].ID, core.GroupID("keep00"); got != want {
		t.Fatalf("List[0].ID=%q, want %q", got, want)
	}
}

// wantNotFound fails t unless err, a Delete's, is of class ErrNotFound.
func wantNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Delete: err=%v, want %v", err, core.ErrNotFound)
	}
}

func TestJournal(t *testing.T) {
	storetest.RunJournal(t, func(testing.TB) core.Journal { return memory.NewJournal() })
}

func TestJournalBeginTwice(t *testing.T) {
	j := memory.NewJournal()
	in := core.Intent{Op: core.OpCreate, ID: "a", Token: "1.000001", Nodes: []string{"node01"}}
	if err := j.Begin(t.Context(), in); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if err := j.Begin(t.Context(), in); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("second Begin: err=%v, want %v", err, core.ErrInvalid)
	}
}

func BenchmarkCreate(b *testing.B) {
	storetest.BenchCreate(b, func(testing.TB) core.Store { return memory.New() })
}

func BenchmarkList(b *testing.B) {
	storetest.BenchList(b, func(testing.TB) core.Store { return memory.New() }, 100_000, core.DefaultPageSize)
}

// BenchmarkListWhileCreating measures the worst case of the lazy index: a
// List after every create, in a store of 100k records, as when stats run
// during a bulk job.
func BenchmarkListWhileCreating(b *testing.B) {
	s := memory.New()
	ctx := b.Context()
	const n = 100_000
	for i := range n {
		if err := s.Create(ctx, core.GroupID(strconv.Itoa(i)), "1.000001"); err != nil {
			b.Fatal(err)
		}
	}
	i := n
	for b.Loop() {
		i++
		if err := s.Create(ctx, core.GroupID(strconv.Itoa(i)), "1.000001"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.List(ctx, "5", core.DefaultPageSize); err != nil {
			b.Fatal(err)
		}
	}
}
