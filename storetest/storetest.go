// Package storetest is the conformance suite of core.Store and core.Journal:
// every implementation (memory, badger, the HTTP client over the server)
// runs the same tests, so they cannot drift apart. It uses only the core
// interfaces and a context, never an implementation's internals.
//
// Use it from a test:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(tb testing.TB) core.Store { return memory.New() })
//	}
//
// A Store that keeps tombstones (core.Fencer) runs the tombstone rules and
// the fence rules (core.CheckFence) too, and, if it lets the suite set its
// clock, the tombstones' expiry:
//
//	storetest.RunWithOptions(t, open, storetest.Options{Fences: true,
//		OpenWithClock: func(tb testing.TB, c core.Clock) core.Store {
//			return memory.NewWithOptions(memory.Options{Clock: c})
//		}})
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
)

// Tokens as the coordinator makes them: "seconds.micros".
const (
	tokenA core.Token = "1700000000.000001"
	tokenB core.Token = "1700000000.000002"
)

// Options says what more than the core.Store contract RunWithOptions
// checks.
type Options struct {
	// Fences says that the Stores keep tombstones (core.Fencer), so the
	// tombstone rules are checked: a conditional Delete(id, token), found
	// or not, an unconditional one that removed a record, and a Create
	// refused with ErrExists fence a later Create(id, token) of an id not
	// held, with core.ErrFenced; a replay and other ids and tokens are
	// not fenced. A Store that
	// implements core.Fencer must also say that it fences, at the latest
	// once it has answered a call. The fence rules are checked too
	// (core.CheckFence): a request whose fence (core.WithFence) is older
	// than one its id saw is refused with core.ErrStale, carrying the
	// fence held, and touches nothing; reads raise the fence; a request
	// without one is never refused; an id's fence outlives its record.
	// Without Fences, the suite checks that fences are ignored.
	Fences bool
	// TTL is how long the Stores keep a tombstone (0:
	// core.DefaultTombstoneTTL). Only the expiry checks use it.
	TTL time.Duration
	// OpenWithClock, if set with Fences, returns a new, empty Store whose
	// tombstones age by clock, arranging its cleanup with tb.Cleanup; the
	// suite moves clock on to check that a tombstone lasts TTL after the
	// last delete that left it, and is gone a second after that. Stores
	// that age by a clock of their own (badger's TTL) leave it nil.
	OpenWithClock func(tb testing.TB, clock core.Clock) core.Store
}

// Run runs the Store conformance suite, one subtest per rule, for Stores
// whether or not they fence (the rules that hold for both). open must
// return a new, empty Store for each call and arrange its cleanup with
// tb.Cleanup.
func Run(t *testing.T, open func(tb testing.TB) core.Store) {
	t.Helper()
	RunWithOptions(t, open, Options{})
}

// RunWithOptions runs the Store conformance suite, as Run does, and the
// checks opts asks for.
func RunWithOptions(t *testing.T, open func(tb testing.TB) core.Store, opts Options) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s core.Store)
	}{
		{"CreateNew", testCreateNew},
		{"CreateReplay", testCreateReplay},
		{"CreateOtherToken", testCreateOtherToken},
		{"CreateAfterDelete", testCreateAfterDelete},
		{"DeleteUnconditional", testDeleteUnconditional},
		{"DeleteConditional", testDeleteConditional},
		{"DeleteWrongToken", testDeleteWrongToken},
		{"DeleteMissing", testDeleteMissing},
		{"GetMissing", testGetMissing},
		{"ListEmpty", testListEmpty},
		{"ListPages", testListPages},
		{"ListExactPages", testListExactPages},
		{"ListAfterAbsentID", testListAfterAbsentID},
		{"ListBytewise", testListBytewise},
		{"ListAfterWrites", testListAfterWrites},
		{"ListDefaultLimit", testListDefaultLimit},
		{"Count", testCount},
		{"MaxLengthID", testMaxLengthID},
		{"ConcurrentCreateSameID", testConcurrentCreateSameID},
		{"ConcurrentCreateDistinct", testConcurrentCreateDistinct},
		{"CancelledContext", testCancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open(t)) })
	}
	if !opts.Fences {
		t.Run("FenceIgnored", func(t *testing.T) { testFenceIgnored(t, open(t)) })
		return
	}
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s core.Store)
	}{
		{"FencedAfterConditionalDelete", testFencedAfterConditionalDelete},
		{"FencedAfterDeleteOfMissing", testFencedAfterDeleteOfMissing},
		{"FencedAfterRefusedCreate", testFencedAfterRefusedCreate},
		{"FencedAfterDeleteWrongToken", testFencedAfterDeleteWrongToken},
		{"FencedAfterUnconditionalDelete", testFencedAfterUnconditionalDelete},
		{"NotFencedByUnconditionalDeleteOfMissing", testNotFencedByUnconditionalDeleteOfMissing},
		{"FencedConcurrentDeleteCreate", testFencedConcurrentDeleteCreate},
		{"Fences", testFences},
		{"RemoveOlder", testRemoveOlder},
		{"RemoveAnswersCopies", testRemoveAnswersCopies},
		{"RemoveRefusesNewer", testRemoveRefusesNewer},
		{"RemoveMissing", testRemoveMissing},
		{"RemoveConcurrentCopies", testRemoveConcurrentCopies},
		{"FenceStaleRefused", testFenceStaleRefused},
		{"FenceEqual", testFenceEqual},
		{"FenceRaisedByGet", testFenceRaisedByGet},
		{"FenceRaisedByRefusal", testFenceRaisedByRefusal},
		{"FenceNone", testFenceNone},
		{"FenceSurvivesDelete", testFenceSurvivesDelete},
		{"FenceConcurrent", testFenceConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open(t)) })
	}
	if opts.OpenWithClock == nil {
		return
	}
	ttl := cmp.Or(opts.TTL, core.DefaultTombstoneTTL)
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s core.Store, clock *Clock, ttl time.Duration)
	}{
		{"TombstoneExpires", testTombstoneExpires},
		{"TombstoneRenewed", testTombstoneRenewed},
		{"RemovalExpires", testRemovalExpires},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock(time.Unix(1700000000, 0))
			tc.test(t, opts.OpenWithClock(t, clock), clock, ttl)
		})
	}
}

