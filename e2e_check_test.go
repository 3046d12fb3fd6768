package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
)

// checkOut is what `rops -o json check` prints.
type checkOut struct {
	Target     string         `json:"target"`
	Seed       uint64         `json:"seed"`
	Ops        int            `json:"ops"`
	Done       int            `json:"done"`
	Unchanged  int            `json:"unchanged"`
	RolledBack int            `json:"rolled_back"`
	Pending    int            `json:"pending"`
	Lost       []core.GroupID `json:"lost"`
	Unexpected []core.GroupID `json:"unexpected"`
	Divergent  []core.GroupID `json:"divergent"`
	RequestsOp float64        `json:"requests_per_op"`
	TripsOp    float64        `json:"round_trips_per_op"`
	Seconds    float64        `json:"seconds"`
	Chaos      string         `json:"chaos"`
	OK         bool           `json:"ok"`
}

// clean reports whether the check found nothing lost, unexpected or
// divergent.
func (c checkOut) clean() bool {
	return c.Lost != nil && len(c.Lost)+len(c.Unexpected)+len(c.Divergent) == 0
}

func (c checkOut) String() string {
	return fmt.Sprintf("%d ops: done %d, unchanged %d, rolled back %d, pending %d, lost %v, unexpected %v, divergent %v, %.2f requests/op, %.2f HTTP round trips/op, %.2fs",
		c.Ops, c.Done, c.Unchanged, c.RolledBack, c.Pending, c.Lost, c.Unexpected, c.Divergent, c.RequestsOp, c.TripsOp, c.Seconds)
}

// decodeCheck decodes check's JSON output.
func decodeCheck(t *testing.T, out string) checkOut {
	t.Helper()
	var c checkOut
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("check output: %v\n%s", err, out)
	}
	return c
}

// runCheck runs `rops -o json ARGS... check CHECKARGS...` and wants exit 0
// and nothing lost, unexpected or divergent.
func runCheck(t *testing.T, args ...string) checkOut {
	t.Helper()
	code, out := run(t, append([]string{"-o", "json"}, args...)...)
	c := decodeCheck(t, out)
	if code != 0 || !c.OK || !c.clean() {
		t.Fatalf("rops %s exited %d: %v", strings.Join(args, " "), code, c)
	}
	return c
}

// everyFault is every fault `rops serve` has, the new ones at small rates.
var everyFault = []string{
	"--random-behavior", "0.2", "--ambiguous-rate", "0.05",
	"--late-rate", "0.02", "--late-delay", "3s",
	"--reset-rate", "0.05", "--duplicate-rate", "0.05", "--gateway-rate", "0.05",
	"--batch-rate", "0.05",
}

// TestCheckAgainstServeWithEveryFault runs rops check against one badger
// `rops serve` with every fault on: requests applied late, connections
// reset after the write, writes applied twice, a proxy's 502/503/504, on top
// of the original's 500s and 408s and lost acknowledgements. Nothing is lost,
// unexpected or divergent. Then, against a server with only the original's
// faults, check --chaos switches the new faults on through the admin API on
// all three nodes and puts the old ones back.
func TestCheckAgainstServeWithEveryFault(t *testing.T) {
	skipLong(t)
	t.Run("every fault", func(t *testing.T) {
		s := startServer(t, "", nil, append([]string{"--store", "badger", "--data", t.TempDir(), "--admin", "--seed", "71"}, everyFault...)...)
		cfg := writeConfig(t, "lab", remoteSpecs(s.addr, s.addr, s.addr)...)
		c := runCheck(t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "--seed", "72", "check", "--ops", "300")
		t.Logf("check: %v", c)
		if got, want := c.Ops, 300; got != want {
			t.Fatalf("ops=%d, want %d", got, want)
		}
		if st := runJSON[statsOut](t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "stats"); !st.Consistent || st.Nodes["node01"] != 0 {
			t.Fatalf("after check: stats = %+v, want consistent and empty", st)
		}
	})
	t.Run("chaos through the admin API", func(t *testing.T) {
		s := startServer(t, "", nil, "--store", "badger", "--data", t.TempDir(), "--admin", "--seed", "73", "--random-behavior", "0.2")
		cfg := writeConfig(t, "lab", remoteSpecs(s.addr, s.addr, s.addr)...)
		c := runCheck(t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "--seed", "74", "check", "--ops", "200", "--chaos", "0.05")
		t.Logf("check: %v; chaos: %s", c, c.Chaos)
		if want := "at 0.05 on 3 of 3 nodes"; !strings.HasSuffix(c.Chaos, want) {
			t.Fatalf("chaos=%q, want it to end %q", c.Chaos, want)
		}
		// The check put the server's faults back.
		for name, f := range adminFaults(t, s.addr) {
			if f.Late+f.Reset+f.Duplicate+f.Gateway+f.Batch != 0 || f.Error != 0.2 {
				t.Errorf("after check, %s has faults %+v, want the server's own back", name, f)
			}
		}
	})
	t.Run("chaos names the nodes it could not reach", func(t *testing.T) {
		with := startServer(t, "", nil, "--nodes", "node01,node02", "--store", "memory", "--admin", "--random-behavior", "0")
		without := startServer(t, "", nil, "--nodes", "node03", "--store", "memory", "--random-behavior", "0")
		cfg := writeConfig(t, "lab", remoteSpecs(with.addr, with.addr, without.addr)...)
		c := runCheck(t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "--seed", "75", "check", "--ops", "50", "--chaos", "0.05")
		if want := "at 0.05 on 2 of 3 nodes (none on node03)"; !strings.HasSuffix(c.Chaos, want) {
			t.Fatalf("chaos=%q, want it to end %q", c.Chaos, want)
		}
	})
}

