package badger_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/badger"
	"github.com/reliable-ops/rops/nodes/storetest"
)

// mustOpenJournal opens a Journal in dir and closes it when the test ends.
func mustOpenJournal(tb testing.TB, dir string, opts ...badger.Option) *badger.Journal {
	tb.Helper()
	j, err := badger.OpenJournal(dir, opts...)
	if err != nil {
		tb.Fatalf("OpenJournal: %v", err)
	}
	tb.Cleanup(func() {
		if err := j.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return j
}

// reopenJournal closes j and opens the Journal in dir again.
func reopenJournal(t *testing.T, j *badger.Journal, dir string) *badger.Journal {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return mustOpenJournal(t, dir)
}

func TestJournal(t *testing.T) {
	storetest.RunJournal(t, func(tb testing.TB) core.Journal { return mustOpenJournal(tb, tb.TempDir()) })
}

// intent returns the i-th of a run of create intents.
func intent(i int) core.Intent {
	return core.Intent{Op: core.OpCreate, ID: core.GroupID(fmt.Sprint("id", i)),
		Token: core.Token(fmt.Sprintf("1700000001.%06d", i)), Nodes: []string{"node01", "node02", "node03"}}
}

func mustBegin(t *testing.T, j core.Journal, in core.Intent) {
	t.Helper()
	if err := j.Begin(t.Context(), in); err != nil {
		t.Fatalf("Begin(%s): %v", in.Token, err)
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

// checkPending checks Pending returns want, deeply, in order.
func checkPending(t *testing.T, got, want []core.Intent) {
	t.Helper()
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("Pending=%+v, want %+v", got, want)
	}
}

// TestJournalReopen checks that intents, their updates and their order
// survive Close, that finished ones stay gone, and that intents begun
// after a reopen come after those from before.
func TestJournalReopen(t *testing.T) {
	dir := t.TempDir()
	j := mustOpenJournal(t, dir)
	del := core.Intent{Op: core.OpDelete, ID: "a", Token: "1700000002.000001", Nodes: []string{"node01", "node02"},
		PreImage: map[string]core.Token{"node01": "1700000000.000001"}}
	mustBegin(t, j, intent(0))
	mustBegin(t, j, del)
	mustBegin(t, j, intent(1))

	j = reopenJournal(t, j, dir)
	checkPending(t, mustPending(t, j), []core.Intent{intent(0), del, intent(1)})
	del.PreImage["node02"] = "1700000000.000002"
	if err := j.Update(t.Context(), del); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := j.Finish(t.Context(), intent(0).Token); err != nil {
		t.Fatalf("Finish: %v", err)
	}

	j = reopenJournal(t, j, dir)
	checkPending(t, mustPending(t, j), []core.Intent{del, intent(1)})
	mustBegin(t, j, intent(2))
	if err := j.Begin(t.Context(), del); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("Begin of an intent from before the reopen: err=%v, want %v", err, core.ErrInvalid)
	}
	for _, in := range []core.Intent{del, intent(1)} {
		if err := j.Finish(t.Context(), in.Token); err != nil {
			t.Fatalf("Finish: %v", err)
		}
	}

	j = reopenJournal(t, j, dir)
	checkPending(t, mustPending(t, j), []core.Intent{intent(2)})
}

// TestJournalRefusesBadIntents: what Begin and Update accept, Pending must
// be able to return.
func TestJournalRefusesBadIntents(t *testing.T) {
	j := mustOpenJournal(t, t.TempDir())
	for _, tc := range []struct {
		name string
		in   core.Intent
	}{
		{"no token", core.Intent{Op: core.OpCreate, ID: "a"}},
		{"unknown op", core.Intent{Op: "rename", ID: "a", Token: "1.000001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := j.Begin(t.Context(), tc.in); !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("Begin: err=%v, want %v", err, core.ErrInvalid)
			}
			if err := j.Update(t.Context(), tc.in); !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("Update: err=%v, want %v", err, core.ErrInvalid)
			}
		})
	}
	if got, want := len(mustPending(t, j)), 0; got != want {
		t.Fatalf("len(Pending)=%d, want %d", got, want)
	}
}