func testCreateNew(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	if got, want := mustGet(t, s, "a"), (core.Record{ID: "a", Token: tokenA}); got != want {
		t.Fatalf("Get(a)=%v, want %v", got, want)
	}
	if got, want := mustCount(t, s), 1; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
}

// A replay is a create whose acknowledgement was lost and is sent again: it
// must succeed without changing anything.
func testCreateReplay(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	mustCreate(t, s, "a", tokenA)
	if got, want := mustGet(t, s, "a").Token, tokenA; got != want {
		t.Fatalf("Get(a).Token=%q, want %q", got, want)
	}
	if got, want := mustCount(t, s), 1; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
}

func testCreateOtherToken(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	wantErr(t, s.Create(t.Context(), "a", tokenB), core.ErrExists, "Create(a, B)")
	if got, want := mustGet(t, s, "a").Token, tokenA; got != want {
		t.Fatalf("after a refused create, Get(a).Token=%q, want %q", got, want)
	}
}

func testCreateAfterDelete(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	mustDelete(t, s, "a", tokenA)
	mustCreate(t, s, "a", tokenB)
	if got, want := mustGet(t, s, "a").Token, tokenB; got != want {
		t.Fatalf("Get(a).Token=%q, want %q", got, want)
	}
	checkList(t, s, []core.Record{{ID: "a", Token: tokenB}})
}

func testDeleteUnconditional(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	mustDelete(t, s, "a", "")
	_, err := s.Get(t.Context(), "a")
	wantErr(t, err, core.ErrNotFound, "Get(a) after Delete")
	if got, want := mustCount(t, s), 0; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
}

func testDeleteConditional(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	mustDelete(t, s, "a", tokenA)
	_, err := s.Get(t.Context(), "a")
	wantErr(t, err, core.ErrNotFound, "Get(a) after Delete")
}

// A rollback deletes by its own token and must never remove a record that
// another operation wrote.
func testDeleteWrongToken(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	wantErr(t, s.Delete(t.Context(), "a", tokenB), core.ErrNotFound, "Delete(a, B)")
	if got, want := mustGet(t, s, "a").Token, tokenA; got != want {
		t.Fatalf("after a refused delete, Get(a).Token=%q, want %q", got, want)
	}
}

func testDeleteMissing(t *testing.T, s core.Store) {
	wantErr(t, s.Delete(t.Context(), "a", ""), core.ErrNotFound, "Delete(a) of a missing record")
	wantErr(t, s.Delete(t.Context(), "a", tokenA), core.ErrNotFound, "Delete(a, A) of a missing record")
	mustCreate(t, s, "a", tokenB) // not A, which a store that fences refuses now
	mustDelete(t, s, "a", "")
	wantErr(t, s.Delete(t.Context(), "a", ""), core.ErrNotFound, "second Delete(a)")
}

func testGetMissing(t *testing.T, s core.Store) {
	mustCreate(t, s, "b", tokenA)
	_, err := s.Get(t.Context(), "a")
	wantErr(t, err, core.ErrNotFound, "Get(a)")
}

func testListEmpty(t *testing.T, s core.Store) {
	page, err := s.List(t.Context(), "", 10)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, want := len(page), 0; got != want {
		t.Fatalf("len(List)=%d, want %d", got, want)
	}
}

// testListPages pages through more records than fit a page, created out of
// order, with the last id of each page as the next after.
func testListPages(t *testing.T, s core.Store) {
	want := createMany(t, s, 23)
	if got := listAll(t, s, 5); !slices.Equal(got, want) {
		t.Fatalf("List pages=%v, want %v", got, want)
	}
}

// testListExactPages ends on a full page: the empty page after it is the end.
func testListExactPages(t *testing.T, s core.Store) {
	want := createMany(t, s, 20)
	if got := listAll(t, s, 5); !slices.Equal(got, want) {
		t.Fatalf("List pages=%v, want %v", got, want)
	}
}

func testListAfterAbsentID(t *testing.T, s core.Store) {
	for _, id := range []core.GroupID{"a", "c", "e"} {
		mustCreate(t, s, id, tokenA)
	}
	page, err := s.List(t.Context(), "b", 10)
	if err != nil {
		t.Fatalf("List(after b): %v", err)
	}
	if got, want := ids(page), []core.GroupID{"c", "e"}; !slices.Equal(got, want) {
		t.Fatalf("List(after b)=%v, want %v", got, want)
	}
	page, err = s.List(t.Context(), "f", 10)
	if err != nil {
		t.Fatalf("List(after f): %v", err)
	}
	if got, want := len(page), 0; got != want {
		t.Fatalf("len(List(after f))=%d, want %d", got, want)
	}
}

