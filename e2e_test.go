package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
	hist "github.com/reliable-ops/rops/history"
)

// e2eTimeout bounds every process an end-to-end test starts.
const e2eTimeout = 3 * time.Minute

var (
	buildOnce sync.Once
	ropsBin   string
	buildErr  error
)

// binary builds rops once for all end-to-end tests.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// Under the run's own temporary root, which isolatedM removes at
		// the end: a race-built binary is tens of MB.
		dir := filepath.Join(testRoot, "bin")
		if err := os.Mkdir(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		ropsBin = filepath.Join(dir, "rops")
		out, err := exec.Command("go", "build", "-race", "-o", ropsBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ropsBin
}

// ropsCmd returns a command that runs the rops binary with args in the
// isolated environment (see isolate): whatever it would write to the
// user's home, data or config directories lands in empty directories that
// TestMain checks stay empty.
func ropsCmd(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = isolated.env()
	return cmd
}

// server is a running `rops serve` process.
type server struct {
	cmd      *exec.Cmd
	addr     string
	requests *counter // access log lines: requests answered
}

// counter counts events and tells waiters when a count is reached, so a
// test can act at a point of a job without sleeping.
type counter struct {
	mu      sync.Mutex
	n       int
	waiters map[int][]chan struct{}
}

func newCounter() *counter { return &counter{waiters: map[int][]chan struct{}{}} }

func (c *counter) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	for _, ch := range c.waiters[c.n] {
		close(ch)
	}
	delete(c.waiters, c.n)
}

// addN counts n events.
func (c *counter) addN(n int) {
	for range n {
		c.add()
	}
}

// batchItems returns the items an access log line stands for: those of a
// batch (items=N), else 1.
func batchItems(line string) int {
	_, v, ok := strings.Cut(line, " items=")
	if !ok {
		return 1
	}
	v, _, _ = strings.Cut(v, " ")
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return n
	}
	return 1
}

// after returns a channel closed once k more events have happened.
func (c *counter) after(k int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.waiters[c.n+k] = append(c.waiters[c.n+k], ch)
	return ch
}

// startServer starts `rops serve` on a free 127.0.0.1 port (or addr) and
// waits until it listens. Its requests are counted on requests (nil: a
// counter of its own).
func startServer(t *testing.T, addr string, requests *counter, args ...string) *server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	cmd := ropsCmd(t, ctx, append([]string{"serve", "--addr", addr}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if requests == nil {
		requests = newCounter()
	}
	s := &server{cmd: cmd, requests: requests}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if _, a, ok := strings.Cut(sc.Text(), "msg=listening url="); ok {
			a = strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://")
			s.addr, _, _ = strings.Cut(a, " ")
			break
		}
	}
	if s.addr == "" {
		t.Fatalf("rops serve %v did not start", args)
	}
	go func() {
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, ` HTTP/1.1"`) { // an access log line
				// A batch's line stands for its items' requests.
				s.requests.addN(batchItems(line))
			}
		}
	}()
	return s
}

// kill ends the server with SIGKILL: no shutdown, no flush.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.cmd.Wait()
}

