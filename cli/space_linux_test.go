//go:build linux

package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperRops is not a test: the disk tests run rops in a process of its
// own through it, as a full disk may crash the process.
func TestHelperRops(t *testing.T) {
	args, ok := os.LookupEnv("ROPS_TEST_HELPER_ARGS")
	if !ok {
		t.Skip("runs rops for the disk tests")
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		t.Fatal(err)
	}
	os.Exit(Main(argv, os.Stdin, os.Stdout, os.Stderr))
}

// ropsProcess runs rops with args in a process of its own and returns its
// exit code, standard output and standard error.
func ropsProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	argv, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRops$")
	cmd.Env = append(os.Environ(), "ROPS_TEST_HELPER_ARGS="+string(argv))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("rops %s: %v", strings.Join(args, " "), time.Since(start))
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory until the test
// ends, or skips the test where mounting is not permitted.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (%v): run the test as root, or where mounting is permitted, to test a full disk", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// resizeTmpfs gives the tmpfs on dir size bytes.
func resizeTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("remount %s: %v", dir, err)
	}
}

// fill writes a file that takes all the free space of dir's file system
// but keep bytes, and returns its name.
func fill(t *testing.T, dir string, keep uint64) string {
	t.Helper()
	free, err := diskFree(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if free > keep {
		// Written, not truncated: a tmpfs allocates only what is written.
		buf := make([]byte, 1<<20)
		for left := free - keep; left > 0; {
			n := min(left, uint64(len(buf)))
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
			left -= n
		}
	}
	return name
}

// checkNoCrash fails t if stderr holds a Go crash: a fatal error or a
// goroutine trace.
func checkNoCrash(t *testing.T, what, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "fatal error") || strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "SIGBUS") {
		t.Fatalf("%s crashed:\n%.2000s", what, stderr)
	}
}

// TestDiskFull runs rops on a real full disk, a small tmpfs: a job too big
// for it exits ExitNoSpace with a message instead of crashing with SIGBUS;
// one that fills it on the way stops, loses nothing and recovers once there
// is room; stats on a disk full to the last byte says so.
func TestDiskFull(t *testing.T) {
	t.Parallel() // runs rops in processes of its own
	t.Run("too small to start", func(t *testing.T) {
		dir := mountTmpfs(t, 2<<20)
		data := filepath.Join(dir, "data")
		code, _, stderr := ropsProcess(t, "--data", data, "--random-behavior", "0", "create", "--range", "0-19999")
		checkNoCrash(t, "create", stderr)
		if got, want := code, ExitNoSpace; got != want {
			t.Fatalf("create: exit %d, want %d: %s", got, want, stderr)
		}
		if want := "rops: no space left on " + data + ": 2.0 MiB free"; !strings.Contains(stderr, want) {
			t.Fatalf("stderr=%q, want %q", stderr, want)
		}
		// The create made nothing, and stats, which reads, makes no
		// cluster either.
		code, stdout, stderr := ropsProcess(t, "--data", data, "stats")
		checkNoCrash(t, "stats", stderr)
		if code != ExitUsage || !strings.Contains(stderr, "no cluster at "+data) {
			t.Fatalf("stats: exit %d, want %d and no cluster: %s%s", code, ExitUsage, stdout, stderr)
		}
	})
	t.Run("fills during a job", func(t *testing.T) {
		// Room for the journal's file (4 MiB) and some thousand ids
		// above the margin.
		dir := mountTmpfs(t, MinFree+9<<19)
		data := filepath.Join(dir, "data")
		code, stdout, stderr := ropsProcess(t, "--data", data, "--random-behavior", "0", "-v", "create", "--range", "0-999999")
		checkNoCrash(t, "create", stderr)
		if got, want := code, ExitNoSpace; got != want {
			t.Fatalf("create: exit %d, want %d: %.2000s", got, want, stderr)
		}
		if want := "rops: no space left on " + data; !strings.Contains(stderr, want) {
			t.Fatalf("stderr ends %q, want %q", stderr[max(0, len(stderr)-400):], want)
		}
		done := doneIDs(stderr)
		t.Logf("%s; %d done", strings.SplitN(stdout, "\n", 2)[0], len(done))
		if len(done) == 0 {
			t.Fatalf("no id done: %s", stderr)
		}
		resizeTmpfs(t, dir, 1<<30)
		start := time.Now()
		assertKept(t, done, "--data", data)
		t.Logf("checked in %v", time.Since(start))

		// Full to the last byte: stats cannot open the stores, and
		// says why.
		fill(t, dir, 0)
		code, stdout, stderr = ropsProcess(t, "--data", data, "stats")
		checkNoCrash(t, "stats", stderr)
		if got, want := code, ExitNoSpace; got != want {
			t.Fatalf("stats on a full disk: exit %d, want %d: %s%s", got, want, stdout, stderr)
		}
		if want := "rops: no space left on " + data; !strings.Contains(stderr, want) {
			t.Fatalf("stderr=%q, want %q", stderr, want)
		}
	})
}
