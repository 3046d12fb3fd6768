package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reliable-ops/rops/cli"
	hist "github.com/reliable-ops/rops/history"
	"github.com/reliable-ops/rops/nemesis"
)

// spawned is what rops check --spawn says on stderr of the servers it
// started: their process ids and their directory.
type spawned struct {
	pids []int
	dir  string
}

var (
	spawnedPID = regexp.MustCompile(`\(pid (\d+)\)`)
	spawnedDir = regexp.MustCompile(`; data in (\S+)$`)
)

// parseSpawned reads the line of rops check --spawn that names its
// servers.
func parseSpawned(t *testing.T, stderr string) spawned {
	t.Helper()
	for line := range strings.Lines(stderr) {
		line = strings.TrimRight(line, "\n")
		if !strings.HasPrefix(line, "check: --spawn ") {
			continue
		}
		var s spawned
		for _, m := range spawnedPID.FindAllStringSubmatch(line, -1) {
			pid, _ := strconv.Atoi(m[1])
			s.pids = append(s.pids, pid)
		}
		if m := spawnedDir.FindStringSubmatch(line); m != nil {
			s.dir = m[1]
		}
		return s
	}
	t.Fatalf("rops check --spawn did not say what it started:\n%s", stderr)
	return spawned{}
}

// gone fails t if a server of s still runs or its directory is left.
func (s spawned) gone(t *testing.T) {
	t.Helper()
	for _, pid := range s.pids {
		// A zombie is not reaped yet by whoever adopted it: it is dead.
		if err := syscall.Kill(pid, 0); err == nil && !zombie(pid) {
			t.Errorf("rops serve (pid %d) is still running", pid)
		}
	}
	if s.dir == "" {
		t.Errorf("no directory named")
	} else if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is left behind (%v)", s.dir, err)
	}
}

// zombie reports whether pid is a process that has exited and not been
// reaped (Linux; false elsewhere).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces, not ')'s of rops.
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