// serverFaults is part of a node's faults as GET /admin/faults shows them.
type serverFaults struct {
	Error     float64 `json:"error_rate"`
	Late      float64 `json:"late_rate"`
	Reset     float64 `json:"reset_rate"`
	Duplicate float64 `json:"duplicate_rate"`
	Gateway   float64 `json:"gateway_rate"`
	Batch     float64 `json:"batch_rate"`
}

// adminFaults reads a server's faults through GET /admin/faults.
func adminFaults(t *testing.T, addr string) map[string]serverFaults {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/admin/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all map[string]serverFaults
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/faults: %d %v", resp.StatusCode, err)
	}
	return all
}

// waitPing waits until the server at addr answers GET /ping, trying a
// bounded number of times.
func waitPing(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	var err error
	for range 100 {
		var resp *http.Response
		if resp, err = client.Get("http://" + addr + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s does not answer /ping: %v", addr, err)
}

// background is a rops process running in the background.
type background struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

// startBackground starts rops with args; t.Cleanup kills it if it is
// still running.
func startBackground(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	b := &background{cmd: ropsCmd(t, ctx, args...), done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// exitCode waits for b to end and returns its exit code.
func (b *background) exitCode(t *testing.T) int {
	t.Helper()
	<-b.done
	if ee, ok := b.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if b.err != nil {
		t.Fatal(b.err)
	}
	return 0
}

// lastLine returns the last line of s.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// cutOff counts the requests to node that the -v log of a rops client shows
// ending with the connection lost after they were sent: requests the node
// was killed in the middle of.
func cutOff(log, node string) int {
	n := 0
	for line := range strings.Lines(log) {
		if !strings.Contains(line, " msg=answer node="+node+" ") {
			continue
		}
		if strings.Contains(line, "EOF") || strings.Contains(line, "connection reset") || strings.Contains(line, "may have been applied") {
			n++
		}
	}
	return n
}

// TestNodesKilledMidRequest is issue 7's end-to-end test: three badger
// `rops serve` processes of one node each, failing 20% of requests and
// losing 5% of acknowledgements, are checked by rops check over live
// keep-alive connections while one of them is killed with SIGKILL after
// a number of requests drawn from a seeded RNG, with others in flight, and
// restarted on the same port and data. Every round's check finds nothing
// lost, unexpected or divergent (only pending, for what the dead node held
// up); after rops recover, a second check passes and the nodes agree. No
// repair ever runs. ROPS_E2E_SEED replays the kill points.
func TestNodesKilledMidRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("kills nodes in 8 rounds")
	}
	seed := rand.Uint64()
	if s := os.Getenv("ROPS_E2E_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("ROPS_E2E_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d: replay with ROPS_E2E_SEED=%d go test -race -run TestNodesKilledMidRequest .", seed, seed)
	defer func() {
		if t.Failed() {
			t.Logf("failed with seed %d: replay with ROPS_E2E_SEED=%d go test -race -run TestNodesKilledMidRequest .", seed, seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, seed))

	names := []string{"node01", "node02", "node03"}
	serverArgs := func(i int, faultSeed uint64, dir string) []string {
		return []string{"--nodes", names[i], "--store", "badger", "--data", dir, "--admin",
			"--random-behavior", "0.2", "--ambiguous-rate", "0.05", "--seed", fmt.Sprint(faultSeed)}
	}
	var servers []*server
	var addrs, dirs []string
	for i := range names {
		dir := t.TempDir()
		s := startServer(t, "", nil, serverArgs(i, 80+uint64(i), dir)...)
		servers, addrs, dirs = append(servers, s), append(addrs, s.addr), append(dirs, dir)
	}
	cfg := writeConfig(t, "lab", remoteSpecs(addrs...)...)
	target := []string{"--config", cfg, "--target", "lab", "--data", t.TempDir()}

	const rounds = 8
	deadline := time.Now().Add(6 * time.Minute)
	cut := 0
	for round := range rounds {
		if time.Now().After(deadline) {
			t.Logf("time is up after %d rounds", round)
			break
		}
		victim := rng.IntN(len(names))
		// A check of 200 operations sends each node about 600
		// requests: deletes of what an earlier run may have left, the
		// operations, the reads that judge them, and the deletes that
		// clean up.
		kill := 1 + rng.IntN(550)
		at := servers[victim].requests.after(kill)
		job := startBackground(t, append([]string{"-v", "-o", "json", "--seed", fmt.Sprint(round + 1)}, append(target, "check", "--ops", "200")...)...)
		killed := false
		select {
		case <-at:
			servers[victim].kill(t)
			killed = true
			servers[victim] = startServer(t, addrs[victim], nil, serverArgs(victim, 90+uint64(round), dirs[victim])...)
			waitPing(t, addrs[victim])
		case <-job.done:
		}
		code := job.exitCode(t)
		n := cutOff(job.stderr.String(), names[victim])
		cut += n
		if code == 3 && strings.Contains(job.stderr.String(), "rops: check: cannot check:") {
			// Killed while the check read the nodes to judge them: it
			// says it cannot judge, which is no violation.
			t.Logf("round %d: %s killed after %d requests (%d requests cut off); check exited %d: %s",
				round, names[victim], kill, n, code, lastLine(job.stderr.String()))
		} else {
			c := decodeCheck(t, job.stdout.String())
			t.Logf("round %d: %s killed after %d requests (killed: %v, %d requests cut off); check exited %d: %v",
				round, names[victim], kill, killed, n, code, c)
			if code != 0 && !c.clean() {
				t.Fatalf("seed %d round %d: check exited %d and found %v", seed, round, code, c)
			}
			if !killed && c.Pending != 0 {
				t.Fatalf("seed %d round %d: no node was down, yet the check left %d pending", seed, round, c.Pending)
			}
		}

		if code, out := run(t, append(target, "recover")...); code != 0 {
			t.Fatalf("seed %d round %d: recover exited %d:\n%s", seed, round, code, out)
		}
		after := runCheck(t, append(target, "--seed", fmt.Sprint(100+round), "check", "--ops", "50")...)
		if after.Pending != 0 {
			t.Fatalf("seed %d round %d: the check after recover left %d pending", seed, round, after.Pending)
		}
		st := runJSON[statsOut](t, append(target, "stats")...)
		if !st.Consistent {
			t.Fatalf("seed %d round %d: after recover, stats = %+v", seed, round, st)
		}
		t.Logf("round %d: recover, then check %v; stats consistent %v", round, after, st.Nodes)
	}
	if cut == 0 {
		t.Errorf("seed %d: no kill cut a request off: the nodes were never killed mid-request", seed)
	}
}

// TestCheckAgainstOriginalProtocol runs rops check against `rops serve
// --original`, which speaks the original server's protocol: records without
// a timestamp, no /groups, no replay, no tombstones announced, no "not
// applied" mark. The client takes its fallback path (unconditional reads,
// waiting out ambiguous requests, stats by counts) and still nothing is
// lost, unexpected or divergent, at the original's 0.2 and with lost
// acknowledgements on top, whose retried creates the server answers
// "exists".
func TestCheckAgainstOriginalProtocol(t *testing.T) {
	skipLong(t)
	for i, faults := range [][]string{
		{"--random-behavior", "0.2"},
		{"--random-behavior", "0.2", "--ambiguous-rate", "0.1"},
	} {
		t.Run(strings.Join(faults, " "), func(t *testing.T) {
			s := startServer(t, "", nil, append([]string{"--original", "--store", "badger", "--data", t.TempDir(), "--seed", fmt.Sprint(110 + i)}, faults...)...)
			cfg := writeConfig(t, "original", remoteSpecs(s.addr, s.addr, s.addr)...)
			target := []string{"--config", cfg, "--target", "original", "--data", t.TempDir()}
			c := runCheck(t, append(target, "--seed", fmt.Sprint(120+i), "check", "--ops", "200")...)
			t.Logf("check: %v", c)
			st := runJSON[struct {
				Consistent bool           `json:"consistent"`
				CountsOnly bool           `json:"counts_only"`
				Nodes      map[string]int `json:"nodes"`
			}](t, append(target, "stats")...)
			if !st.Consistent || !st.CountsOnly || st.Nodes["node01"] != 0 {
				t.Fatalf("after check: stats = %+v, want consistent counts only (the original cannot list), all 0", st)
			}
		})
	}
}
