package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// cluster3 starts three badger `rops serve` processes of one node each,
// all counting their requests on one counter, and writes a config naming
// them as target "lab".
func cluster3(t *testing.T, faults ...string) (servers []*server, dirs []string, cfg string, requests *counter) {
	t.Helper()
	requests = newCounter()
	var addrs []string
	for i, name := range []string{"node01", "node02", "node03"} {
		dir := t.TempDir()
		s := startServer(t, "", requests, append([]string{"--nodes", name, "--data", dir, "--seed", fmt.Sprint(50 + i)}, faults...)...)
		servers, dirs, addrs = append(servers, s), append(dirs, dir), append(addrs, s.addr)
	}
	return servers, dirs, writeConfig(t, "lab", remoteSpecs(addrs...)...), requests
}

// killedJob is a job that was killed with SIGKILL: what it had reported
// done before, and whether it ended by itself first.
type killedJob struct {
	done     []core.GroupID
	finished bool
}

// runKilled starts a rops job with -v, kills it with SIGKILL once the
// nodes have answered kill more requests (or lets it end if it is done
// first), and returns the ids it reported done before.
func runKilled(t *testing.T, requests *counter, kill int, args ...string) killedJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := ropsCmd(t, ctx, append([]string{"-v"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	at := requests.after(kill)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var job killedJob
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			// "msg=result op=create id=5 outcome=done": the job has told
			// its user.
			if id, outcome, ok := resultLine(sc.Text()); ok && outcome == core.Done {
				job.done = append(job.done, id)
			}
		}
	}()
	select {
	case <-at:
		cmd.Process.Signal(syscall.SIGKILL)
	case <-read:
		job.finished = true
	}
	<-read
	cmd.Wait()
	return job
}

// records lists the ids one node holds through GET /v1/groups, which is
// never faulted.
func records(t *testing.T, addr, node string) map[core.GroupID]bool {
	t.Helper()
	held := map[core.GroupID]bool{}
	for id := range holdings(t, addr, node) {
		held[id] = true
	}
	return held
}