// testListBytewise checks the order is that of the bytes, not of numbers,
// case or a locale, so that every node and Stats agree on it.
func testListBytewise(t *testing.T, s core.Store) {
	want := []core.GroupID{"1", "10", "9", "B", "Z", "a", "a0", "a~", "z", "~", "é", "日本"}
	for _, i := range []int{5, 11, 0, 9, 2, 7, 1, 10, 3, 8, 6, 4} {
		mustCreate(t, s, want[i], tokenA)
	}
	for _, limit := range []int{1, 3, 100} {
		if got := ids(listAll(t, s, limit)); !slices.Equal(got, want) {
			t.Fatalf("List ids (limit %d)=%q, want %q", limit, got, want)
		}
	}
}

// testListAfterWrites lists between writes, so that a store that indexes or
// caches for List must bring that up to date: deleted ids go, re-created
// ones come back once.
func testListAfterWrites(t *testing.T, s core.Store) {
	all := createMany(t, s, 10)
	checkList(t, s, all)
	var want []core.Record
	for i, r := range all {
		if i%2 == 0 {
			mustDelete(t, s, r.ID, "")
		} else {
			want = append(want, r)
		}
	}
	checkList(t, s, want)
	mustCreate(t, s, all[0].ID, tokenB)
	mustDelete(t, s, all[1].ID, "")
	mustCreate(t, s, all[1].ID, tokenB)
	mustDelete(t, s, all[3].ID, "")
	want = append([]core.Record{{ID: all[0].ID, Token: tokenB}, {ID: all[1].ID, Token: tokenB}}, want[2:]...)
	checkList(t, s, want)
}

// testListDefaultLimit pins the rule for limit < 1: a default page size
// (core.DefaultPageSize), not an error and not an empty page.
func testListDefaultLimit(t *testing.T, s core.Store) {
	want := createMany(t, s, 3)
	for _, limit := range []int{0, -1} {
		page, err := s.List(t.Context(), "", limit)
		if err != nil {
			t.Fatalf("List(limit %d): %v", limit, err)
		}
		if !slices.Equal(page, want) {
			t.Fatalf("List(limit %d)=%v, want %v", limit, page, want)
		}
	}
}

func testCount(t *testing.T, s core.Store) {
	if got, want := mustCount(t, s), 0; got != want {
		t.Fatalf("Count of an empty store=%d, want %d", got, want)
	}
	recs := createMany(t, s, 7)
	mustDelete(t, s, recs[3].ID, "")
	wantErr(t, s.Create(t.Context(), recs[4].ID, tokenB), core.ErrExists, "Create of a held id") // must not count twice
	if got, want := mustCount(t, s), 6; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
}

// testMaxLengthID uses ids of core.MaxGroupIDLen bytes, one of them
// multibyte, next to their 127-byte prefixes.
func testMaxLengthID(t *testing.T, s core.Store) {
	ascii := core.GroupID(strings.Repeat("x", core.MaxGroupIDLen))
	multi := core.GroupID(strings.Repeat("é", core.MaxGroupIDLen/2))
	want := []core.GroupID{ascii[:core.MaxGroupIDLen-1], ascii, multi[:core.MaxGroupIDLen-2], multi}
	for _, id := range want {
		if err := id.Validate(); err != nil {
			t.Fatalf("test id %q: %v", id, err)
		}
		mustCreate(t, s, id, tokenA)
	}
	if got := mustGet(t, s, ascii); got.ID != ascii {
		t.Fatalf("Get(128 bytes).ID=%q, want %q", got.ID, ascii)
	}
	if got := ids(listAll(t, s, 1)); !slices.Equal(got, want) {
		t.Fatalf("List ids=%q, want %q", got, want)
	}
	mustDelete(t, s, multi, tokenA)
	mustDelete(t, s, ascii, "")
	if got, want := mustCount(t, s), 2; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
}

// testConcurrentCreateSameID races creates of one id with different tokens:
// exactly one wins, the others get ErrExists, and the winner's token stays.
func testConcurrentCreateSameID(t *testing.T, s core.Store) {
	const n = 16
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Create(t.Context(), "a", token(i))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("Create(a, %s) and Create(a, %s) both succeeded", token(winner), token(i))
		case err == nil:
			winner = i
		default:
			wantErr(t, err, core.ErrExists, fmt.Sprintf("losing Create(a, %s)", token(i)))
		}
	}
	if winner < 0 {
		t.Fatalf("no concurrent Create(a) succeeded")
	}
	if got, want := mustGet(t, s, "a").Token, token(winner); got != want {
		t.Fatalf("Get(a).Token=%q, want the winner's %q", got, want)
	}
}