// TestCheckSpawnNemesis is the short nemesis check that CI runs (issue
// 18): rops check starts three rops serve processes of its own, kills,
// pauses and switches late and reset faults on them one window at a time
// while it runs, and passes, writing its report; rops verify, porcupine's
// judge, finds the report's history linearizable; the history holds a
// nemesis line for every window printed, every fault among them, and the
// report's summary lists each; and no server or directory is left.
//
// It runs for a --duration, not --ops, so that the windows (scaled to the
// run, an eighth of it at most) are sure to strike every fault: for the
// seed, the test checks that the first round of four windows starts well
// within the run.
func TestCheckSpawnNemesis(t *testing.T) {
	skipLong(t)
	const seed, duration = 18, 6 * time.Second
	faults := []nemesis.Fault{nemesis.Kill, nemesis.Pause, nemesis.Late, nemesis.Reset}
	plan := nemesis.NewSchedule(seed, faults, []string{"node01", "node02", "node03"}, nemesis.BoundsFor(duration))
	var fourth time.Duration
	for i := range faults {
		p := plan.Next()
		fourth += p.Gap
		if i < len(faults)-1 {
			fourth += p.Length
		}
	}
	if fourth > duration*3/4 {
		t.Fatalf("seed %d: the fourth window starts at %v of a run of %v: choose a seed whose first round is shorter", seed, fourth, duration)
	}

	dir := t.TempDir()
	report := filepath.Join(dir, "report")
	path := filepath.Join(report, "history.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := ropsCmd(t, ctx, "--data", dir, "--seed", strconv.Itoa(seed), "check", "--spawn", "3",
		"--nemesis", "kill,pause,late,reset", "--duration", duration.String(), "--report", report)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("rops check took %v:\n%s%s", time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("rops check: %v", err)
	}
	if !strings.Contains(stdout.String(), "operations on spawn (seed 18)") {
		t.Errorf("the check did not run on the spawned nodes")
	}
	parseSpawned(t, stderr.String()).gone(t)

	ops := verifiedHistory(t, path)
	var windows []hist.Op
	for _, op := range ops {
		if op.Kind == hist.Nemesis && op.What != "chaos" {
			windows = append(windows, op)
		}
	}
	printed := regexp.MustCompile(`(?m)^nemesis: seed 18: window \d+: (\w+) (node0[1-3]) from `).FindAllStringSubmatch(stderr.String(), -1)
	if got, want := len(windows), len(printed); got != want || got == 0 {
		t.Fatalf("the history has %d nemesis lines, the check printed %d windows", got, want)
	}
	for i, w := range windows {
		if w.What != printed[i][1] || w.Target != printed[i][2] {
			t.Errorf("nemesis line %d is %s %s, the check printed %s %s", i+1, w.What, w.Target, printed[i][1], printed[i][2])
		}
		if w.Return == hist.NoReturn || w.Return <= w.Call || i > 0 && w.Call < windows[i-1].Return {
			t.Errorf("window %v: not one after the other, or no end", w)
		}
	}
	for _, f := range faults {
		if !slices.ContainsFunc(windows, func(w hist.Op) bool { return w.What == string(f) }) {
			t.Errorf("no %s window in the history", f)
		}
	}
	data, err := os.ReadFile(filepath.Join(report, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var summary struct {
		Windows []struct {
			What string `json:"what"`
		} `json:"windows"`
	}
	if err := json.Unmarshal(data, &summary); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if got, want := len(summary.Windows), len(windows); got != want {
		t.Errorf("summary.json has %d windows, the history %d", got, want)
	}
}

// TestCheckSpawnInterrupted stops rops check --spawn with SIGINT, as
// Ctrl-C does, in the middle of its nemesis's first window, a pause: it
// heals the window, exits, and leaves no server running and no directory
// (the directory shows that it stopped them itself: on Linux, the kernel
// kills a server whose rops died anyway).
func TestCheckSpawnInterrupted(t *testing.T) {
	skipLong(t)
	stderr := interruptAtFirstWindow(t, "--data", t.TempDir(), "--seed", "2", "check", "--spawn", "3", "--nemesis", "pause", "--duration", "1m")
	parseSpawned(t, stderr).gone(t)
}

// interruptAtFirstWindow runs rops with args, a check with a nemesis, and
// sends it SIGINT, as Ctrl-C does, once its first window struck (and has
// not yet healed). It returns what rops wrote to stderr once it exited.
func interruptAtFirstWindow(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := ropsCmd(t, ctx, args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "window 1: ") {
			break // struck, not yet healed
		}
	}
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	t.Logf("rops check exited %v, %v after SIGINT:\n%s", err, time.Since(start).Round(time.Millisecond), stderr.String())
	return stderr.String()
}

// TestCheckNemesisFlags checks the flags' mistakes: usage errors (exit 2)
// that say what to do, before anything runs.
func TestCheckNemesisFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "--nemesis", "kill,late"}, "--nemesis kill needs --spawn N: rops kills and pauses only the rops serve processes it starts itself"},
		{[]string{"check", "--nemesis", "late,partition"}, `unknown fault "partition": the faults are kill, pause, down, late, reset, gateway, batch`},
		{[]string{"--target", "remote", "check", "--spawn", "3"}, `--spawn 3 starts the nodes the check runs on: leave out --target (it is "remote")`},
		{[]string{"check", "--spawn", "3", "--down", "node04"}, "--down node04: --spawn 3 starts nodes node01 to node03"},
		{[]string{"check", "--nemesis", "late", "--nemesis-rate", "1.5"}, "--nemesis-rate 1.5 is out of range"},
		{[]string{"check", "--nemesis", "down,reset", "--chaos", "0.1"}, "--nemesis down and --chaos both switch the nodes' faults: give one of them"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := cli.Run(t.Context(), append([]string{"--data", dir}, tc.args...), cli.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
			if code != cli.ExitUsage || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), cli.ExitUsage, tc.want)
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("wrote %v", left)
			}
		})
	}
}
