package memory_test

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/storetest"
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

// TestStoreTombstonesFull keeps at most three tombstones, and never drops
// one before its TTL, which is what the node advertises (issue 17: the
// oldest were dropped to make room, and a late create of a deleted token
// landed within the TTL). While three live, every request that would leave
// a fourth is refused with an EUnavailable error, Overloaded, whose
// RetryAfter says when the oldest expires, and touches nothing; the
// tombstones kept still fence, a renewal and requests that leave none go
// on; once the oldest expires, a delete goes through.
func TestStoreTombstonesFull(t *testing.T) {
	const ttl = time.Minute
	clock := storetest.NewClock(time.Unix(1700000000, 0))
	s := memory.NewWithOptions(memory.Options{MaxTombstones: 3, TombstoneTTL: ttl, Clock: clock})
	ctx := t.Context()
	wantCode(t, s.Delete(ctx, "a", "1.000001"), core.ENotFound, "Delete(a, 1) at 0s")
	clock.Advance(time.Second)
	wantCode(t, s.Create(ctx, "b", "1.000001"), "", "Create(b, 1)")
	wantCode(t, s.Delete(ctx, "b", "1.000001"), "", "Delete(b, 1) at 1s")
	clock.Advance(time.Second)
	wantCode(t, s.Delete(ctx, "c", "1.000001"), core.ENotFound, "Delete(c, 1) at 2s")
	wantCode(t, s.Create(ctx, "held", "1.000001"), "", "Create(held, 1)")

	// Full: what would leave a tombstone is refused, and says when the
	// oldest, a's, expires: 58s from now; a Remove, which leaves two, when
	// b's does.
	for _, tc := range []struct {
		what  string
		do    func() error
		after time.Duration
	}{
		{"Delete(d, 1) of a missing record", func() error { return s.Delete(ctx, "d", "1.000001") }, 58 * time.Second},
		{"Delete(held, 1)", func() error { return s.Delete(ctx, "held", "1.000001") }, 58 * time.Second},
		{"Delete(held)", func() error { return s.Delete(ctx, "held", "") }, 58 * time.Second},
		{"Delete(held, 2) of another token", func() error { return s.Delete(ctx, "held", "2.000001") }, 58 * time.Second},
		{"Create(held, 2), which exists", func() error { return s.Create(ctx, "held", "2.000001") }, 58 * time.Second},
		{"Remove(held, 2)", func() error { _, err := s.Remove(ctx, "held", "2.000001"); return err }, 59 * time.Second},
	} {
		err := tc.do()
		wantCode(t, err, core.EUnavailable, tc.what+" while full")
		e, _ := errors.AsType[*core.Error](err)
		if got, want := e.RetryAfter, tc.after; got != want || !e.Overloaded {
			t.Fatalf("%s while full: RetryAfter=%v, Overloaded=%v; want %v, true", tc.what, got, e.Overloaded, want)
		}
	}
	// A refusal for want of room does not raise the id's fence (it was
	// not applied), and comes after the fence's: a stale request is stale.
	f1, f2 := core.WithFence(ctx, "3.000001"), core.WithFence(ctx, "3.000002")
	wantCode(t, s.Delete(f2, "held", "1.000001"), core.EUnavailable, "Delete(held, 1) on fence 2 while full")
	if _, err := s.Get(f1, "held"); err != nil {
		t.Fatalf("Get(held) on fence 1 after a refused Delete on fence 2: %v", err)
	}
	wantCode(t, s.Delete(core.WithFence(ctx, "2.000001"), "held", "1.000001"), core.EStale, "Delete(held, 1) on an older fence while full")
	// Within the TTL, every tombstone kept still fences.
	for _, id := range []core.GroupID{"a", "b", "c"} {
		wantCode(t, s.Create(ctx, id, "1.000001"), core.EFenced, fmt.Sprintf("late Create(%s, 1) while full", id))
	}
	// A renewal needs no room, nor does what leaves no tombstone.
	wantCode(t, s.Delete(ctx, "c", "1.000001"), core.ENotFound, "Delete(c, 1) again, a renewal")
	wantCode(t, s.Create(ctx, "e", "1.000001"), "", "Create(e, 1)")
	wantCode(t, s.Delete(ctx, "f", ""), core.ENotFound, "Delete(f) of a missing record")
	if rec, err := s.Get(ctx, "held"); err != nil || rec.Token != "1.000001" {
		t.Fatalf("Get(held)=%v, %v after refused requests, want token 1.000001", rec, err)
	}
	if got, want := count(t, s), 2; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}

	// a expires at 60s, b at 61s, c at 62s.
	clock.Advance(ttl - 2*time.Second)
	wantCode(t, s.Delete(ctx, "d", "1.000001"), core.ENotFound, "Delete(d, 1) once a's tombstone expired")
	wantCode(t, s.Create(ctx, "d", "1.000001"), core.EFenced, "late Create(d, 1)")
	wantCode(t, s.Create(ctx, "a", "1.000001"), "", "Create(a, 1) after its tombstone expired")
	_, err := s.Remove(ctx, "held", "2.000001")
	wantCode(t, err, core.EUnavailable, "Remove(held, 2), which leaves two, at 60s")
	if e, _ := errors.AsType[*core.Error](err); e.RetryAfter != 2*time.Second {
		t.Fatalf("Remove(held, 2) at 60s: RetryAfter=%v, want %v, when c's expires", e.RetryAfter, 2*time.Second)
	}
	clock.Advance(2 * time.Second)
	if tok, err := s.Remove(ctx, "held", "2.000001"); err != nil || tok != "1.000001" {
		t.Fatalf("Remove(held, 2) once b's and c's tombstones expired=%q, %v; want 1.000001, nil", tok, err)
	}
	// The refused requests left no tombstone: held's token 2 is not fenced.
	wantCode(t, s.Create(ctx, "held", "2.000001"), "", "Create(held, 2)")
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

