package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/journals/wal"
	"github.com/reliable-ops/rops/storetest"
)

// mustOpen opens the journal in dir and closes it when the test ends.
func mustOpen(tb testing.TB, dir string, opts wal.Options) *wal.Journal {
	tb.Helper()
	j, err := wal.Open(dir, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}

// reopen closes j and opens its directory again.
func reopen(t *testing.T, j *wal.Journal, opts wal.Options) *wal.Journal {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return mustOpen(t, j.Dir(), opts)
}

func TestJournal(t *testing.T) {
	storetest.RunJournal(t, func(tb testing.TB) core.Journal { return mustOpen(tb, tb.TempDir(), wal.Options{}) })
}

func token(i int) core.Token { return core.Token(fmt.Sprintf("1700000001.%06d", i)) }

func intent(i int) core.Intent {
	return core.Intent{Op: core.OpCreate, ID: core.GroupID(fmt.Sprint("id", i)), Token: token(i),
		Nodes: []string{"node01", "node02", "node03"}}
}

func mustBegin(t *testing.T, j core.Journal, is ...int) {
	t.Helper()
	for _, i := range is {
		if err := j.Begin(t.Context(), intent(i)); err != nil {
			t.Fatalf("Begin(%d): %v", i, err)
		}
	}
}

func mustFinish(t *testing.T, j core.Journal, is ...int) {
	t.Helper()
	for _, i := range is {
		if err := j.Finish(t.Context(), token(i)); err != nil {
			t.Fatalf("Finish(%d): %v", i, err)
		}
	}
}

// mustFinishEach finishes each of is in a batch of its own: Pending waits
// for the writes queued before it.
func mustFinishEach(t *testing.T, j core.Journal, is ...int) {
	t.Helper()
	for _, i := range is {
		mustFinish(t, j, i)
		if _, err := j.Pending(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// pendingTokens returns the tokens of j's pending intents, and Pending's
// error.
func pendingTokens(t *testing.T, j core.Journal) ([]core.Token, error) {
	t.Helper()
	ins, err := j.Pending(t.Context())
	var toks []core.Token
	for _, in := range ins {
		toks = append(toks, in.Token)
	}
	return toks, err
}

func tokens(is ...int) []core.Token {
	var toks []core.Token
	for _, i := range is {
		toks = append(toks, token(i))
	}
	return toks
}

func mustPending(t *testing.T, j core.Journal, want ...int) {
	t.Helper()
	got, err := pendingTokens(t, j)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	if !slices.Equal(got, tokens(want...)) {
		t.Fatalf("Pending=%v, want %v", got, tokens(want...))
	}
}

func TestReopen(t *testing.T) {
	j := mustOpen(t, t.TempDir(), wal.Options{})
	mustBegin(t, j, 0, 1, 2, 3)
	mustFinish(t, j, 1)
	up := intent(2)
	up.Nodes = up.Nodes[:1]
	if err := j.Update(t.Context(), up); err != nil {
		t.Fatalf("Update: %v", err)
	}
	mustFinish(t, j, 3)
	j = reopen(t, j, wal.Options{})
	mustPending(t, j, 0, 2)
	ins, _ := j.Pending(t.Context())
	if got, want := len(ins[1].Nodes), 1; got != want {
		t.Errorf("the updated intent has %d nodes, want %d", got, want)
	}
	// The finished intent's token is remembered.
	if got, want := j.LastToken(), token(3); got != want {
		t.Errorf("LastToken=%s, want %s", got, want)
	}
	mustBegin(t, j, 4)
	j = reopen(t, j, wal.Options{})
	mustPending(t, j, 0, 2, 4)
}

// TestFinishDoesNotSync: a Begin waits for a sync, a Finish only for its
// write; the next Begin's sync, or Close's, makes it durable.
func TestFinishDoesNotSync(t *testing.T) {
	j := mustOpen(t, t.TempDir(), wal.Options{})
	mustBegin(t, j, 0)
	syncs := wal.Syncs(j)
	mustFinish(t, j, 0)
	if got := wal.Syncs(j); got != syncs {
		t.Errorf("Finish synced %d times, want none", got-syncs)
	}
	mustBegin(t, j, 1)
	if got, want := wal.Syncs(j), syncs+1; got != want {
		t.Errorf("Begin synced %d times, want 1", got-syncs)
	}
	mustFinish(t, j, 1)
	j = reopen(t, j, wal.Options{})
	mustPending(t, j)
}

// TestGroupCommit: the Begins of concurrent callers share syncs.
func TestGroupCommit(t *testing.T) {
	j := mustOpen(t, t.TempDir(), wal.Options{})
	const workers, each = 16, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				if err := j.Begin(t.Context(), intent(n)); err != nil {
					t.Error(err)
					return
				}
				if err := j.Finish(t.Context(), token(n)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	syncs := wal.Syncs(j)
	t.Logf("%d Begins and Finishes from %d goroutines: %d syncs", workers*each, workers, syncs)
	if syncs >= workers*each*3/4 {
		t.Errorf("%d syncs for %d Begins: they do not share", syncs, workers*each)
	}
	mustPending(t, j)
}

// TestRewrite: a log that fills up is rewritten with the unfinished
// intents only, and keeps them and the last token.
func TestRewrite(t *testing.T) {
	opts := wal.Options{Size: 64 << 10}
	j := mustOpen(t, t.TempDir(), opts)
	mustBegin(t, j, 0)
	for i := 1; i < 2000; i++ {
		mustBegin(t, j, i)
		mustFinish(t, j, i)
	}
	if wal.Rewrites(j) < 2 {
		t.Errorf("%d rewrites, want the log rewritten as it filled", wal.Rewrites(j))
	}
	j = reopen(t, j, opts)
	mustPending(t, j, 0)
	if got, want := j.LastToken(), token(1999); got != want {
		t.Errorf("LastToken=%s, want %s", got, want)
	}
	if fi, err := os.Stat(filepath.Join(j.Dir(), wal.FileName)); err != nil || fi.Size() != opts.Size {
		t.Errorf("log file: %v, %v; want %d bytes", fi, err, opts.Size)
	}
}

// TestCloseCompacts: Close rewrites a log that holds more than CompactAt
// bytes of history with only the unfinished intents, so that the next Open
// reads those and none of the operations that went before
// (BenchmarkOpen); a log with less history is left as it is, so that a
// command of one operation does not pay for a new file.
func TestCloseCompacts(t *testing.T) {
	j := mustOpen(t, t.TempDir(), wal.Options{})
	mustBegin(t, j, 0, 1)
	up := intent(1)
	up.Nodes = up.Nodes[:1]
	if err := j.Update(t.Context(), up); err != nil {
		t.Fatalf("Update: %v", err)
	}
	mustBegin(t, j, 2)
	mustFinish(t, j, 2)
	rewrites := wal.Rewrites(j)
	path := logOf(t, j)
	if got := wal.Rewrites(j); got != rewrites {
		t.Errorf("Close rewrote a log with one finished operation of history")
	}
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(token(2))) {
		t.Fatal("a log with little history lost its finished intent at Close")
	}

	j = mustOpen(t, j.Dir(), wal.Options{})
	const n = 1000
	for i := 3; i < n; i++ {
		mustBegin(t, j, i)
		mustFinish(t, j, i)
	}
	path = logOf(t, j)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The header keeps the last token, n-1's.
	for i := 2; i < n-1; i++ {
		if bytes.Contains(b, []byte(token(i))) {
			t.Fatalf("after Close the log still holds finished intent %d", i)
		}
	}
	if got, limit := len(bytes.TrimRight(b, "\x00")), 1024; got > limit {
		t.Errorf("after Close %d bytes of the log are written, want at most %d: a header and two intents", got, limit)
	}
	j = mustOpen(t, j.Dir(), wal.Options{})
	mustPending(t, j, 0, 1)
	if ins, _ := j.Pending(t.Context()); len(ins[1].Nodes) != 1 {
		t.Errorf("the updated intent has %d nodes, want 1", len(ins[1].Nodes))
	}
	if got, want := j.LastToken(), token(n-1); got != want {
		t.Errorf("LastToken=%s, want %s", got, want)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, wal.Options{})
	_, err := wal.Open(dir, wal.Options{})
	if !errors.Is(err, wal.ErrLocked) || !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("second Open=%v, want ErrLocked and ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "in use by this process") {
		t.Errorf("error %q does not say who holds it", err)
	}
}

// TestLockPid: the lock file says which process holds it, even after a
// holder whose pid was longer (the file is cut to the pid, not truncated
// at every Open).
func TestLockPid(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "LOCK"), []byte("12345678901234567890\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir, wal.Options{})
	b, err := os.ReadFile(filepath.Join(dir, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), fmt.Sprintf("%d\n", os.Getpid()); got != want {
		t.Fatalf("LOCK holds %q, want %q", got, want)
	}
}

func TestCluster(t *testing.T) {
	dir := t.TempDir()
	a := wal.Options{Cluster: "aaaa", Nodes: "memory://node01"}
	j := mustOpen(t, dir, a)
	mustBegin(t, j, 0)
	ins, _ := j.Pending(t.Context())
	if got, want := ins[0].Cluster, "aaaa"; got != want {
		t.Errorf("intent's Cluster=%q, want %q", got, want)
	}
	if err := j.Begin(t.Context(), core.Intent{Op: core.OpCreate, ID: "x", Token: "9", Cluster: "bbbb"}); !errors.Is(err, wal.ErrOtherCluster) {
		t.Errorf("Begin of another cluster's intent=%v, want ErrOtherCluster", err)
	}
	j.Close()

	// The log of one cluster, opened for another.
	_, err := wal.Open(dir, wal.Options{Cluster: "bbbb"})
	if !errors.Is(err, wal.ErrOtherCluster) || !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("Open for another cluster=%v, want ErrOtherCluster", err)
	}
	if !strings.Contains(err.Error(), "aaaa (memory://node01)") {
		t.Errorf("error %q does not name the journal's cluster", err)
	}

	// An intent of another cluster in a journal without one (an older
	// rops's, imported): Pending names it and returns the others.
	dir = t.TempDir()
	j = mustOpen(t, dir, wal.Options{})
	mustBegin(t, j, 0)
	if err := j.Begin(t.Context(), core.Intent{Op: core.OpCreate, ID: "x", Token: "9", Cluster: "bbbb"}); err != nil {
		t.Fatal(err)
	}
	j = reopen(t, j, a)
	got, err := pendingTokens(t, j)
	if !errors.Is(err, wal.ErrOtherCluster) || !slices.Equal(got, tokens(0)) {
		t.Fatalf("Pending=%v, %v; want %v and ErrOtherCluster", got, err, tokens(0))
	}
}

// logOf returns the path of j's log file, closing j.
func logOf(t *testing.T, j *wal.Journal) string {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(j.Dir(), wal.FileName)
}

// edit changes the file at path with f.
func edit(t *testing.T, path string, f func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// at returns the offset of the first s in the file at path.
func at(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(s))
	if i < 0 {
		t.Fatalf("%q not in %s", s, path)
	}
	return i
}

// TestDamage: damage anywhere but a torn tail is found, named by file and
// byte range, and refused until discarded.
func TestDamage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		damage   func(t *testing.T, path string) // the log holds intents 0-9, 1-8 finished
		wantWhy  string
		readable []int // what Pending returns with the damage
	}{{
		name: "bytes flipped in an intent",
		damage: func(t *testing.T, path string) {
			i := at(t, path, string(token(3)))
			edit(t, path, func(b []byte) []byte {
				for k := range 20 {
					b[i+k] ^= 0x5a
				}
				return b
			})
		},
		wantWhy: "checksum mismatch",
		// 3's Begin is gone with the damage, and with it its finish.
		readable: []int{0, 9},
	}, {
		name: "a finish damaged: its intent comes back, but nothing acts on it",
		damage: func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			// The finish record's payload is the bare token, after its
			// Begin's JSON.
			i := bytes.LastIndex(b, []byte(token(5)))
			edit(t, path, func(b []byte) []byte { b[i] ^= 1; return b })
		},
		wantWhy:  "checksum mismatch",
		readable: []int{0, 5, 9},
	}, {
		name: "cut to half",
		damage: func(t *testing.T, path string) {
			if err := os.Truncate(path, wal.DefaultSize/2); err != nil {
				t.Fatal(err)
			}
		},
		wantWhy:  "missing: the file is 2097152 bytes long, and was written 4194304 long",
		readable: []int{0, 9},
	}, {
		name: "cut in the records",
		damage: func(t *testing.T, path string) {
			if err := os.Truncate(path, int64(at(t, path, string(token(6))))); err != nil {
				t.Fatal(err)
			}
		},
		wantWhy:  "missing",
		readable: []int{0, 1, 2, 3, 4, 5}, // the finishes are lost too
	}, {
		name: "extended",
		damage: func(t *testing.T, path string) {
			edit(t, path, func(b []byte) []byte { return append(b, "more"...) })
		},
		wantWhy:  "beyond the end",
		readable: []int{0, 9},
	}, {
		name: "bytes written far after the end of the log",
		damage: func(t *testing.T, path string) {
			edit(t, path, func(b []byte) []byte { copy(b[3<<20:], "garbage"); return b })
		},
		wantWhy:  "bytes written after the end of the log",
		readable: []int{0, 9},
	}, {
		// Written in place, so the rest of the preallocated file stays the
		// hole it was: Open reads past the log's end only where the file
		// holds data, and must find these.
		name: "bytes written into the hole after the end of the log",
		damage: func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("garbage"), 3<<20+12345); err != nil {
				t.Fatal(err)
			}
		},
		wantWhy:  "bytes written after the end of the log",
		readable: []int{0, 9},
	}, {
		name: "header damaged",
		damage: func(t *testing.T, path string) {
			edit(t, path, func(b []byte) []byte { b[12] ^= 1; return b })
		},
		wantWhy:  "the header cannot be read",
		readable: nil,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			j := mustOpen(t, t.TempDir(), wal.Options{})
			for i := range 10 {
				mustBegin(t, j, i)
			}
			mustFinishEach(t, j, 1, 2, 3, 4, 5, 6, 7, 8)
			mustBegin(t, j, 10) // a later batch: the finishes were synced
			mustFinish(t, j, 10)
			path := logOf(t, j)
			tc.damage(t, path)

			j = mustOpen(t, j.Dir(), wal.Options{})
			got, err := pendingTokens(t, j)
			var de *wal.DamageError
			if !errors.As(err, &de) || !errors.Is(err, wal.ErrDamaged) {
				t.Fatalf("Pending err=%v, want a DamageError", err)
			}
			t.Logf("%v", err)
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantWhy) {
				t.Errorf("error %q does not name the file and say %q", err, tc.wantWhy)
			}
			if !strings.Contains(err.Error(), "bytes ") {
				t.Errorf("error %q does not name the byte range", err)
			}
			if !slices.Equal(got, tokens(tc.readable...)) {
				t.Errorf("Pending=%v, want the readable intents %v", got, tokens(tc.readable...))
			}
			// Refused until discarded.
			if err := j.Begin(t.Context(), intent(20)); !errors.Is(err, wal.ErrDamaged) {
				t.Errorf("Begin on a damaged journal=%v, want ErrDamaged", err)
			}
			keys := de.Keys()
			if err := j.Discard(t.Context(), []string{"journal.wal@1-2"}); !errors.Is(err, core.ErrInvalid) {
				t.Errorf("Discard of an unknown key=%v, want ErrInvalid", err)
			}
			if err := j.Discard(t.Context(), keys); err != nil {
				t.Fatalf("Discard(%v): %v", keys, err)
			}
			mustPending(t, j, tc.readable...)
			mustBegin(t, j, 20)
			j = reopen(t, j, wal.Options{})
			mustPending(t, j, append(tc.readable, 20)...)
		})
	}
}

