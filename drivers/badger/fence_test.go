package badger_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/drivers/memory"
)

const (
	fence1 core.Token = "1700000002.000001"
	fence2 core.Token = "1700000002.000002"
	fence3 core.Token = "1700000002.000003"
)

// TestFenceReopen: fences are on disk, with no TTL: after Close and Open
// an id's fence still refuses an older one, whether a write raised it, a
// delete of the id, or a read of an id not held.
func TestFenceReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := badger.Open(dir, badger.WithTombstoneTTL(time.Second))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	on := func(f core.Token) context.Context { return core.WithFence(t.Context(), f) }
	wantCode(t, s.Create(on(fence2), "a", "1.000001"), "", "Create(a) on fence 2")
	wantCode(t, s.Create(on(fence1), "b", "1.000001"), "", "Create(b) on fence 1")
	wantCode(t, s.Delete(on(fence2), "b", "1.000001"), "", "Delete(b) on fence 2")
	_, err = s.Get(on(fence2), "c")
	wantCode(t, err, core.ENotFound, "Get(c) on fence 2")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db, err := badger.OpenDB(dir)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	err = db.View(func(txn *badgerdb.Txn) error {
		for _, id := range []core.GroupID{"a", "b", "c"} {
			item, err := txn.Get(badger.FenceKey(id))
			if err != nil {
				t.Errorf("fence of %s: %v", id, err)
				continue
			}
			if got := item.ExpiresAt(); got != 0 {
				t.Errorf("fence of %s expires at %v, want never", id, time.Unix(int64(got), 0))
			}
			if v, _ := item.ValueCopy(nil); core.Token(v) != fence2 {
				t.Errorf("fence of %s=%q, want %q", id, v, fence2)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, dir)
	for _, id := range []core.GroupID{"a", "b", "c"} {
		err := s.Create(on(fence1), id, "2.000001")
		wantCode(t, err, core.EStale, "Create("+string(id)+") on fence 1 after a reopen")
		if e, _ := errors.AsType[*core.Error](err); e.Fence != fence2 {
			t.Fatalf("Create(%s) on fence 1: the error carries fence %q, want %q", id, e.Fence, fence2)
		}
	}
	if rec, err := s.Get(on(fence2), "a"); err != nil || rec.Token != "1.000001" {
		t.Fatalf("Get(a) on fence 2 after a reopen=%v, %v; want token 1.000001", rec, err)
	}
}

// TestFenceKeysUnseen: List, Scan and Count see records only, never the
// keys of fences, whether their id is held, deleted or never written.
func TestFenceKeysUnseen(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	ctx := core.WithFence(t.Context(), fence1)
	for _, id := range []core.GroupID{"a", "b", "c", "d", "f/", "g/", "h"} {
		wantCode(t, s.Create(ctx, id, "1.000001"), "", "Create("+string(id)+")")
	}
	for _, id := range []core.GroupID{"b", "d"} {
		wantCode(t, s.Delete(ctx, id, ""), "", "Delete("+string(id)+")")
	}
	for _, id := range []core.GroupID{"e", "z", "f/a"} {
		_, err := s.Get(ctx, id)
		wantCode(t, err, core.ENotFound, "Get("+string(id)+")")
	}
	want := []core.GroupID{"a", "c", "f/", "g/", "h"}
	page, err := s.List(t.Context(), "", 100)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var listed, scanned []core.GroupID
	for _, r := range page {
		listed = append(listed, r.ID)
	}
	if err := s.Scan(t.Context(), "", func(r core.Record) bool { scanned = append(scanned, r.ID); return true }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	n, err := s.Count(t.Context())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	for _, got := range [][]core.GroupID{listed, scanned} {
		if !slices.Equal(got, want) {
			t.Fatalf("List=%q, Scan=%q; want %q", listed, scanned, want)
		}
	}
	if n != len(want) {
		t.Fatalf("Count=%d, want %d", n, len(want))
	}
}

// TestFenceWithoutTombstones: a Store opened WithoutTombstones does not
// fence: it ignores fences, and keeps none.
func TestFenceWithoutTombstones(t *testing.T) {
	dir := t.TempDir()
	s, err := badger.Open(dir, badger.WithoutTombstones())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_, err = s.Get(core.WithFence(t.Context(), fence2), "a")
	wantCode(t, err, core.ENotFound, "Get(a) on fence 2")
	wantCode(t, s.Create(core.WithFence(t.Context(), fence1), "a", "1.000001"), "", "Create(a) on fence 1")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db, err := badger.OpenDB(dir)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	defer db.Close()
	err = db.View(func(txn *badgerdb.Txn) error {
		_, err := txn.Get(badger.FenceKey("a"))
		return err
	})
	if !errors.Is(err, badgerdb.ErrKeyNotFound) {
		t.Fatalf("fence of a: err=%v, want %v", err, badgerdb.ErrKeyNotFound)
	}
}

// TestStoreBatchFences queues fenced writes of the same ids in one batch:
// each sees the fences the writes before it raised, in the batch's
// transaction, and gets what the memory store answers to them in order.
func TestStoreBatchFences(t *testing.T) {
	const a, b = core.Token("1700000000.000001"), core.Token("1700000000.000002")
	type fenced struct {
		fence core.Token
		w     storeWrite
	}
	writes := []fenced{
		{fence2, storeWrite{id: "n", token: a}},
		{fence1, storeWrite{del: true, id: "n", token: a}}, // stale
		{fence2, storeWrite{del: true, id: "n", token: a}},
		{fence1, storeWrite{id: "n", token: b}}, // stale, although n is gone
		{fence3, storeWrite{id: "n", token: b}},
		{fence2, storeWrite{del: true, id: "m", token: a}}, // nothing to delete: raises all the same
		{fence1, storeWrite{id: "m", token: b}},            // stale
		{"", storeWrite{id: "m", token: b}},                // no fence: never stale
		{fence2, storeWrite{id: "m", token: a}},            // exists
		{fence3, storeWrite{id: "m", token: a}},            // exists: raises
		{fence2, storeWrite{del: true, id: "m"}},           // stale
	}
	s := mustOpen(t, t.TempDir())
	oracle := memory.New()
	ctxs := make([]context.Context, len(writes))
	ws := make([]storeWrite, len(writes))
	for i, f := range writes {
		ctxs[i], ws[i] = core.WithFence(t.Context(), f.fence), f.w
	}
	errs := batch(t, s, ctxs, ws)
	for i, w := range ws {
		want := w.run(ctxs[i], oracle)
		if got := errs[i]; core.ErrorCode(got) != core.ErrorCode(want) {
			t.Errorf("#%d %v on fence %q: err=%v, want %v", i, w, writes[i].fence, got, want)
		}
	}
	want, err := oracle.List(t.Context(), "", 100)
	if err != nil {
		t.Fatalf("List(oracle): %v", err)
	}
	checkRecords(t, s, want)
}

// wantCode fails t unless err has code ("" for nil).
func wantCode(t *testing.T, err error, code core.Code, what string) {
	t.Helper()
	if got := core.ErrorCode(err); got != code {
		t.Fatalf("%s: err=%v, want code %q", what, err, code)
	}
}