// wantCode fails t unless err has code ("" for nil).
func wantCode(t *testing.T, err error, code core.Code, what string) {
	t.Helper()
	if got := core.ErrorCode(err); got != code {
		t.Fatalf("%s: err=%v, want code %q", what, err, code)
	}
}

// count returns s's Count.
func count(t *testing.T, s *memory.Store) int {
	t.Helper()
	n, err := s.Count(t.Context())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
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

// TestRecordKeepsOneCopy: a record keeps one copy of its id, shared by its
// record, its fence and the listing's index, and one of its token, shared
// by the record and the fence it carried, whatever separate strings the
// request brought (a server decodes the id, the token and the fence
// apart). It kept the request's id and fence strings besides: three
// objects a record beside its token where one will do, 32 bytes more a
// record, and half again as many objects for the collector to mark.
func TestRecordKeepsOneCopy(t *testing.T) {
	const n = 20000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapObjects
	}
	ids := make([]core.GroupID, n)
	toks := make([]core.Token, n)
	for i := range n {
		ids[i] = core.GroupID(fmt.Sprintf("group-record-%08d", i)) // past the tiny allocator's 16 bytes
		toks[i] = core.Token(fmt.Sprintf("1700000000.%06d", i))
	}
	before := heap()
	s := memory.New()
	for i := range n {
		// The request's own strings: a copy of the id, the token, and
		// the fence header apart from it.
		id := core.GroupID(strings.Clone(string(ids[i])))
		fence := core.Token(strings.Clone(string(toks[i])))
		if err := s.Create(core.WithFence(t.Context(), fence), id, toks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.List(t.Context(), "", 1); err != nil { // the index, built
		t.Fatal(err)
	}
	per := float64(heap()-before) / n
	t.Logf("%.2f objects per record", per)
	runtime.KeepAlive(s)
	runtime.KeepAlive(ids)
	runtime.KeepAlive(toks)
	// The id's copy, and the maps' and the index's storage shared out.
	if per > 1.5 {
		t.Fatalf("the store keeps %.2f objects per record beside its token, want about 1: one copy of each id, none of the fence", per)
	}
}