// testConcurrentCreateDistinct creates and deletes from many goroutines at
// once, and lists while they run.
func testConcurrentCreateDistinct(t *testing.T, s core.Store) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := core.GroupID(fmt.Sprintf("w%d-%02d", w, i))
				if err := s.Create(t.Context(), id, tokenA); err != nil {
					t.Errorf("Create(%s): %v", id, err)
					return
				}
				if i%5 == 0 {
					if err := s.Delete(t.Context(), id, tokenA); err != nil {
						t.Errorf("Delete(%s): %v", id, err)
						return
					}
				}
				if _, err := s.List(t.Context(), "", 10); err != nil {
					t.Errorf("List: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var want []core.Record
	for w := range workers {
		for i := range each {
			if i%5 != 0 {
				want = append(want, core.Record{ID: core.GroupID(fmt.Sprintf("w%d-%02d", w, i)), Token: tokenA})
			}
		}
	}
	checkList(t, s, want)
}

// testCancelledContext: a call whose context has ended must fail and must
// not write.
func testCancelledContext(t *testing.T, s core.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Create(ctx, "a", tokenA); err == nil {
		t.Fatalf("Create with a cancelled context: err=nil, want an error")
	}
	_, err := s.Get(t.Context(), "a")
	wantErr(t, err, core.ErrNotFound, "Get(a) after a cancelled Create")
}

// testFencedAfterConditionalDelete: once a rollback's Delete(a, A) has
// removed the record, a Create(a, A) still on its way must not bring it
// back; a create of a with another token is another operation's.
func testFencedAfterConditionalDelete(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	mustDelete(t, s, "a", tokenA)
	wantErr(t, s.Create(t.Context(), "a", tokenA), core.ErrFenced, "Create(a, A) after Delete(a, A)")
	_, err := s.Get(t.Context(), "a")
	wantErr(t, err, core.ErrNotFound, "Get(a) after a fenced create")
	checkList(t, s, nil)
	mustCreate(t, s, "b", tokenA)
	mustCreate(t, s, "a", tokenB)
	checkList(t, s, []core.Record{{ID: "a", Token: tokenB}, {ID: "b", Token: tokenA}})
}

// testFencedAfterDeleteOfMissing is issue 7's second scenario at a store:
// the rollback's Delete(a, A) arrives before the create it undoes, finds
// nothing, and the create that comes late must then fail.
func testFencedAfterDeleteOfMissing(t *testing.T, s core.Store) {
	wantErr(t, s.Delete(t.Context(), "a", tokenA), core.ErrNotFound, "Delete(a, A) of a missing record")
	wantErr(t, s.Create(t.Context(), "a", tokenA), core.ErrFenced, "late Create(a, A)")
	wantErr(t, s.Create(t.Context(), "a", tokenA), core.ErrFenced, "late Create(a, A) again")
	checkList(t, s, nil)
	mustCreate(t, s, "b", tokenA)
	mustCreate(t, s, "a", tokenB)
}

// testFencedAfterRefusedCreate: a Create(a, B) refused because a holds A
// leaves a tombstone for B, so that a copy of it delivered later (a resend,
// a duplicate) cannot land once A is deleted.
func testFencedAfterRefusedCreate(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	wantErr(t, s.Create(t.Context(), "a", tokenB), core.ErrExists, "Create(a, B) over A")
	mustDelete(t, s, "a", tokenA)
	wantErr(t, s.Create(t.Context(), "a", tokenB), core.ErrFenced, "a copy of Create(a, B) after A is gone")
	checkList(t, s, nil)
}

// testFencedAfterDeleteWrongToken: a conditional delete that finds another
// token leaves that record alone, and its replay too, but still fences its
// own token.
func testFencedAfterDeleteWrongToken(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	wantErr(t, s.Delete(t.Context(), "a", tokenB), core.ErrNotFound, "Delete(a, B)")
	mustCreate(t, s, "a", tokenA) // a replay of what the node holds
	wantErr(t, s.Create(t.Context(), "a", tokenB), core.ErrExists, "Create(a, B) while a holds A")
	mustDelete(t, s, "a", tokenA)
	wantErr(t, s.Create(t.Context(), "a", tokenB), core.ErrFenced, "Create(a, B) after Delete(a, B)")
	wantErr(t, s.Create(t.Context(), "a", tokenA), core.ErrFenced, "Create(a, A) after Delete(a, A)")
	checkList(t, s, nil)
}

// testFencedAfterUnconditionalDelete: an unconditional delete fences the
// token it removed.
func testFencedAfterUnconditionalDelete(t *testing.T, s core.Store) {
	mustCreate(t, s, "a", tokenA)
	mustDelete(t, s, "a", "")
	wantErr(t, s.Create(t.Context(), "a", tokenA), core.ErrFenced, "Create(a, A) after Delete(a)")
	mustCreate(t, s, "a", tokenB)
	checkList(t, s, []core.Record{{ID: "a", Token: tokenB}})
}

// testNotFencedByUnconditionalDeleteOfMissing: an unconditional delete that
// found nothing names no token to fence.
func testNotFencedByUnconditionalDeleteOfMissing(t *testing.T, s core.Store) {
	wantErr(t, s.Delete(t.Context(), "a", ""), core.ErrNotFound, "Delete(a) of a missing record")
	mustCreate(t, s, "a", tokenA)
}

// testFencedConcurrentDeleteCreate races Create(id, A) with Delete(id, A)
// on many ids: whichever runs first, the record must be gone once both
// have returned. Either the delete removed it, or it fenced the create.
func testFencedConcurrentDeleteCreate(t *testing.T, s core.Store) {
	const n = 32
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		id := core.GroupID(fmt.Sprintf("r%02d", i))
		wg.Go(func() {
			<-start
			if err := s.Create(t.Context(), id, tokenA); err != nil && !errors.Is(err, core.ErrFenced) {
				t.Errorf("Create(%s, A): err=%v, want nil or %v", id, err, core.ErrFenced)
			}
		})
		wg.Go(func() {
			<-start
			if err := s.Delete(t.Context(), id, tokenA); err != nil && !errors.Is(err, core.ErrNotFound) {
				t.Errorf("Delete(%s, A): err=%v, want nil or %v", id, err, core.ErrNotFound)
			}
		})
	}
	close(start)
	wg.Wait()
	checkList(t, s, nil)
}

// testFences: a Store that fences and says whether it does must say so,
// once it has answered a call (a client learns it from an answer).
func testFences(t *testing.T, s core.Store) {
	f, ok := s.(core.Fencer)
	if !ok {
		t.Skipf("%T does not say whether it fences", s)
	}
	mustCount(t, s)
	if !f.Fences() {
		t.Fatalf("%T.Fences()=false, want true", s)
	}
}

