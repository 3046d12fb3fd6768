package memory_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/memory"
	"github.com/reliable-ops/rops/nodes/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(testing.TB) core.Store { return memory.New() })
}

// TestStoreChurn creates and deletes an id far more often than the store
// holds records, with no List in between, so the store must tidy its index
// on its own; the records kept meanwhile must survive that.
func TestStoreChurn(t *testing.T) {
	s := memory.New()
	for i := range 5000 {
		if err := s.Create(t.Context(), "churn", "t"); err != nil {
			t.Fatalf("Create(churn): %v", err)
		}
		if err := s.Delete(t.Context(), "churn", "t"); err != nil {
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