// holdings returns what one node holds, id to token, through
// GET /v1/groups, which is never faulted.
func holdings(t *testing.T, addr, node string) map[core.GroupID]core.Token {
	t.Helper()
	held := map[core.GroupID]core.Token{}
	after := ""
	for {
		req, err := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/groups?limit=10000&after=%s", addr, url.QueryEscape(after)), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("node", node)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Groups []core.Record `json:"groups"`
			Next   *string       `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/groups of %s: %d %v", node, resp.StatusCode, err)
		}
		for _, r := range page.Groups {
			held[r.ID] = r.Token
		}
		if page.Next == nil {
			return held
		}
		after = *page.Next
	}
}

// TestJobKilled kills a bulk create or delete of 1000 ids with SIGKILL at
// 20 points drawn from a seeded RNG, against three badger nodes failing
// 20% of requests and losing 10% of acknowledgements. After each kill
// rops recover and stats say consistent, and every id the job reported done
// is on every node (create) or on none (delete).
func TestJobKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 20 jobs")
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	servers, _, cfg, requests := cluster3(t, "--random-behavior", "0.2", "--ambiguous-rate", "0.1")
	data := t.TempDir()
	target := []string{"--config", cfg, "--target", "lab", "--data", data}
	for round := range 20 {
		op := []core.Op{core.OpCreate, core.OpDelete}[round%2]
		// A 1000-id job sends about 4000 (create) or 8000 (delete) requests.
		kill := 1 + rng.IntN(3000)
		job := runKilled(t, requests, kill, append(target, "--seed", fmt.Sprint(seed+uint64(round)), string(op), "--range", "0-999")...)
		t.Logf("round %d: %s killed after %d requests, %d reported done (finished: %v)", round, op, kill, len(job.done), job.finished)

		code, out := run(t, append(target, "recover")...)
		if code != 0 {
			t.Fatalf("seed %d round %d: recover exited %d:\n%s", seed, round, code, out)
		}
		st := runJSON[statsOut](t, append(target, "stats")...)
		if !st.Consistent {
			t.Fatalf("seed %d round %d: after recover, stats = %+v", seed, round, st)
		}
		for i, s := range servers {
			held := records(t, s.addr, fmt.Sprintf("node%02d", i+1))
			for _, id := range job.done {
				if held[id] != (op == core.OpCreate) {
					t.Fatalf("seed %d round %d: %s %s was reported done, but node%02d holds it: %v", seed, round, op, id, i+1, held[id])
				}
			}
		}
	}
}

// TestNodeDownDuringJob keeps a node down for a whole job: none of its
// operations is reported done, and once the node is back, recover leaves the
// cluster consistent.
func TestNodeDownDuringJob(t *testing.T) {
	servers, dirs, cfg, _ := cluster3(t, "--random-behavior", "0.2", "--ambiguous-rate", "0.1")
	target := []string{"--config", cfg, "--target", "lab", "--data", t.TempDir()}
	servers[2].kill(t)
	rep := runJSON[core.Report](t, append(target, "--retries", "3", "create", "--range", "0-99")...)
	if rep.Done != 0 || rep.RolledBack+rep.Pending != 100 {
		t.Fatalf("with node03 down: report = %+v, want every create rolled back or pending", rep)
	}
	startServer(t, servers[2].addr, nil, "--nodes", "node03", "--data", dirs[2], "--random-behavior", "0.2", "--seed", "7")
	if code, out := run(t, append(target, "recover")...); code != 0 {
		t.Fatalf("recover exited %d:\n%s", code, out)
	}
	if st := runJSON[statsOut](t, append(target, "stats")...); !st.Consistent || st.Nodes["node01"] != 0 {
		t.Fatalf("after recover: stats = %+v, want consistent and empty", st)
	}
}

// setFaults changes a running server's faults through /admin/faults.
func setFaults(t *testing.T, addr, faults string) {
	t.Helper()
	req, err := http.NewRequest("PUT", "http://"+addr+"/admin/faults", strings.NewReader(faults))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /admin/faults %s: %d", faults, resp.StatusCode)
	}
}

// TestPendingThenRecovered makes node03 lose every acknowledgement, so that
// operations can neither finish nor be confirmed undone: they are reported
// pending (text and JSON, exit 3) and stay in the journal, and once node03
// answers again rops recover rolls them back.
func TestPendingThenRecovered(t *testing.T) {
	s := startServer(t, "", nil, "--store", "memory", "--random-behavior", "0", "--admin")
	cfg := writeConfig(t, "lab", remoteSpecs(s.addr, s.addr, s.addr)...)
	target := []string{"--config", cfg, "--target", "lab", "--data", t.TempDir(), "--retries", "2", "--compensation-timeout", "300ms"}
	setFaults(t, s.addr, `{"node03": {"ambiguous_rate": 1}}`)

	code, out := run(t, append(target, "create-one", "x")...)
	if code != 3 || !strings.Contains(out, "create x: pending") {
		t.Fatalf("create-one exited %d, want 3 and pending:\n%s", code, out)
	}
	rep := runJSON[core.Report](t, append(target, "create", "y", "z")...)
	if rep.Pending != 2 || !slices.Equal(rep.PendingIDs, []core.GroupID{"y", "z"}) && !slices.Equal(rep.PendingIDs, []core.GroupID{"z", "y"}) {
		t.Fatalf("report = %+v, want y and z pending", rep)
	}
	// Still unresolved: recover says so.
	if code, out := run(t, append(target, "recover")...); code != 3 || !strings.Contains(out, "3 intents, 0 rolled back, 3 pending") {
		t.Fatalf("recover with node03 still failing exited %d:\n%s", code, out)
	}

	setFaults(t, s.addr, `{"node03": {"ambiguous_rate": 0}}`)
	if code, out := run(t, append(target, "recover")...); code != 0 || !strings.Contains(out, "3 intents, 3 rolled back, 0 pending") {
		t.Fatalf("recover exited %d:\n%s", code, out)
	}
	if st := runJSON[statsOut](t, append(target, "stats")...); !st.Consistent || st.Nodes["node03"] != 0 {
		t.Fatalf("after recover: stats = %+v, want consistent and empty", st)
	}
}