// remover returns s as a core.Remover that says it serves Remove, once it
// has answered a call, or skips the test: a Store that fences need not.
func remover(t *testing.T, s core.Store) core.Remover {
	t.Helper()
	r, ok := s.(core.Remover)
	if !ok {
		t.Skipf("%T does not delete without a read", s)
	}
	mustCount(t, s)
	if !r.Removes() {
		t.Fatalf("%T.Removes()=false for a Store that fences, want true", s)
	}
	return r
}

func mustRemove(t *testing.T, r core.Remover, id core.GroupID, before, want core.Token) {
	t.Helper()
	got, err := r.Remove(t.Context(), id, before)
	if err != nil || got != want {
		t.Fatalf("Remove(%s, %s)=%q, %v; want %q, nil", id, before, got, err, want)
	}
}

// testRemoveOlder: Remove(a, B) removes a's record of the older A, answers
// A, and fences a late Create(a, A) as a conditional delete of A would.
func testRemoveOlder(t *testing.T, s core.Store) {
	r := remover(t, s)
	mustCreate(t, s, "a", tokenA)
	mustCreate(t, s, "b", tokenA)
	mustRemove(t, r, "a", tokenB, tokenA)
	_, err := s.Get(t.Context(), "a")
	wantErr(t, err, core.ErrNotFound, "Get(a) after Remove(a, B)")
	wantErr(t, s.Create(t.Context(), "a", tokenA), core.ErrFenced, "a late Create(a, A) after Remove(a, B)")
	checkList(t, s, []core.Record{{ID: "b", Token: tokenA}})
}

// testRemoveAnswersCopies: a copy of Remove(a, B), resent or late, gets the
// first one's answer and touches nothing, not even the record the undo
// re-created under B, nor a later operation's.
func testRemoveAnswersCopies(t *testing.T, s core.Store) {
	r := remover(t, s)
	mustCreate(t, s, "a", tokenA)
	mustRemove(t, r, "a", tokenB, tokenA)
	mustRemove(t, r, "a", tokenB, tokenA) // a resend learns what the first removed
	mustCreate(t, s, "a", tokenB)         // the undo
	mustRemove(t, r, "a", tokenB, tokenA) // a late copy
	if got := mustGet(t, s, "a").Token; got != tokenB {
		t.Fatalf("Get(a).Token=%q after a late copy of Remove(a, B), want the undo's %q", got, tokenB)
	}
	later := core.Token("1700000001.000000")
	mustRemove(t, r, "a", later, tokenB)
	mustCreate(t, s, "a", "1700000002.000000")
	mustRemove(t, r, "a", later, tokenB)
	if got := mustGet(t, s, "a").Token; got != "1700000002.000000" {
		t.Fatalf("Get(a).Token=%q after late copies, want a later operation's", got)
	}
}

// testRemoveRefusesNewer: a record whose token is not older than the
// Remove's stays, and the answer names its token.
func testRemoveRefusesNewer(t *testing.T, s core.Store) {
	r := remover(t, s)
	mustCreate(t, s, "a", tokenB)
	for _, before := range []core.Token{tokenA, tokenB} {
		got, err := r.Remove(t.Context(), "a", before)
		wantErr(t, err, core.ErrExists, fmt.Sprintf("Remove(a, %s) of a record of B", before))
		if got != tokenB {
			t.Fatalf("Remove(a, %s) answered %q, want the token held, %q", before, got, tokenB)
		}
	}
	if got := mustGet(t, s, "a").Token; got != tokenB {
		t.Fatalf("Get(a).Token=%q after refused Removes, want %q", got, tokenB)
	}
}

// testRemoveMissing: a Remove that finds nothing says so, and fences
// nothing: the id can be created with any token.
func testRemoveMissing(t *testing.T, s core.Store) {
	r := remover(t, s)
	_, err := r.Remove(t.Context(), "a", tokenB)
	wantErr(t, err, core.ErrNotFound, "Remove(a, B) of a missing record")
	_, err = r.Remove(t.Context(), "a", tokenB)
	wantErr(t, err, core.ErrNotFound, "Remove(a, B) again")
	mustCreate(t, s, "a", tokenB)
	mustCreate(t, s, "b", tokenA)
	checkList(t, s, []core.Record{{ID: "a", Token: tokenB}, {ID: "b", Token: tokenA}})
}