// checksummed returns what the journal would store for js.
func checksummed(js string) []byte {
	v := binary.BigEndian.AppendUint32(nil, crc32.Checksum([]byte(js), crc32.MakeTable(crc32.Castagnoli)))
	return append(v, js...)
}

// TestJournalCorrupt damages the value of the middle one of three intents
// on disk, or adds an entry, and checks that Pending returns the intact
// intents in order and names the bad entry, which stays until Discard.
func TestJournalCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(v []byte) []byte // the middle intent's new value
		key     string                // or a new entry's key, with value damage(nil)
		wantErr string
	}{
		{name: "bit flip", damage: func(v []byte) []byte { v[len(v)/2] ^= 0x10; return v }, wantErr: "checksum mismatch"},
		{name: "torn JSON", damage: func(v []byte) []byte { return v[:len(v)-3] }, wantErr: "checksum mismatch"},
		{name: "torn checksum", damage: func(v []byte) []byte { return v[:3] }, wantErr: "torn: 3 bytes"},
		{name: "empty", damage: func([]byte) []byte { return nil }, wantErr: "torn: 0 bytes"},
		{name: "checksummed garbage", damage: func([]byte) []byte { return checksummed("{op:") }, wantErr: "not an intent"},
		{name: "checksummed non-intent", damage: func([]byte) []byte { return checksummed(`{"op":"create"}`) }, wantErr: "no token"},
		{name: "bad key", key: "j/garbage", damage: func([]byte) []byte { return checksummed(`{"op":"create","token":"1.5"}`) }, wantErr: "not a journal key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j := mustOpenJournal(t, dir)
			for i := range 3 {
				mustBegin(t, j, intent(i))
			}
			if err := j.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			key := tc.key
			rewrite(t, dir, func(txn *badgerdb.Txn) error {
				var v []byte
				if key == "" {
					keys, values := entries(t, txn)
					key, v = keys[1], values[1]
				}
				return txn.Set([]byte(key), tc.damage(v))
			})

			j = mustOpenJournal(t, dir)
			want := []core.Intent{intent(0), intent(2)}
			if tc.key != "" {
				want = []core.Intent{intent(0), intent(1), intent(2)}
			}
			got, err := j.Pending(t.Context())
			checkCorrupt(t, err, dir, []string{key}, tc.wantErr)
			checkPending(t, got, want)

			// Later writes go on around the bad entry, and after it.
			mustBegin(t, j, intent(3))
			got, err = j.Pending(t.Context())
			checkCorrupt(t, err, dir, []string{key}, tc.wantErr)
			checkPending(t, got, append(want, intent(3)))

			if err := j.Discard(t.Context(), key); err != nil {
				t.Fatalf("Discard(%s): %v", key, err)
			}
			j = reopenJournal(t, j, dir)
			checkPending(t, mustPending(t, j), append(want, intent(3)))
		})
	}
}

// TestJournalCorruptMany checks that every bad entry is named, in order.
func TestJournalCorruptMany(t *testing.T) {
	dir := t.TempDir()
	j := mustOpenJournal(t, dir)
	for i := range 5 {
		mustBegin(t, j, intent(i))
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var bad []string
	rewrite(t, dir, func(txn *badgerdb.Txn) error {
		keys, _ := entries(t, txn)
		bad = []string{keys[0], keys[2], keys[3]}
		for _, k := range bad {
			if err := txn.Set([]byte(k), []byte("x")); err != nil {
				return err
			}
		}
		return nil
	})
	j = mustOpenJournal(t, dir)
	got, err := j.Pending(t.Context())
	checkCorrupt(t, err, dir, bad, "torn: 1 bytes")
	checkPending(t, got, []core.Intent{intent(1), intent(4)})
	// Finishing the intact ones leaves the bad ones reported.
	for _, i := range []int{1, 4} {
		if err := j.Finish(t.Context(), intent(i).Token); err != nil {
			t.Fatalf("Finish: %v", err)
		}
	}
	got, err = j.Pending(t.Context())
	checkCorrupt(t, err, dir, bad, "torn: 1 bytes")
	checkPending(t, got, nil)
}

func checkCorrupt(t *testing.T, err error, dir string, keys []string, reason string) {
	t.Helper()
	if !errors.Is(err, badger.ErrCorrupt) {
		t.Fatalf("Pending: err=%v, want %v", err, badger.ErrCorrupt)
	}
	ce, ok := errors.AsType[*badger.CorruptError](err)
	if !ok {
		t.Fatalf("Pending: err=%T, want a *badger.CorruptError", err)
	}
	var got []string
	for _, e := range ce.Entries {
		got = append(got, e.Key)
		if !strings.Contains(e.Err.Error(), reason) {
			t.Fatalf("entry %s: err=%q, want it to mention %q", e.Key, e.Err, reason)
		}
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("CorruptError keys=%q, want %q", got, keys)
	}
	for _, want := range append([]string{dir, reason}, keys...) {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Pending: err=%q, want it to mention %q", err, want)
		}
	}
}

