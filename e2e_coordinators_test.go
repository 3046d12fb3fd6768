package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reliable-ops/rops/cli"
	hist "github.com/reliable-ops/rops/history"
	"github.com/reliable-ops/rops/journals/etcd/etcdtest"
	"github.com/reliable-ops/rops/nemesis"
)

var (
	coordinatorPID = regexp.MustCompile(`(?m)^check: coordinator (\d+): pid (\d+), processes from (\d+)`)
	coordinatorDir = regexp.MustCompile(`(?m)^check: --coordinators \d+: .*; their data in (\S+)$`)
)

// TestCheckCoordinatorsNemesis is issue 18 point 3's coordinator faults:
// rops check runs its workload in three coordinator processes on the same
// ids over a real etcd journal with a lease of 2 s, while its nemesis
// pauses one past its lease and kills another (rops recover settling what
// it left, and a new one taking up the rest of its share); the check
// passes, rops verify finds the merged history linearizable, each
// coordinator window is a nemesis line that outlasts the lease, the killed
// coordinator's operations in flight are pending with no return, the
// coordinator started again in its place has operations of its own, and
// no worker, server or directory is left.
//
// Seed 10's schedule kills first, early enough that the new coordinator
// has seconds left to run, then pauses another: the test checks it.
func TestCheckCoordinatorsNemesis(t *testing.T) {
	skipLong(t)
	const seed, duration = 10, 8 * time.Second
	fs := []nemesis.Fault{nemesis.PauseCoordinator, nemesis.KillCoordinator}
	cs := []string{"coordinator 1", "coordinator 2", "coordinator 3"}
	plan := nemesis.NewScheduleOf(seed, fs, map[nemesis.Fault][]string{fs[0]: cs, fs[1]: cs}, nemesis.BoundsFor(duration))
	kill, pause := plan.Next(), plan.Next()
	if kill.Fault != nemesis.KillCoordinator || pause.Fault != nemesis.PauseCoordinator || kill.Node == pause.Node || kill.Gap > time.Second {
		t.Fatalf("seed %d: %v, %v: choose a seed that kills one coordinator within a second, then pauses another", seed, kill, pause)
	}
	ec := etcdtest.Start(t, 1)
	journal := etcdJournal(ec.Endpoints()) // ttl=2s
	dir := t.TempDir()
	report := filepath.Join(dir, "report")
	path := filepath.Join(report, "history.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := ropsCmd(t, ctx, "--data", dir, "--seed", strconv.Itoa(seed), "--journal", journal, "check", "--spawn", "3",
		"--coordinators", "3", "--nemesis", "pause-coordinator,kill-coordinator", "--duration", duration.String(), "--report", report)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("rops check took %v:\n%s%s", time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("rops check: %v", err)
	}
	parseSpawned(t, stderr.String()).gone(t)
	workers := coordinatorsGone(t, stderr.String(), 3, false)

	ops := verifiedHistory(t, path)
	// Which coordinator each worker process was, by its first process.
	base := map[int]string{}
	for _, m := range workers {
		b, _ := strconv.Atoi(m[3])
		base[b] = m[1]
	}
	byCoordinator := map[string]int{}
	byBase := map[int]int{}
	noReturn := map[string]int{} // operations of a worker process left with no return
	for _, op := range ops {
		if op.Kind == hist.Nemesis || op.Process < 10000 {
			continue
		}
		k, ok := base[op.Process/10000*10000]
		if !ok {
			t.Fatalf("%v: of no worker process started", op)
		}
		byCoordinator[k]++
		byBase[op.Process/10000*10000]++
		if op.Return == hist.NoReturn {
			noReturn[strconv.Itoa(op.Process/10000*10000)]++
		}
	}
	for _, k := range []string{"1", "2", "3"} {
		if byCoordinator[k] == 0 {
			t.Errorf("no operation of coordinator %s in the history", k)
		}
	}
	killed := false
	var windows []hist.Op
	for _, op := range ops {
		if op.Kind != hist.Nemesis {
			continue
		}
		windows = append(windows, op)
		if !strings.HasPrefix(op.Target, "coordinator ") {
			t.Errorf("%v: not on a coordinator", op)
		}
		if op.What == "kill-coordinator" {
			killed = true
		}
	}
	seen := map[string]bool{}
	for i, w := range windows {
		seen[w.What] = true
		if i < len(windows)-1 && w.Return-w.Call < 2*time.Second {
			t.Errorf("%v: shorter than the lease, 2s", w)
		}
	}
	for _, what := range []string{"pause-coordinator", "kill-coordinator"} {
		if !seen[what] {
			t.Errorf("no %s window in the history: %v", what, windows)
		}
	}
	if killed && len(noReturn) == 0 {
		t.Errorf("a coordinator was killed, and no operation of a worker is left with no return")
	}
	restarted := false
	for _, m := range workers[3:] {
		b, _ := strconv.Atoi(m[3])
		if "coordinator "+m[1] == kill.Node && byBase[b] > 0 {
			restarted = true
		}
	}
	if !restarted {
		t.Errorf("no operation of a new %s after the kill", kill.Node)
	}
	t.Logf("%d lines; operations by coordinator %v; with no return, by worker process %v; windows %v", len(ops), byCoordinator, noReturn, windows)
}