// testRemoveConcurrentCopies races copies of one Remove on many ids: one
// removes, and every copy answers what it removed.
func testRemoveConcurrentCopies(t *testing.T, s core.Store) {
	r := remover(t, s)
	const n, copies = 16, 4
	for i := range n {
		mustCreate(t, s, core.GroupID(fmt.Sprintf("r%02d", i)), tokenA)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n * copies {
		id := core.GroupID(fmt.Sprintf("r%02d", i%n))
		wg.Go(func() {
			<-start
			if got, err := r.Remove(t.Context(), id, tokenB); err != nil || got != tokenA {
				t.Errorf("Remove(%s, B)=%q, %v; want %q, nil", id, got, err, tokenA)
			}
		})
	}
	close(start)
	wg.Wait()
	checkList(t, s, nil)
}

// testRemovalExpires: a Store answers a copy of Remove from its record of
// the removal for the TTL; after it, a copy finds nothing.
func testRemovalExpires(t *testing.T, s core.Store, clock *Clock, ttl time.Duration) {
	r := remover(t, s)
	mustCreate(t, s, "a", tokenA)
	mustRemove(t, r, "a", tokenB, tokenA)
	clock.Advance(ttl - time.Nanosecond)
	mustRemove(t, r, "a", tokenB, tokenA)
	clock.Advance(time.Second + time.Nanosecond)
	_, err := r.Remove(t.Context(), "a", tokenB)
	wantErr(t, err, core.ErrNotFound, "Remove(a, B) after the TTL")
}

// testTombstoneExpires: a tombstone fences for TTL, then no longer.
func testTombstoneExpires(t *testing.T, s core.Store, clock *Clock, ttl time.Duration) {
	wantErr(t, s.Delete(t.Context(), "a", tokenA), core.ErrNotFound, "Delete(a, A)")
	mustCreate(t, s, "b", tokenA)
	mustDelete(t, s, "b", tokenA)
	clock.Advance(ttl - time.Nanosecond)
	wantErr(t, s.Create(t.Context(), "a", tokenA), core.ErrFenced, "Create(a, A) just before the TTL")
	clock.Advance(time.Second + time.Nanosecond)
	mustCreate(t, s, "a", tokenA)
	mustCreate(t, s, "b", tokenA)
}

// testTombstoneRenewed: a tombstone lasts TTL from the last delete that
// left it, as a rollback's retried delete must fence from its own time.
func testTombstoneRenewed(t *testing.T, s core.Store, clock *Clock, ttl time.Duration) {
	wantErr(t, s.Delete(t.Context(), "a", tokenA), core.ErrNotFound, "Delete(a, A)")
	clock.Advance(ttl / 2)
	wantErr(t, s.Delete(t.Context(), "a", tokenA), core.ErrNotFound, "Delete(a, A) again")
	clock.Advance(ttl - time.Nanosecond)
	wantErr(t, s.Create(t.Context(), "a", tokenA), core.ErrFenced, "Create(a, A) within the TTL of the second delete")
	clock.Advance(time.Second + time.Nanosecond)
	mustCreate(t, s, "a", tokenA)
}

// Clock is a core.Clock that stands still until Advance moves it; Sleep
// returns at once. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep returns ctx.Err() at once: no store of the suite waits.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// RunJournal runs the Journal conformance suite. open must return a new,
// empty Journal for each call and arrange its cleanup with tb.Cleanup.
func RunJournal(t *testing.T, open func(tb testing.TB) core.Journal) {
	t.Helper()
	RunJournalExcept(t, open, nil)
}

// RunJournalExcept runs the Journal conformance suite but the tests named
// in except, which it skips giving the reason there: for a journal that
// departs from the suite's one by design (a shared journal that keys
// intents by id and token, say).
func RunJournalExcept(t *testing.T, open func(tb testing.TB) core.Journal, except map[string]string) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, j core.Journal)
	}{
		{"Empty", testJournalEmpty},
		{"PendingOldestFirst", testJournalPendingOldestFirst},
		{"RoundTrip", testJournalRoundTrip},
		{"Update", testJournalUpdate},
		{"UpdateUnknown", testJournalUpdateUnknown},
		{"FinishUnknown", testJournalFinishUnknown},
		{"BeginDuplicate", testJournalBeginDuplicate},
		{"Isolated", testJournalIsolated},
		{"Concurrent", testJournalConcurrent},
		{"CancelledContext", testJournalCancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := except[tc.name]; ok {
				t.Skip(why)
			}
			tc.test(t, open(t))
		})
	}
}

func testJournalEmpty(t *testing.T, j core.Journal) {
	if got, want := len(mustPending(t, j)), 0; got != want {
		t.Fatalf("len(Pending)=%d, want %d", got, want)
	}
}

// Intents begin in token order here, as the coordinator's increasing tokens
// do, so that a journal may order by either.
func testJournalPendingOldestFirst(t *testing.T, j core.Journal) {
	for i := range 4 {
		mustBegin(t, j, intent(i))
	}
	mustFinish(t, j, token(1))
	mustBegin(t, j, intent(4))
	mustFinish(t, j, token(0))
	if got, want := tokens(mustPending(t, j)), []core.Token{token(2), token(3), token(4)}; !slices.Equal(got, want) {
		t.Fatalf("Pending tokens=%v, want %v", got, want)
	}
}

func testJournalRoundTrip(t *testing.T, j core.Journal) {
	del := core.Intent{Op: core.OpDelete, ID: "a", Token: tokenB, Nodes: []string{"node01", "node02", "node03"},
		PreImage: map[string]core.Token{"node01": tokenA, "node03": tokenA}}
	mustBegin(t, j, intent(0))
	mustBegin(t, j, del)
	got := mustPending(t, j)
	if len(got) != 2 || !equal(got[0], intent(0)) || !equal(got[1], del) {
		t.Fatalf("Pending=%+v, want %+v", got, []core.Intent{intent(0), del})
	}
}

func testJournalUpdate(t *testing.T, j core.Journal) {
	mustBegin(t, j, intent(0))
	mustBegin(t, j, intent(1))
	in := intent(0)
	in.Nodes = in.Nodes[:1]
	in.PreImage = map[string]core.Token{"node01": tokenA}
	if err := j.Update(t.Context(), in); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got := mustPending(t, j)
	if len(got) != 2 || !equal(got[0], in) || !equal(got[1], intent(1)) {
		t.Fatalf("Pending after Update=%+v, want %+v", got, []core.Intent{in, intent(1)})
	}
}