// rewrite runs f in a transaction on the journal database in dir, which
// must be closed, as a disk fault or a bug might write.
func rewrite(t *testing.T, dir string, f func(txn *badgerdb.Txn) error) {
	t.Helper()
	db, err := badger.OpenDB(dir)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	if err := db.Update(f); err != nil {
		t.Fatalf("rewriting the journal: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// entries returns the keys and values of the journal's entries, in order.
func entries(t *testing.T, txn *badgerdb.Txn) (keys []string, values [][]byte) {
	t.Helper()
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte("j/")})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			t.Fatalf("reading the journal: %v", err)
		}
		keys = append(keys, string(it.Item().Key()))
		values = append(values, v)
	}
	return keys, values
}

func TestJournalDiscard(t *testing.T) {
	j := mustOpenJournal(t, t.TempDir())
	mustBegin(t, j, intent(0))
	for _, tc := range []struct {
		name string
		key  string
		want error
	}{
		{"outside the journal", "g/1", core.ErrInvalid},
		{"no such entry", "j/00000000000000000099", core.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := j.Discard(t.Context(), tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("Discard(%s): err=%v, want %v", tc.key, err, tc.want)
			}
		})
	}
	checkPending(t, mustPending(t, j), []core.Intent{intent(0)})
}

// TestJournalDiscardIntact discards an intent that can be read: it is gone,
// and its token is free again.
func TestJournalDiscardIntact(t *testing.T) {
	dir := t.TempDir()
	j := mustOpenJournal(t, dir)
	mustBegin(t, j, intent(0))
	mustBegin(t, j, intent(1))
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var key string
	rewrite(t, dir, func(txn *badgerdb.Txn) error {
		keys, _ := entries(t, txn)
		key = keys[0]
		return nil
	})
	j = mustOpenJournal(t, dir)
	if err := j.Discard(t.Context(), key); err != nil {
		t.Fatalf("Discard(%s): %v", key, err)
	}
	checkPending(t, mustPending(t, j), []core.Intent{intent(1)})
	mustBegin(t, j, intent(0))
	checkPending(t, mustPending(t, j), []core.Intent{intent(1), intent(0)})
}

// TestJournalDoesNotGrow: finished intents leave no key behind.
func TestJournalDoesNotGrow(t *testing.T) {
	dir := t.TempDir()
	j := mustOpenJournal(t, dir)
	const n = 500
	for i := range n {
		mustBegin(t, j, intent(i))
		if err := j.Finish(t.Context(), intent(i).Token); err != nil {
			t.Fatalf("Finish: %v", err)
		}
	}
	if got, want := len(mustPending(t, j)), 0; got != want {
		t.Fatalf("len(Pending)=%d, want %d", got, want)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rewrite(t, dir, func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{})
		defer it.Close()
		var keys []string
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, string(it.Item().Key()))
		}
		if got, want := len(keys), 0; got != want {
			t.Fatalf("keys left in the journal=%q, want none", keys)
		}
		return nil
	})
}

