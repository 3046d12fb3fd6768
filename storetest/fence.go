package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// The fence rules (core.CheckFence), for Stores that fence. Fences are
// tokens of the operations that held an id's lock, increasing across
// coordinators.
const (
	fence1 core.Token = "1700000002.000001"
	fence2 core.Token = "1700000002.000002"
	fence3 core.Token = "1700000002.000003"
	tokenC core.Token = "1700000000.000003"
)

// on returns t's context carrying fence.
func on(t *testing.T, fence core.Token) context.Context {
	return core.WithFence(t.Context(), fence)
}

// testFenceStaleRefused: once a request carried fence F2 for an id, one
// carrying the older F1 (from a coordinator that lost the id's lock) is
// refused with an EStale error that names F2, before any other rule: it
// touches nothing (no record, no tombstone) and learns nothing (no token).
// The fence is the id's alone.
func testFenceStaleRefused(t *testing.T, s core.Store) {
	cur, old := on(t, fence2), on(t, fence1)
	mustCreateOn(t, cur, s, "a", tokenA)
	wantStale(t, s.Create(old, "a", tokenB), fence2, "Create(a, B), which would leave a tombstone for B")
	wantStale(t, s.Create(old, "a", tokenA), fence2, "Create(a, A), a replay")
	wantStale(t, s.Delete(old, "a", tokenA), fence2, "Delete(a, A)")
	wantStale(t, s.Delete(old, "a", ""), fence2, "Delete(a)")
	wantStale(t, s.Delete(old, "a", tokenC), fence2, "Delete(a, C), which would leave a tombstone for C")
	rec, err := s.Get(old, "a")
	wantStale(t, err, fence2, "Get(a)")
	if rec != (core.Record{}) {
		t.Fatalf("stale Get(a) answered %v, want nothing", rec)
	}
	if r, ok := s.(core.Remover); ok && r.Removes() {
		tok, err := r.Remove(old, "a", tokenB)
		wantStale(t, err, fence2, "Remove(a, B)")
		if tok != "" {
			t.Fatalf("stale Remove(a, B) answered %q, want nothing", tok)
		}
	}
	if got, want := mustGet(t, s, "a").Token, tokenA; got != want {
		t.Fatalf("Get(a).Token=%q after stale requests, want %q", got, want)
	}
	// No tombstone for B or C: the stale requests left none.
	mustDeleteOn(t, cur, s, "a", tokenA)
	mustCreateOn(t, cur, s, "a", tokenB)
	mustDeleteOn(t, cur, s, "a", "")
	mustCreateOn(t, cur, s, "a", tokenC)
	mustCreateOn(t, old, s, "b", tokenA) // another id: fenced by nothing
	checkList(t, s, []core.Record{{ID: "a", Token: tokenC}, {ID: "b", Token: tokenA}})
}

// testFenceEqual: requests carrying the fence the id holds go on, as an
// operation sends several, and retries.
func testFenceEqual(t *testing.T, s core.Store) {
	ctx := on(t, fence2)
	mustCreateOn(t, ctx, s, "a", tokenA)
	mustCreateOn(t, ctx, s, "a", tokenA)
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Fatalf("Get(a) on the same fence: %v", err)
	}
	mustDeleteOn(t, ctx, s, "a", tokenA)
	wantErr(t, s.Delete(ctx, "a", tokenA), core.ErrNotFound, "Delete(a, A) again, on the same fence")
	mustCreateOn(t, ctx, s, "a", tokenB)
	if r, ok := s.(core.Remover); ok && r.Removes() {
		if tok, err := r.Remove(ctx, "a", tokenC); err != nil || tok != tokenB {
			t.Fatalf("Remove(a, C) on the same fence=%q, %v; want %q, nil", tok, err, tokenB)
		}
	}
}

// testFenceRaisedByGet: a read raises the fence, whether or not the id is
// held: a settling coordinator's read is what shuts the old holder out.
func testFenceRaisedByGet(t *testing.T, s core.Store) {
	mustCreateOn(t, on(t, fence1), s, "a", tokenA)
	if got, err := s.Get(on(t, fence2), "a"); err != nil || got.Token != tokenA {
		t.Fatalf("Get(a) on a newer fence=%v, %v; want token %q", got, err, tokenA)
	}
	wantStale(t, s.Delete(on(t, fence1), "a", tokenA), fence2, "Delete(a, A) on the fence before the Get's")
	_, err := s.Get(on(t, fence2), "b")
	wantErr(t, err, core.ErrNotFound, "Get(b) on a newer fence")
	wantStale(t, s.Create(on(t, fence1), "b", tokenA), fence2, "Create(b, A) on the fence before the Get's")
	if _, err := s.Get(on(t, fence3), "a"); err != nil {
		t.Fatalf("Get(a) on a newer fence again: %v", err)
	}
	_, err = s.Get(on(t, fence2), "a")
	wantStale(t, err, fence3, "Get(a) on the fence before the last Get's")
	checkList(t, s, []core.Record{{ID: "a", Token: tokenA}})
}