func testJournalUpdateUnknown(t *testing.T, j core.Journal) {
	wantErr(t, j.Update(t.Context(), intent(0)), core.ErrNotFound, "Update of an unknown intent")
}

func testJournalFinishUnknown(t *testing.T, j core.Journal) {
	mustFinish(t, j, token(0))
	mustBegin(t, j, intent(0))
	mustFinish(t, j, token(0))
	mustFinish(t, j, token(0))
	if got, want := len(mustPending(t, j)), 0; got != want {
		t.Fatalf("len(Pending)=%d, want %d", got, want)
	}
}

// testJournalBeginDuplicate: a token names one operation, so a second Begin
// with it is refused and leaves the first intent as it was.
func testJournalBeginDuplicate(t *testing.T, j core.Journal) {
	mustBegin(t, j, intent(0))
	dup := intent(1)
	dup.Token = token(0)
	wantErr(t, j.Begin(t.Context(), dup), core.ErrInvalid, "second Begin with one token")
	if got := mustPending(t, j); len(got) != 1 || !equal(got[0], intent(0)) {
		t.Fatalf("Pending=%+v, want %+v", got, []core.Intent{intent(0)})
	}
}

// testJournalConcurrent runs whole operations' worth of Begin, Update and
// Finish from many goroutines at once, as a bulk job's workers do, and
// leaves every third intent unfinished.
func testJournalConcurrent(t *testing.T, j core.Journal) {
	const workers, each = 16, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				in := intent(w*each + i)
				if err := j.Begin(t.Context(), in); err != nil {
					t.Errorf("Begin(%s): %v", in.Token, err)
					return
				}
				in.Nodes = in.Nodes[:2]
				if err := j.Update(t.Context(), in); err != nil {
					t.Errorf("Update(%s): %v", in.Token, err)
					return
				}
				if i%3 == 0 {
					continue
				}
				if err := j.Finish(t.Context(), in.Token); err != nil {
					t.Errorf("Finish(%s): %v", in.Token, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var want []core.Token
	for i := range workers * each {
		if i%each%3 == 0 {
			want = append(want, token(i))
		}
	}
	got := mustPending(t, j)
	for _, in := range got {
		if gotNodes, wantNodes := len(in.Nodes), 2; gotNodes != wantNodes {
			t.Fatalf("Pending %s has %d nodes, want %d (the update)", in.Token, gotNodes, wantNodes)
		}
	}
	// Concurrent Begins have no order among themselves.
	if got := slices.Sorted(slices.Values(tokens(got))); !slices.Equal(got, want) {
		t.Fatalf("Pending tokens=%v, want %v", got, want)
	}
}

// testJournalCancelledContext: a write whose context has ended must fail
// and must not be recorded.
func testJournalCancelledContext(t *testing.T, j core.Journal) {
	mustBegin(t, j, intent(0))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := j.Begin(ctx, intent(1)); err == nil {
		t.Fatalf("Begin with a cancelled context: err=nil, want an error")
	}
	if got, want := tokens(mustPending(t, j)), []core.Token{token(0)}; !slices.Equal(got, want) {
		t.Fatalf("Pending tokens=%v, want %v", got, want)
	}
}

// testJournalIsolated: an intent's slices and maps are the journal's own
// once recorded, as they would be had it been written to disk.
func testJournalIsolated(t *testing.T, j core.Journal) {
	in := intent(0)
	in.PreImage = map[string]core.Token{"node01": tokenA}
	mustBegin(t, j, in)
	in.Nodes[0] = "changed"
	in.PreImage["node01"] = "changed"
	got := mustPending(t, j)
	got[0].Nodes[1] = "changed"
	got[0].PreImage["node02"] = "changed"
	want := intent(0)
	want.PreImage = map[string]core.Token{"node01": tokenA}
	if got := mustPending(t, j); len(got) != 1 || !equal(got[0], want) {
		t.Fatalf("Pending=%+v, want %+v", got, []core.Intent{want})
	}
}

// BenchCreate measures Create of distinct ids from core.DefaultConcurrency
// goroutines, as a bulk job drives a node.
func BenchCreate(b *testing.B, open func(tb testing.TB) core.Store) {
	benchCreate(b.Context(), b, open)
}

// BenchCreateFenced is BenchCreate with a fence on every Create, as the
// coordinator sends them: a Store that fences keeps each new id's fence
// with its record.
func BenchCreateFenced(b *testing.B, open func(tb testing.TB) core.Store) {
	benchCreate(core.WithFence(b.Context(), tokenA), b, open)
}

func benchCreate(ctx context.Context, b *testing.B, open func(tb testing.TB) core.Store) {
	s := open(b)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(max(1, core.DefaultConcurrency/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := core.GroupID(strconv.FormatInt(next.Add(1), 10))
			if err := s.Create(ctx, id, tokenA); err != nil {
				b.Errorf("Create(%s): %v", id, err)
				return
			}
		}
	})
}

// BenchRemove measures Removes (deletes without a read, core.Remover) of
// records the store holds, from as many goroutines as a bulk job runs:
// BenchCreate's job for deletes. The creates are not timed.
func BenchRemove(b *testing.B, open func(tb testing.TB) core.Store) {
	s := open(b)
	r, ok := s.(core.Remover)
	if !ok {
		b.Skipf("%T does not delete without a read", s)
	}
	ctx := b.Context()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range core.DefaultConcurrency {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if err := s.Create(ctx, core.GroupID(strconv.FormatInt(i, 10)), tokenA); err != nil {
					b.Errorf("Create(%d): %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	next.Store(0)
	b.ReportAllocs()
	b.SetParallelism(max(1, core.DefaultConcurrency/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := core.GroupID(strconv.FormatInt(next.Add(1), 10))
			if _, err := r.Remove(ctx, id, tokenB); err != nil {
				b.Errorf("Remove(%s): %v", id, err)
				return
			}
		}
	})
}

// BenchList measures paging through n records, pageSize at a time, as Stats
// does; one op is one full pass, and ns/record is reported too.
func BenchList(b *testing.B, open func(tb testing.TB) core.Store, n, pageSize int) {
	s := open(b)
	ctx := b.Context()
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := core.GroupID(strconv.Itoa(i))
				if err := s.Create(ctx, id, tokenA); err != nil {
					b.Errorf("Create(%s): %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seen := 0
		var after core.GroupID
		for {
			page, err := s.List(ctx, after, pageSize)
			if err != nil {
				b.Fatalf("List: %v", err)
			}
			seen += len(page)
			if len(page) < pageSize {
				break
			}
			after = page[len(page)-1].ID
		}
		if seen != n {
			b.Fatalf("listed %d records, want %d", seen, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
}

// createMany creates n records with distinct ids and tokens, in an order
// unlike their sorted one, and returns them sorted by id.
func createMany(t *testing.T, s core.Store, n int) []core.Record {
	t.Helper()
	recs := make([]core.Record, n)
	for i := range n {
		j := (i * 7) % n // a permutation when n is not a multiple of 7
		if n%7 == 0 {
			j = n - 1 - i
		}
		recs[i] = core.Record{ID: core.GroupID(fmt.Sprintf("r%03d", j)), Token: token(j)}
		mustCreate(t, s, recs[i].ID, recs[i].Token)
	}
	slices.SortFunc(recs, func(a, b core.Record) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return recs
}

// listAll pages through s with limit and checks every page is at most limit
// long and in strictly increasing order, continuing after the page's last id.
func listAll(t *testing.T, s core.Store, limit int) []core.Record {
	t.Helper()
	var all []core.Record
	var after core.GroupID
	for {
		page, err := s.List(t.Context(), after, limit)
		if err != nil {
			t.Fatalf("List(after %q, %d): %v", after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("List(after %q, %d) returned %d records", after, limit, len(page))
		}
		for _, r := range page {
			if r.ID <= after {
				t.Fatalf("List(after %q, %d) returned %q out of order", after, limit, r.ID)
			}
			after = r.ID
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
	}
}

// checkList checks that listing s in pages of various sizes gives want, and
// that Count agrees.
func checkList(t *testing.T, s core.Store, want []core.Record) {
	t.Helper()
	for _, limit := range []int{1, 7, 1000} {
		if got := listAll(t, s, limit); !slices.Equal(got, want) {
			t.Fatalf("List (limit %d)=%v, want %v", limit, got, want)
		}
	}
	if got, want := mustCount(t, s), len(want); got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
}

func mustCreate(t *testing.T, s core.Store, id core.GroupID, tok core.Token) {
	t.Helper()
	if err := s.Create(t.Context(), id, tok); err != nil {
		t.Fatalf("Create(%q, %q): %v", id, tok, err)
	}
}

func mustDelete(t *testing.T, s core.Store, id core.GroupID, tok core.Token) {
	t.Helper()
	if err := s.Delete(t.Context(), id, tok); err != nil {
		t.Fatalf("Delete(%q, %q): %v", id, tok, err)
	}
}

func mustGet(t *testing.T, s core.Store, id core.GroupID) core.Record {
	t.Helper()
	r, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return r
}

func mustCount(t *testing.T, s core.Store) int {
	t.Helper()
	n, err := s.Count(t.Context())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

func mustBegin(t *testing.T, j core.Journal, in core.Intent) {
	t.Helper()
	if err := j.Begin(t.Context(), in); err != nil {
		t.Fatalf("Begin(%s): %v", in.Token, err)
	}
}

func mustFinish(t *testing.T, j core.Journal, tok core.Token) {
	t.Helper()
	if err := j.Finish(t.Context(), tok); err != nil {
		t.Fatalf("Finish(%s): %v", tok, err)
	}
}

func mustPending(t *testing.T, j core.Journal) []core.Intent {
	t.Helper()
	p, err := j.Pending(t.Context())
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return p
}

// wantErr fails t unless err is of want's class.
func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err=%v, want %v", what, err, want)
	}
}

// token returns the i-th of a run of increasing tokens.
func token(i int) core.Token {
	return core.Token(fmt.Sprintf("1700000001.%06d", i))
}

// intent returns the i-th of a run of create intents, with token(i).
func intent(i int) core.Intent {
	return core.Intent{Op: core.OpCreate, ID: core.GroupID(fmt.Sprintf("id%d", i)), Token: token(i),
		Nodes: []string{"node01", "node02", "node03"}}
}

// equal compares intents; a nil and an empty PreImage are the same, as a
// round trip through JSON makes them.
func equal(a, b core.Intent) bool {
	return a.Op == b.Op && a.ID == b.ID && a.Token == b.Token &&
		slices.Equal(a.Nodes, b.Nodes) && maps.Equal(a.PreImage, b.PreImage)
}

func ids(recs []core.Record) []core.GroupID {
	s := make([]core.GroupID, len(recs))
	for i, r := range recs {
		s[i] = r.ID
	}
	return s
}

func tokens(ins []core.Intent) []core.Token {
	s := make([]core.Token, len(ins))
	for i, in := range ins {
		s[i] = in.Token
	}
	return s
}
