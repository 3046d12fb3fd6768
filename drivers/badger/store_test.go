package badger_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"go.uber.org/goleak"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/storetest"
)

// holdEnv, when set to a directory, makes the test binary a helper process
// that opens a Store there, says "ready" and holds it until stdin closes.
const holdEnv = "ROPS_BADGER_TEST_HOLD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holdEnv); dir != "" {
		os.Exit(hold(dir))
	}
	goleak.VerifyTestMain(m)
}

func hold(dir string) int {
	s, err := badger.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// mustOpen opens a Store in dir and closes it when the test ends.
func mustOpen(tb testing.TB, dir string, opts ...badger.Option) *badger.Store {
	tb.Helper()
	s, err := badger.Open(dir, opts...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestStore runs the contract with tombstones; their expiry is badger's,
// by the wall clock, which the suite cannot move (see
// TestTombstoneExpiresAt).
func TestStore(t *testing.T) {
	storetest.RunWithOptions(t, func(tb testing.TB) core.Store { return mustOpen(tb, tb.TempDir()) },
		storetest.Options{Fences: true})
}

// TestTombstoneExpiresAt reads the tombstones a delete left, as badger holds
// them: their expiry is at least the TTL after the delete and at most a
// second and a half more, whatever badger's rounding to seconds; they
// survive a reopen, and an unconditional delete of a missing record leaves
// none.
func TestTombstoneExpiresAt(t *testing.T) {
	const ttl = time.Hour
	dir := t.TempDir()
	s, err := badger.Open(dir, badger.WithTombstoneTTL(ttl))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got, want := s.TombstoneTTL(), ttl; got != want {
		t.Fatalf("TombstoneTTL()=%v, want %v", got, want)
	}
	if err := s.Create(t.Context(), "a", "1.000001"); err != nil {
		t.Fatalf("Create(a): %v", err)
	}
	before := time.Now()
	if err := s.Delete(t.Context(), "a", ""); err != nil {
		t.Fatalf("Delete(a): %v", err)
	}
	if err := s.Delete(t.Context(), "b", "1.000002"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Delete(b, 1.000002): err=%v, want %v", err, core.ErrNotFound)
	}
	if err := s.Delete(t.Context(), "c", ""); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Delete(c): err=%v, want %v", err, core.ErrNotFound)
	}
	after := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db, err := badger.OpenDB(dir)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	defer db.Close()
	err = db.View(func(txn *badgerdb.Txn) error {
		for _, k := range []struct {
			id    core.GroupID
			token core.Token
		}{{"a", "1.000001"}, {"b", "1.000002"}} {
			item, err := txn.Get(badger.TombKey(k.id, k.token))
			if err != nil {
				t.Errorf("tombstone of (%s, %s): %v", k.id, k.token, err)
				continue
			}
			exp := time.Unix(int64(item.ExpiresAt()), 0)
			if exp.Before(before.Add(ttl)) || exp.After(after.Add(ttl+1500*time.Millisecond)) {
				t.Errorf("tombstone of (%s, %s) expires at %v, want from %v to %v",
					k.id, k.token, exp, before.Add(ttl), after.Add(ttl+1500*time.Millisecond))
			}
		}
		if _, err := txn.Get(badger.TombKey("c", "")); !errors.Is(err, badgerdb.ErrKeyNotFound) {
			t.Errorf("tombstone of (c, \"\"): err=%v, want %v", err, badgerdb.ErrKeyNotFound)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReopen checks that records, deletes included, survive Close.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := badger.Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, id := range []core.GroupID{"a", "b", "c"} {
		if err := s.Create(t.Context(), id, "1.000001"); err != nil {
			t.Fatalf("Create(%s): %v", id, err)
		}
	}
	if err := s.Delete(t.Context(), "b", ""); err != nil {
		t.Fatalf("Delete(b): %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = mustOpen(t, dir)
	page, err := s.List(t.Context(), "", 10)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := []core.Record{{ID: "a", Token: "1.000001"}, {ID: "c", Token: "1.000001"}}
	if got := fmt.Sprint(page); got != fmt.Sprint(want) {
		t.Fatalf("List after reopen=%v, want %v", got, want)
	}
	if err := s.Create(t.Context(), "a", "2.000001"); !errors.Is(err, core.ErrExists) {
		t.Fatalf("Create(a) after reopen: err=%v, want %v", err, core.ErrExists)
	}
}

// TestOpenLocked opens a directory that this process holds already.
func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := badger.Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_, err = badger.Open(dir)
	checkLocked(t, err, dir, "this process")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mustOpen(t, dir) // released by Close
}

// TestOpenLockedByOtherProcess opens a directory that a helper process
// holds, as a second rops command would.
func TestOpenLockedByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	pid := startHolder(t, dir)
	_, err := badger.Open(dir)
	checkLocked(t, err, dir, fmt.Sprintf("pid %d", pid))
}

// startHolder starts a helper process that holds a Store in dir until the
// test ends, and returns its pid.
func startHolder(t *testing.T, dir string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the helper: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if got, want := line, "ready\n"; err != nil || got != want {
		t.Fatalf("helper said %q (%v), want %q", got, err, want)
	}
	return cmd.Process.Pid
}

func checkLocked(t *testing.T, err error, dir, who string) {
	t.Helper()
	if !errors.Is(err, badger.ErrLocked) {
		t.Fatalf("Open of a held dir: err=%v, want %v", err, badger.ErrLocked)
	}
	if !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("Open of a held dir: err=%v, want class %v", err, core.ErrInvalid)
	}
	for _, want := range []string{dir, who, "--data"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Open of a held dir: err=%q, want it to mention %q", err, want)
		}
	}
}

func TestOpenFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	_, err := badger.Open(file)
	if got, want := core.ErrorCode(err), core.EInternal; got != want {
		t.Fatalf("Open(a file): code of %v=%q, want %q", err, got, want)
	}
	if errors.Is(err, badger.ErrLocked) {
		t.Fatalf("Open(a file): err=%v, want no %v", err, badger.ErrLocked)
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := badger.Open(t.TempDir())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestWithLogger checks badger's messages reach the logger; badger reports
// at every Open how many tables it opened.
func TestWithLogger(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mustOpen(t, t.TempDir(), badger.WithLogger(l))
	if got, want := buf.String(), "component=badger"; !strings.Contains(got, want) {
		t.Fatalf("log=%q, want it to contain %q", got, want)
	}
}

// BenchmarkCreate measures Creates from as many goroutines as a bulk job
// runs, and how many share one commit (one disk sync).
func BenchmarkCreate(b *testing.B) {
	benchCreate(b)
}

// BenchmarkCreateFenced is BenchmarkCreate with a fence on every Create,
// which the Store keeps under a key of its own, in the same transaction.
func BenchmarkCreateFenced(b *testing.B) {
	var s *badger.Store
	storetest.BenchCreateFenced(b, func(tb testing.TB) core.Store {
		s = mustOpen(tb, tb.TempDir())
		return s
	})
	if commits := s.Commits(); commits > 0 {
		b.ReportMetric(float64(b.N)/float64(commits), "writes/commit")
	}
}

// BenchmarkCreateNoSync shows what synced writes cost, against
// BenchmarkCreate.
func BenchmarkCreateNoSync(b *testing.B) {
	benchCreate(b, badger.WithoutSync())
}

func benchCreate(b *testing.B, opts ...badger.Option) {
	var s *badger.Store
	storetest.BenchCreate(b, func(tb testing.TB) core.Store {
		s = mustOpen(tb, tb.TempDir(), opts...)
		return s
	})
	if commits := s.Commits(); commits > 0 {
		b.ReportMetric(float64(b.N)/float64(commits), "writes/commit")
	}
}

// BenchmarkRemove is BenchmarkCreate for deletes without a read: each
// writes a tombstone and a record of the removal with the delete.
func BenchmarkRemove(b *testing.B) {
	var s *badger.Store
	storetest.BenchRemove(b, func(tb testing.TB) core.Store {
		s = mustOpen(tb, tb.TempDir())
		return s
	})
	if commits := s.Commits(); commits > 0 {
		b.ReportMetric(float64(2*b.N)/float64(commits), "writes/commit")
	}
}

// BenchmarkTxnPerWrite is what group commit saves: as many writers as a
// bulk job runs, each write its own badger transaction, which badger syncs
// on its own even when many arrive together. An op is two writes (a set of
// 120 bytes and its delete, as a journal's Begin and Finish were).
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
	value := make([]byte, 120)
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

func BenchmarkList(b *testing.B) {
	storetest.BenchList(b, func(tb testing.TB) core.Store { return mustOpen(tb, tb.TempDir()) }, 100_000, core.DefaultPageSize)
}

// BenchmarkOpenClose measures what a CLI command pays per node to open and
// close a Store: a new one, and an existing one that holds records.
func BenchmarkOpenClose(b *testing.B) {
	b.Run("new", func(b *testing.B) {
		root := b.TempDir()
		i := 0
		for b.Loop() {
			i++
			openClose(b, filepath.Join(root, fmt.Sprint(i)))
		}
	})
	b.Run("existing", func(b *testing.B) {
		dir := b.TempDir()
		s := mustOpen(b, dir)
		for i := range 1000 {
			if err := s.Create(b.Context(), core.GroupID(fmt.Sprint(i)), "1.000001"); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			openClose(b, dir)
		}
	})
}

func openClose(b *testing.B, dir string) {
	s, err := badger.Open(dir)
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		b.Fatalf("Close: %v", err)
	}
}