// writeConfig writes a config file with one target of the given specs.
func writeConfig(t *testing.T, name string, specs ...string) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{"targets": map[string]any{name: map[string]any{"nodes": specs}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "targets.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs rops to the end and returns its exit code and output; a usage
// error (exit 2) fails the test.
func run(t *testing.T, args ...string) (code int, stdout string) {
	t.Helper()
	code, stdout, stderr := runStderr(t, args...)
	if code == 2 {
		t.Fatalf("rops %s: usage error: %s", strings.Join(args, " "), stderr)
	}
	return code, stdout
}

// runStderr runs rops to the end and returns its exit code, output and
// error output.
func runStderr(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := ropsCmd(t, ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// verifiedHistory runs rops verify on the history at path, which must be
// linearizable, and returns its operations.
func verifiedHistory(t *testing.T, path string) []hist.Op {
	t.Helper()
	if code, out := run(t, "verify", path); code != 0 {
		t.Fatalf("rops verify exited %d:\n%s", code, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ops, err := hist.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

func runJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	_, out := run(t, append([]string{"-o", "json"}, args...)...)
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("rops %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

type statsOut struct {
	Consistent bool           `json:"consistent"`
	Nodes      map[string]int `json:"nodes"`
	Divergent  []struct {
		ID core.GroupID `json:"id"`
		On []string     `json:"on"`
	} `json:"divergent"`
	DivergentCount int `json:"divergent_count"`
}

// checkJob runs every command against a target and checks that every id
// completes and the nodes agree.
func checkJob(t *testing.T, target ...string) {
	t.Helper()
	rep := runJSON[core.Report](t, append(target, "create", "--range", "0-299")...)
	if rep.Done != 300 || rep.RolledBack+rep.Pending != 0 {
		t.Fatalf("create report = %+v, want 300 done", rep)
	}
	if st := runJSON[statsOut](t, append(target, "stats")...); !st.Consistent || st.Nodes["node01"] != 300 {
		t.Fatalf("stats after create = %+v, want consistent with 300 each", st)
	}
	one := runJSON[core.Report](t, append(target, "create-one", "x")...)
	if one.Done != 1 {
		t.Fatalf("create-one report = %+v, want done", one)
	}
	one = runJSON[core.Report](t, append(target, "delete-one", "x")...)
	if one.Done != 1 {
		t.Fatalf("delete-one report = %+v, want done", one)
	}
	if code, out := run(t, append(target, "ping")...); code != 0 || strings.Count(out, " ok (") != 3 {
		t.Fatalf("ping exited %d:\n%s", code, out)
	}
	if code, out := run(t, append(target, "repair")...); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Fatalf("repair exited %d:\n%s", code, out)
	}
	if code, out := run(t, append(target, "recover")...); code != 0 || !strings.Contains(out, "nothing to recover") {
		t.Fatalf("recover exited %d:\n%s", code, out)
	}
	rep = runJSON[core.Report](t, append(target, "delete", "--range", "0-299")...)
	if rep.Done != 300 || rep.RolledBack+rep.Pending != 0 {
		t.Fatalf("delete report = %+v, want 300 done", rep)
	}
	if st := runJSON[statsOut](t, append(target, "stats")...); !st.Consistent || st.Nodes["node01"] != 0 {
		t.Fatalf("stats after delete = %+v, want consistent and empty", st)
	}
}

// TestRemoteTarget runs every command with --target remote against one
// `rops serve` process serving node01..03, under random errors and under
// lost acknowledgements.
func TestRemoteTarget(t *testing.T) {
	skipLong(t)
	for _, faults := range [][]string{
		{"--random-behavior", "0.2", "--seed", "21"},
		{"--random-behavior", "0", "--ambiguous-rate", "0.2", "--seed", "22"},
	} {
		t.Run(strings.Join(faults, " "), func(t *testing.T) {
			s := startServer(t, "", nil, append([]string{"--store", "memory"}, faults...)...)
			cfg := writeConfig(t, "remote", remoteSpecs(s.addr, s.addr, s.addr)...)
			checkJob(t, "--config", cfg, "--target", "remote", "--data", t.TempDir())
		})
	}
}

// TestRemoteBatches: against rops serve, a job sends its writes in
// batches by default, fewer round trips than requests, and --no-batches
// sends one request per round trip; both leave the nodes consistent.
func TestRemoteBatches(t *testing.T) {
	skipLong(t)
	s := startServer(t, "", nil, "--store", "memory", "--random-behavior", "0.2", "--batch-rate", "0.05", "--seed", "23")
	cfg := writeConfig(t, "remote", remoteSpecs(s.addr, s.addr, s.addr)...)
	type jobOut struct {
		core.Report
		RoundTrips int `json:"round_trips"`
	}
	for _, tc := range []struct {
		flag    string
		batched bool
	}{{"--batches", true}, {"--no-batches", false}} {
		target := []string{"--config", cfg, "--target", "remote", "--data", t.TempDir(), tc.flag}
		rep := runJSON[jobOut](t, append(target, "create", "--range", "0-499")...)
		if rep.Done != 500 {
			t.Fatalf("%s: create report = %+v, want 500 done", tc.flag, rep)
		}
		if tc.batched && rep.RoundTrips*2 > rep.Requests || !tc.batched && rep.RoundTrips != rep.Requests {
			t.Errorf("%s: %d requests in %d HTTP round trips, want batched=%v", tc.flag, rep.Requests, rep.RoundTrips, tc.batched)
		}
		if st := runJSON[statsOut](t, append(target, "stats")...); !st.Consistent || st.Nodes["node01"] != 500 {
			t.Fatalf("%s: stats after create = %+v, want consistent with 500 each", tc.flag, st)
		}
		if rep := runJSON[jobOut](t, append(target, "delete", "--range", "0-499")...); rep.Done != 500 {
			t.Fatalf("%s: delete report = %+v, want 500 done", tc.flag, rep)
		}
	}
}

// TestServerPerNode runs the job against three `rops serve` processes of
// one node each, named in a config file.
func TestServerPerNode(t *testing.T) {
	skipLong(t)
	var addrs []string
	for i, name := range []string{"node01", "node02", "node03"} {
		s := startServer(t, "", nil, "--nodes", name, "--store", "badger", "--data", t.TempDir(), "--random-behavior", "0.2", "--seed", fmt.Sprint(30+i))
		addrs = append(addrs, s.addr)
	}
	cfg := writeConfig(t, "lab", remoteSpecs(addrs...)...)
	checkJob(t, "--config", cfg, "--target", "lab", "--data", t.TempDir())
}

func remoteSpecs(addrs ...string) []string {
	var specs []string
	for i, a := range addrs {
		specs = append(specs, fmt.Sprintf("http://%s/v1?node=node%02d", a, i+1))
	}
	return specs
}

// TestNodeKilledMidJob kills a badger node server with SIGKILL in the
// middle of a bulk create and restarts it: every create the job reports
// done is on every node, and stats with the report account for every id.
func TestNodeKilledMidJob(t *testing.T) {
	skipLong(t)
	var servers []*server
	var addrs, dirs []string
	for i, name := range []string{"node01", "node02", "node03"} {
		dir := t.TempDir()
		s := startServer(t, "", nil, "--nodes", name, "--data", dir, "--random-behavior", "0.2", "--seed", fmt.Sprint(40+i))
		servers, addrs, dirs = append(servers, s), append(addrs, s.addr), append(dirs, dir)
	}
	target := []string{"--config", writeConfig(t, "lab", remoteSpecs(addrs...)...), "--target", "lab", "--data", t.TempDir()}

	// Start the job, kill node02 once it has answered 500 requests, and
	// restart it on the same port and data while the job goes on.
	const ids = 2000
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var out bytes.Buffer
	job := ropsCmd(t, ctx, append([]string{"-o", "json"}, append(target, "create", "--range", fmt.Sprintf("0-%d", ids-1))...)...)
	job.Stdout = &out
	killAt := servers[1].requests.after(500)
	if err := job.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- job.Wait() }()
	select {
	case <-killAt:
	case err := <-waited:
		t.Fatalf("the job ended (%v) before node02 answered 500 requests: make it longer", err)
	}
	servers[1].kill(t)
	startServer(t, addrs[1], nil, "--nodes", "node02", "--data", dirs[1], "--random-behavior", "0.2", "--seed", "99")
	if err := <-waited; err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 2 {
			t.Fatalf("job: %v", err)
		}
	}
	var rep core.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("job output: %v\n%s", err, out.String())
	}
	t.Logf("report: done %d, rolled back %d, pending %d", rep.Done, rep.RolledBack, rep.Pending)
	if got := rep.Done + rep.RolledBack + rep.Pending; got != ids {
		t.Fatalf("report accounts for %d ids, want %d: %+v", got, ids, rep)
	}
	// Every id is done (on every node), rolled back (on none) or pending
	// (listed, and the only ids that may be divergent).
	st := runJSON[statsOut](t, append(target, "stats")...)
	pending := rep.PendingIDs
	for _, d := range st.Divergent {
		if !slices.Contains(pending, d.ID) {
			t.Errorf("id %s is on %v only, but the job did not report it pending", d.ID, d.On)
		}
	}
	for node, n := range st.Nodes {
		if n < rep.Done || n > rep.Done+rep.Pending {
			t.Errorf("%s holds %d records, want between %d (done) and %d (done + pending)", node, n, rep.Done, rep.Done+rep.Pending)
		}
	}
	for _, id := range rep.RolledBackIDs {
		for _, d := range st.Divergent {
			if d.ID == id {
				t.Errorf("rolled back id %s is still on %v", id, d.On)
			}
		}
	}
}

// TestServeShutdown sends SIGTERM to `rops serve` while a request is in
// flight: the request is answered, the process exits 0, and the badger store
// was closed cleanly (another process can open it and finds the record).
func TestServeShutdown(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "", nil, "--nodes", "node01", "--data", dir, "--random-behavior", "0", "--latency", "300ms")
	req, err := http.NewRequest("POST", "http://"+s.addr+"/v1/group", strings.NewReader(`{"groupId": "inflight"}`))
	if err != nil {
		t.Fatal(err)
	}
	// The server says 100 Continue when the handler starts reading the
	// body: from then on the request is in flight.
	req.Header.Set("Expect", "100-continue")
	handling := make(chan struct{})
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { close(handling) },
	}))
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: e2eTimeout}}
	defer client.CloseIdleConnections()
	answered := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				err = fmt.Errorf("status %d, want %d", resp.StatusCode, http.StatusCreated)
			}
		}
		answered <- err
	}()
	<-handling
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("in-flight create: %v", err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("rops serve after SIGTERM: %v", err)
	}
	st, err := badger.Open(filepath.Join(dir, "serve", "node01"))
	if err != nil {
		t.Fatalf("store not released: %v", err)
	}
	defer st.Close()
	if _, err := st.Get(context.Background(), "inflight"); err != nil {
		t.Fatalf("the in-flight create is not in the store: %v", err)
	}
}

// skipLong skips a long end-to-end test in the quick loop (go test -short);
// the full run, as CI runs it, runs it.
func skipLong(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a long end-to-end test: run without -short")
	}
}