// testFenceRaisedByRefusal: a request that another rule refuses (nothing to
// delete, another token held) raises the fence all the same: it is a
// request the node served.
func testFenceRaisedByRefusal(t *testing.T, s core.Store) {
	wantErr(t, s.Delete(on(t, fence2), "a", tokenA), core.ErrNotFound, "Delete(a, A) of a missing record")
	wantStale(t, s.Create(on(t, fence1), "a", tokenB), fence2, "Create(a, B) after a newer fence's Delete found nothing")
	mustCreateOn(t, on(t, fence2), s, "b", tokenA)
	wantErr(t, s.Create(on(t, fence3), "b", tokenB), core.ErrExists, "Create(b, B) over A")
	wantStale(t, s.Delete(on(t, fence2), "b", tokenA), fence3, "Delete(b, A) after a newer fence's refused Create")
	checkList(t, s, []core.Record{{ID: "b", Token: tokenA}})
}

// testFenceNone: a request that carries no fence (a client of the
// original protocol, a listing) is never refused, whatever fence the id
// holds, and lowers nothing.
func testFenceNone(t *testing.T, s core.Store) {
	mustCreateOn(t, on(t, fence2), s, "a", tokenA)
	mustCreate(t, s, "a", tokenA)
	mustGet(t, s, "a")
	mustDelete(t, s, "a", tokenA)
	mustCreate(t, s, "a", tokenB)
	mustDelete(t, s, "a", "")
	mustCreate(t, s, "a", tokenC)
	if r, ok := s.(core.Remover); ok && r.Removes() {
		mustRemove(t, r, "a", fence1, tokenC)
	}
	wantStale(t, s.Create(on(t, fence1), "a", "1700000003.000001"), fence2, "Create(a) on an older fence after requests without one")
	checkList(t, s, nil)
}

// testFenceSurvivesDelete: an id's fence outlives its record, so that a
// stale create cannot bring back an id whose deletion a newer holder
// settled, whatever token it carries.
func testFenceSurvivesDelete(t *testing.T, s core.Store) {
	mustCreateOn(t, on(t, fence1), s, "a", tokenA)
	mustDeleteOn(t, on(t, fence2), s, "a", tokenA)
	wantStale(t, s.Create(on(t, fence1), "a", tokenC), fence2, "Create(a, C), a token no tombstone fences, after the id is gone")
	if r, ok := s.(core.Remover); ok && r.Removes() {
		mustCreateOn(t, on(t, fence2), s, "b", tokenA)
		if tok, err := r.Remove(on(t, fence3), "b", tokenB); err != nil || tok != tokenA {
			t.Fatalf("Remove(b, B)=%q, %v; want %q, nil", tok, err, tokenA)
		}
		wantStale(t, s.Create(on(t, fence2), "b", tokenC), fence3, "Create(b, C) after the id was removed")
	}
	checkList(t, s, nil)
}

// testFenceConcurrent sends reads of one id carrying many fences at once:
// whatever order they ran in, the id ends holding the greatest, as the
// check and the raise are one step.
func testFenceConcurrent(t *testing.T, s core.Store) {
	const n = 16
	fence := func(i int) core.Token { return core.Token(fmt.Sprintf("1700000002.%06d", i+1)) }
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := s.Get(on(t, fence(i)), "a")
			if !errors.Is(err, core.ErrNotFound) && !errors.Is(err, core.ErrStale) {
				t.Errorf("Get(a) on fence %s: err=%v, want %v or %v", fence(i), err, core.ErrNotFound, core.ErrStale)
			}
		})
	}
	close(start)
	wg.Wait()
	wantStale(t, s.Create(on(t, fence(n-2)), "a", tokenA), fence(n-1), "Create(a, A) on the second greatest fence")
	mustCreateOn(t, on(t, fence(n-1)), s, "a", tokenA)
}

// testFenceIgnored: a Store that does not fence ignores the fence a
// request carries, as the original server ignores what it does not know.
func testFenceIgnored(t *testing.T, s core.Store) {
	_, err := s.Get(on(t, fence2), "a")
	wantErr(t, err, core.ErrNotFound, "Get(a) on a fence")
	mustCreateOn(t, on(t, fence1), s, "a", tokenA)
	mustDeleteOn(t, on(t, fence1), s, "a", tokenA)
	checkList(t, s, nil)
}

func mustCreateOn(t *testing.T, ctx context.Context, s core.Store, id core.GroupID, tok core.Token) {
	t.Helper()
	if err := s.Create(ctx, id, tok); err != nil {
		t.Fatalf("Create(%q, %q) on fence %s: %v", id, tok, core.FenceOf(ctx), err)
	}
}

func mustDeleteOn(t *testing.T, ctx context.Context, s core.Store, id core.GroupID, tok core.Token) {
	t.Helper()
	if err := s.Delete(ctx, id, tok); err != nil {
		t.Fatalf("Delete(%q, %q) on fence %s: %v", id, tok, core.FenceOf(ctx), err)
	}
}

// wantStale fails t unless err is of class ErrStale and carries held, the
// fence the Store holds.
func wantStale(t *testing.T, err error, held core.Token, what string) {
	t.Helper()
	wantErr(t, err, core.ErrStale, what)
	if e, _ := errors.AsType[*core.Error](err); e.Fence != held {
		t.Fatalf("%s: the EStale error carries fence %q, want the one held, %q", what, e.Fence, held)
	}
}
