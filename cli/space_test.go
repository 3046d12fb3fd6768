package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// withFreeSpace makes the space guard measure every file system with free
// until the test ends.
func withFreeSpace(t *testing.T, free func(dir string) (uint64, error)) {
	t.Helper()
	old := freeSpace
	freeSpace = free
	t.Cleanup(func() { freeSpace = old })
}

// run runs the command line in-process and returns its exit code, standard
// output and standard error.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr lockedBuffer
	code := Run(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

// lockedBuffer is a bytes.Buffer for many goroutines, as -v writes to
// stderr from every worker and node.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNoSpaceRefusesToWrite: with less than MinFree free on the data
// directory's file system, a command that writes exits ExitNoSpace before it
// writes anything, saying where; stats, which writes nothing of its own,
// still runs on a cluster there is, and makes none where there is none.
func TestNoSpaceRefusesToWrite(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	existing := t.TempDir()
	if code, stdout, stderr := run(t, "--data", existing, "--random-behavior", "0", "create-one", "x"); code != ExitOK {
		t.Fatalf("create-one with room: exit %d, want 0: %s%s", code, stdout, stderr)
	}
	withFreeSpace(t, func(string) (uint64, error) { return 1 << 20, nil })
	for _, args := range [][]string{
		{"create", "--range", "0-9"}, {"delete-one", "5"}, {"recover"}, {"repair"}, {"check", "--ops", "1"},
	} {
		code, _, stderr := run(t, append([]string{"--data", data}, args...)...)
		if got, want := code, ExitNoSpace; got != want {
			t.Fatalf("%s: exit %d, want %d: %s", args[0], got, want, stderr)
		}
		if want := "rops: no space left on " + data + ": 1.0 MiB free, and rops needs 64.0 MiB to write safely"; !strings.Contains(stderr, want) {
			t.Fatalf("%s: stderr=%q, want %q", args[0], stderr, want)
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data directory exists (%v): something was written", err)
	}
	if code, stdout, stderr := run(t, "--data", existing, "stats"); code != ExitOK {
		t.Fatalf("stats: exit %d, want 0: %s%s", code, stdout, stderr)
	}
	if code, _, stderr := run(t, "--data", data, "stats"); code != ExitUsage || !strings.Contains(stderr, "no cluster at "+data) {
		t.Fatalf("stats where there is no cluster: exit %d, want %d and no cluster: %s", code, ExitUsage, stderr)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data directory exists (%v): stats made it", err)
	}
}

// TestNoSpaceStopsAJob: when the free space falls below MinFree while a job
// runs, the job takes no new id, finishes or rolls back those in flight,
// and exits ExitNoSpace; nothing it reported done is lost, and recover
// leaves the nodes consistent.
func TestNoSpaceStopsAJob(t *testing.T) {
	data := t.TempDir()
	var calls atomic.Int64
	full := atomic.Bool{}
	var log doneWatcher
	withFreeSpace(t, func(string) (uint64, error) {
		// The check before the job, then two polls, pass; then the disk
		// fills once an id is done (not after a time: a busy machine may
		// take longer than the polls to finish one).
		if calls.Add(1) > 3 && full.Load() && log.sawDone.Load() {
			return MinFree - 1<<20, nil
		}
		return 1 << 40, nil
	})
	full.Store(true)
	var out lockedBuffer
	code := Run(context.Background(), []string{"--data", data, "--seed", "1", "--random-behavior", "0.2", "-v", "create", "--range", "0-999999"},
		IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &log})
	stdout, stderr := out.String(), log.String()
	if got, want := code, ExitNoSpace; got != want {
		t.Fatalf("exit %d, want %d: %s", got, want, stderr)
	}
	if want := "rops: no space left on " + data + ": 63.0 MiB free, and rops needs 64.0 MiB to write safely (its stores write through memory-mapped files, which crash on a full disk); so it stopped"; !strings.Contains(stderr, want) {
		t.Fatalf("stderr ends %q, want %q", stderr[max(0, len(stderr)-400):], want)
	}
	done := doneIDs(stderr)
	t.Logf("%s; %d done", strings.SplitN(stdout, "\n", 2)[0], len(done))
	if len(done) == 0 || len(done) >= 1_000_000 {
		t.Fatalf("%d ids done, want the job stopped part way", len(done))
	}
	full.Store(false)
	assertKept(t, done, "--data", data)
}

// doneWatcher is a lockedBuffer that notes when -v has logged an id done.
type doneWatcher struct {
	lockedBuffer
	sawDone atomic.Bool
}

func (w *doneWatcher) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(" outcome=done")) {
		w.sawDone.Store(true)
	}
	return w.lockedBuffer.Write(p)
}

// doneIDs returns the ids that -v logged as done ("msg=result op=create
// id=5 outcome=done").
func doneIDs(log string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`(?m) msg=result op=create id=(\S+) outcome=done$`).FindAllStringSubmatch(log, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// assertKept recovers the cluster that args name, and checks that it is
// consistent and that every id of done is on every node: creating them
// again leaves every one unchanged.
func assertKept(t *testing.T, done []string, args ...string) {
	t.Helper()
	if code, stdout, stderr := run(t, append(args, "recover")...); code != ExitOK {
		t.Fatalf("recover: exit %d: %s%s", code, stdout, stderr)
	}
	code, stdout, stderr := run(t, append(args, "-o", "json", "stats")...)
	var st statsJSON
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || code != ExitOK || !st.Consistent {
		t.Fatalf("stats after recover: exit %d, %+v (%v): %s", code, st, err, stderr)
	}
	file := filepath.Join(t.TempDir(), "done.txt")
	if err := os.WriteFile(file, []byte(strings.Join(done, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run(t, append(args, "-o", "json", "--random-behavior", "0", "create", "--file", file)...)
	var rep core.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != ExitOK {
		t.Fatalf("create of the done ids: exit %d (%v): %s%s", code, err, stdout, stderr)
	}
	if rep.Unchanged != len(done) {
		t.Fatalf("create of the %d done ids: %+v, want every one unchanged: some were lost", len(done), rep)
	}
}