// TestCheckCoordinatorsFlags checks --coordinators' mistakes: usage errors
// (exit 2) that say what is needed, before anything runs.
func TestCheckCoordinatorsFlags(t *testing.T) {
	const j = "etcd://127.0.0.1:1/rops"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "--nemesis", "pause-coordinator"}, "--nemesis pause-coordinator needs --coordinators N and --journal etcd://HOST:PORT/PREFIX?ttl=2s"},
		{[]string{"check", "--spawn", "3", "--nemesis", "kill,kill-coordinator"}, "--nemesis kill-coordinator needs --coordinators N"},
		{[]string{"check", "--spawn", "3", "--coordinators", "3"}, "--coordinators 3 needs --journal etcd://HOST:PORT/PREFIX"},
		{[]string{"--journal", j, "check", "--coordinators", "2"}, "--coordinators 2 needs nodes the processes share: --spawn N"},
		{[]string{"--journal", j, "check", "--spawn", "3", "--coordinators", "2", "--nemesis", "pause-coordinator"}, "the journal's is 10s: give a short one in --journal, such as ?ttl=2s"},
		{[]string{"--journal", j + "?ttl=6s", "check", "--spawn", "3", "--coordinators", "2", "--nemesis", "kill-coordinator"}, "the journal's is 6s"},
		{[]string{"--journal", j, "check", "--spawn", "3", "--coordinators", "40"}, "--coordinators 40 is out of range"},
		{[]string{"--journal", j, "check", "--spawn", "3", "--coordinators", "2", "--chaos", "0.1"}, "--coordinators 2 and --chaos"},
		{[]string{"check", "--worker", "1"}, "--worker is check's own"},
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

// TestCheckCoordinatorsInterrupted stops rops check --coordinators with
// SIGINT, as Ctrl-C does, in the middle of its nemesis's first window, a
// kill: it exits leaving no worker or server running and no directory.
func TestCheckCoordinatorsInterrupted(t *testing.T) {
	skipLong(t)
	ec := etcdtest.Start(t, 1)
	stderr := interruptAtFirstWindow(t, "--data", t.TempDir(), "--seed", "10", "--journal", etcdJournal(ec.Endpoints()), "check", "--spawn", "3",
		"--coordinators", "3", "--nemesis", "kill-coordinator", "--duration", "1m")
	parseSpawned(t, stderr).gone(t)
	coordinatorsGone(t, stderr, 3, true)
}

// coordinatorsGone checks, from what rops check --coordinators wrote to
// stderr, that it started want coordinator processes (at least want, if
// not exact), none of which is still running, and removed their directory.
// It returns the lines that named the processes, as coordinatorPID
// matches them.
func coordinatorsGone(t *testing.T, stderr string, want int, exact bool) [][]string {
	t.Helper()
	workers := coordinatorPID.FindAllStringSubmatch(stderr, -1)
	if len(workers) < want || exact && len(workers) != want {
		t.Fatalf("%d coordinator processes started, want %d", len(workers), want)
	}
	for _, m := range workers {
		pid, _ := strconv.Atoi(m[2])
		if err := syscall.Kill(pid, 0); err == nil && !zombie(pid) {
			t.Errorf("coordinator %s (pid %d) is still running", m[1], pid)
		}
	}
	if m := coordinatorDir.FindStringSubmatch(stderr); m == nil {
		t.Errorf("no directory of the coordinators named")
	} else if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is left behind (%v)", m[1], err)
	}
	return workers
}