func TestJournalClosed(t *testing.T) {
	j, err := badger.OpenJournal(t.TempDir())
	if err != nil {
		t.Fatalf("OpenJournal: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := j.Begin(t.Context(), intent(0)); err == nil {
		t.Fatalf("Begin after Close: err=nil, want an error")
	}
	if err := j.Finish(t.Context(), intent(0).Token); err == nil {
		t.Fatalf("Finish after Close: err=nil, want an error")
	}
	if _, err := j.Pending(t.Context()); err == nil {
		t.Fatalf("Pending after Close: err=nil, want an error")
	}
}

// TestJournalLocked opens a journal that this process holds already.
func TestJournalLocked(t *testing.T) {
	dir := t.TempDir()
	j, err := badger.OpenJournal(dir)
	if err != nil {
		t.Fatalf("OpenJournal: %v", err)
	}
	_, err = badger.OpenJournal(dir)
	checkLocked(t, err, dir, "this process")
	checkJournalNamed(t, err)
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mustOpenJournal(t, dir) // released by Close
}

// TestJournalLockedByOtherProcess opens a journal that a helper process
// holds, as a second rops command sharing the data dir would.
func TestJournalLockedByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	pid := startHolder(t, dir, holdJournalEnv+"=1")
	_, err := badger.OpenJournal(dir)
	checkLocked(t, err, dir, fmt.Sprintf("pid %d", pid))
	checkJournalNamed(t, err)
}

func checkJournalNamed(t *testing.T, err error) {
	t.Helper()
	if got, want := err.Error(), "journal "; !strings.HasPrefix(got, want) {
		t.Fatalf("OpenJournal of a held dir: err=%q, want it to start with %q", got, want)
	}
}

// BenchmarkJournal measures a Begin and a Finish, the journal's cost per
// operation, from one goroutine and from as many as a bulk job runs, and
// how many operations share one commit (one disk sync).
func BenchmarkJournal(b *testing.B) {
	for _, bc := range []struct {
		name    string
		workers int
		opts    []badger.Option
	}{
		{"serial", 1, nil},
		{"parallel", core.DefaultConcurrency, nil},
		{"serial-nosync", 1, []badger.Option{badger.WithoutSync()}},
		{"parallel-nosync", core.DefaultConcurrency, []badger.Option{badger.WithoutSync()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			j := mustOpenJournal(b, dir, bc.opts...)
			ctx := b.Context()
			var next atomic.Int64
			b.ReportAllocs()
			commits := j.Commits()
			b.ResetTimer()
			run := func(pb interface{ Next() bool }) {
				for pb.Next() {
					in := intent(int(next.Add(1)))
					if err := j.Begin(ctx, in); err != nil {
						b.Errorf("Begin: %v", err)
						return
					}
					if err := j.Finish(ctx, in.Token); err != nil {
						b.Errorf("Finish: %v", err)
						return
					}
				}
			}
			if bc.workers == 1 {
				run(loop{b})
			} else {
				b.SetParallelism(max(1, bc.workers/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) { run(pb) })
			}
			b.StopTimer()
			b.ReportMetric(float64(2*b.N)/float64(j.Commits()-commits), "writes/commit")
			if err := j.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(dirSize(b, dir)), "disk-bytes")
		})
	}
}

// loop adapts b.Loop to RunParallel's pb.Next.
type loop struct{ b *testing.B }

func (l loop) Next() bool { return l.b.Loop() }

// dirSize returns the bytes of the files under dir.
func dirSize(tb testing.TB, dir string) int64 {
	tb.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkTxnPerWrite is what BenchmarkJournal/parallel would cost without
// the Journal's group commit: each write its own badger transaction, which
// badger syncs on its own even when many arrive together.
func BenchmarkTxnPerWrite(b *testing.B) {
	db, err := badger.OpenDB(b.TempDir())
	if err != nil {
		b.Fatalf("OpenDB: %v", err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	value := make([]byte, 120) // about an intent's size
	var next atomic.Int64
	b.SetParallelism(max(1, core.DefaultConcurrency/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := []byte(fmt.Sprint("j/", next.Add(1)))
			if err := db.Update(func(txn *badgerdb.Txn) error { return txn.Set(key, value) }); err != nil {
				b.Errorf("Set: %v", err)
				return
			}
			if err := db.Update(func(txn *badgerdb.Txn) error { return txn.Delete(key) }); err != nil {
				b.Errorf("Delete: %v", err)
				return
			}
		}
	})
}
