package nemesis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reliable-ops/rops/decorators/faults"
)

var (
	buildOnce sync.Once
	ropsBin   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds rops once for the tests that start rops serve processes,
// and skips them under -short.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts rops serve processes: run without -short")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "rops-nemesis-test-"); buildErr != nil {
			return
		}
		ropsBin = filepath.Join(binDir, "rops")
		args := []string{"build", "-o", ropsBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/reliable-ops/rops")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ropsBin
}

// spawn starts a cluster of n nodes with no random faults, closed at the
// end of the test, in a directory not made yet, as a --data named for the
// first time.
func spawn(t *testing.T, n int) *Cluster {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	c, err := Spawn(t.Context(), SpawnOptions{Bin: binary(t), Nodes: n, Dir: dir, Args: func(node string) []string {
		return []string{"--random-behavior", "0", "--seed", "5"}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// call sends one request to p's node and returns the status, or the error
// if there was no answer within d.
func call(t *testing.T, p *Proc, method, path, body string, d time.Duration) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("node", p.Name())
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// alive reports whether a process of pid exists (a zombie counts: it is
// not reaped).
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestSpawnKillPauseAdmin starts three rops serve processes and strikes
// them as a nemesis does: a killed node refuses connections, then, once
// restarted on its address, answers with the record it held; a paused node
// does not answer within a deadline, then does once resumed; a fault
// patched through the admin API shows in GET /admin/faults and in the
// node's answers, and is put back; and Close leaves no process and no
// directory.
func TestSpawnKillPauseAdmin(t *testing.T) {
	c := spawn(t, 3)
	procs := c.Procs()
	if got, want := len(procs), 3; got != want {
		t.Fatalf("%d processes, want %d", got, want)
	}
	specs := c.Specs()
	for i, p := range procs {
		if got, want := p.Name(), fmt.Sprintf("node%02d", i+1); got != want {
			t.Fatalf("process %d serves %s, want %s", i, got, want)
		}
		if got, want := specs[i], "http://"+p.Addr()+"/v1?node="+p.Name(); got != want {
			t.Fatalf("spec %q, want %q", got, want)
		}
		if slices.Index(specs, specs[i]) != i || strings.HasSuffix(p.Addr(), ":0") {
			t.Fatalf("specs %v: one address each, want", specs)
		}
	}

	// Kill: refused, then back with its data.
	n2 := procs[1]
	if code, err := call(t, n2, "POST", "/group", `{"groupId": "k1"}`, 5*time.Second); err != nil || code != 201 {
		t.Fatalf("create k1 on node02: %d %v", code, err)
	}
	addr, pid := n2.Addr(), n2.PID()
	if err := n2.Kill(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("node02 (pid %d) still alive after Kill", pid)
	}
	if n2.PID() != 0 {
		t.Fatalf("PID() = %d after Kill, want 0", n2.PID())
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial killed node02 at %s: %v, want connection refused", addr, err)
	}
	if err := n2.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := n2.Addr(); got != addr {
		t.Fatalf("restarted on %s, want %s", got, addr)
	}
	if code, err := call(t, n2, "GET", "/group/k1", "", 5*time.Second); err != nil || code != 200 {
		t.Fatalf("get k1 on restarted node02: %d %v, want 200", code, err)
	}

	// Pause: no answer, then one.
	n1 := procs[0]
	if err := n1.Pause(); err != nil {
		t.Fatal(err)
	}
	if code, err := call(t, n1, "GET", "/ping", "", 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping paused node01: %d %v, want no answer", code, err)
	}
	if err := n1.Resume(); err != nil {
		t.Fatal(err)
	}
	if code, err := call(t, n1, "GET", "/ping", "", 5*time.Second); err != nil || code != 200 {
		t.Fatalf("ping resumed node01: %d %v", code, err)
	}

	// Admin: down shows, and is put back.
	n3 := procs[2]
	sw := &Admin{URL: n3.URL(), Node: n3.Name(), HTTP: &http.Client{Timeout: 5 * time.Second}}
	if err := sw.Patch(t.Context(), map[string]any{"down": true, "late_rate": 0.5}); err != nil {
		t.Fatal(err)
	}
	f, err := sw.Faults(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (faults.Faults{Down: true, LateRate: 0.5, LateDelay: faults.Duration(3 * time.Second)}); f != want {
		t.Fatalf("GET /admin/faults: %+v, want %+v", f, want)
	}
	if code, err := call(t, n3, "GET", "/group/x", "", 5*time.Second); err != nil || code != 503 {
		t.Fatalf("get on node03 down: %d %v, want 503", code, err)
	}
	if err := sw.Patch(t.Context(), map[string]any{"down": false, "late_rate": 0}); err != nil {
		t.Fatal(err)
	}
	if code, err := call(t, n3, "GET", "/group/x", "", 5*time.Second); err != nil || code != 404 {
		t.Fatalf("get on node03 back up: %d %v, want 404", code, err)
	}

	// Close: nothing left, a paused node too.
	if err := n3.Pause(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.PID())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i, pid := range pids {
		if alive(pid) {
			t.Errorf("node%02d (pid %d) left running after Close", i+1, pid)
		}
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after Close: %v", c.Dir, err)
	}
}

// TestSpawnFails starts servers that cannot start: Spawn says why, with
// the server's own words, and leaves no process or directory behind.
func TestSpawnFails(t *testing.T) {
	dir := t.TempDir()
	_, err := Spawn(t.Context(), SpawnOptions{Bin: binary(t), Nodes: 2, Dir: dir, Args: func(node string) []string {
		if node == "node02" {
			return []string{"--random-behavior", "7"}
		}
		return nil
	}})
	if err == nil || !strings.Contains(err.Error(), "node02") || !strings.Contains(err.Error(), "--random-behavior 7") {
		t.Fatalf("Spawn: %v, want node02's failure in its words", err)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("left %v in %s", left, dir)
	}
}

// TestNemesisOverSpawned runs a nemesis of every fault over three rops
// serve processes, with short windows, for a few seconds: every window is
// recorded, in order and apart, and once it stops every node answers and
// has the faults it started with.
func TestNemesisOverSpawned(t *testing.T) {
	c := spawn(t, 3)
	hc := &http.Client{Timeout: 5 * time.Second}
	var nodes []Node
	var switches []*Admin
	for _, p := range c.Procs() {
		sw := &Admin{URL: p.URL(), Node: p.Name(), HTTP: hc}
		switches = append(switches, sw)
		nodes = append(nodes, Node{Name: p.Name(), Process: p, Switch: sw})
	}
	before := make([]faults.Faults, len(switches))
	for i, sw := range switches {
		var err error
		if before[i], err = sw.Faults(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var log strings.Builder
	var mu sync.Mutex
	n, err := Start(t.Context(), Config{Seed: 3, Faults: NodeFaults, Nodes: nodes,
		Bounds: Bounds{MinWindow: 150 * time.Millisecond, MaxWindow: 300 * time.Millisecond, MinGap: 50 * time.Millisecond, MaxGap: 100 * time.Millisecond},
		Log:    syncWriter{&mu, &log}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // a round of six windows takes 2.4 s at most, and the restarts
	ws, err := n.Stop()
	if err != nil {
		t.Fatalf("Stop: %v\n%s", err, log.String())
	}
	seen := map[Fault]bool{}
	for i, w := range ws {
		seen[w.Fault] = true
		if w.End <= w.Start || i > 0 && w.Start < ws[i-1].End {
			t.Errorf("window %v overlaps or ends before it starts", w)
		}
	}
	if len(seen) != len(NodeFaults) {
		t.Errorf("windows %v: not every fault struck\n%s", ws, log.String())
	}
	for i, p := range c.Procs() {
		if code, err := call(t, p, "GET", "/ping", "", 5*time.Second); err != nil || code != 200 {
			t.Errorf("%s after the nemesis: %d %v", p.Name(), code, err)
		}
		if f, err := switches[i].Faults(t.Context()); err != nil || f != before[i] {
			t.Errorf("%s's faults after the nemesis: %+v %v, want %+v", p.Name(), f, err, before[i])
		}
	}
	if !strings.Contains(log.String(), "nemesis: seed 3: window 1: ") {
		t.Errorf("log does not show the windows:\n%s", log.String())
	}
	t.Logf("%d windows:\n%s", len(ws), log.String())
}

type syncWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