// TestTornTail: what a crash may leave half written (the bytes after the
// last completed sync) is dropped without a word, and the log is
// rewritten so that no later sync makes it look like damage.
func TestTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		// the log holds Begins 0-4, each synced, then what write adds,
		// and the bytes from the offset of tear on are then zeroed,
		// up to the end of the log, as a crash leaves unsynced pages
		write func(t *testing.T, j *wal.Journal)
		tear  string
		want  []int
	}{{
		name:  "the last Begin, half written",
		write: func(t *testing.T, j *wal.Journal) { mustBegin(t, j, 5) },
		tear:  `"id5"`,
		want:  []int{0, 1, 2, 3, 4},
	}, {
		// A finish is not synced, and a later batch may be synced while
		// its pages are not: the finished intent comes back, the later
		// Begin stays.
		name: "unsynced finishes torn, a later Begin whole",
		write: func(t *testing.T, j *wal.Journal) {
			mustFinishEach(t, j, 1, 2) // two batches, not synced
			mustBegin(t, j, 5)
		},
		tear: "",
		want: []int{0, 1, 3, 4, 5},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			j := mustOpen(t, t.TempDir(), wal.Options{})
			mustBegin(t, j, 0, 1, 2, 3, 4)
			tc.write(t, j)
			path := logOf(t, j)
			if tc.tear != "" {
				i := at(t, path, tc.tear)
				edit(t, path, func(b []byte) []byte { clear(b[i:]); return b })
			} else {
				// Tear the write of the finish of 1 from its record's
				// checksum on, up to the next write (the finish of 2's).
				b, _ := os.ReadFile(path)
				i := bytes.LastIndex(b, []byte(token(1)))
				next := writeStart(t, b, bytes.LastIndex(b, []byte(token(2)))-9)
				edit(t, path, func(b []byte) []byte { clear(b[i-4 : next]); return b })
			}
			j = mustOpen(t, j.Dir(), wal.Options{})
			mustPending(t, j, tc.want...)
			mustBegin(t, j, 6)
			mustBegin(t, j, 7)
			j = reopen(t, j, wal.Options{})
			mustPending(t, j, append(tc.want, 6, 7)...)
		})
	}
}

// TestDamageBeforeSync: the same tear as a torn finish, once a later batch
// says those bytes were synced, is damage.
func TestDamageBeforeSync(t *testing.T) {
	j := mustOpen(t, t.TempDir(), wal.Options{})
	mustBegin(t, j, 0, 1, 2)
	mustFinishEach(t, j, 1)
	mustBegin(t, j, 3) // syncs the finish
	mustBegin(t, j, 4) // says so
	path := logOf(t, j)
	b, _ := os.ReadFile(path)
	i := bytes.LastIndex(b, []byte(token(1)))
	next := writeStart(t, b, bytes.LastIndex(b, []byte(`{"op":"create","id":"id3"`))-9)
	edit(t, path, func(b []byte) []byte { clear(b[i-4 : next]); return b })
	j = mustOpen(t, j.Dir(), wal.Options{})
	if _, err := j.Pending(t.Context()); !errors.Is(err, wal.ErrDamaged) {
		t.Fatalf("Pending err=%v, want ErrDamaged", err)
	}
}
