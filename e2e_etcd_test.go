package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/journals/etcd/etcdtest"
)

// etcdJournal returns the --journal of the etcd members at eps, with a
// lease of 2 s, so that a killed coordinator's locks expire soon.
func etcdJournal(eps []string) string {
	return "etcd://" + strings.Join(eps, ",") + "/rops?ttl=2s"
}

// watchedJob is a rops job run with -v in the background, whose per-id
// results are read as they are logged ("msg=result op=create id=5
// outcome=done").
type watchedJob struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu       sync.Mutex
	outcomes map[core.GroupID]core.Outcome
	count    map[core.Outcome]int
	tail     []string // the last lines that are not request logs
}

// startJob starts rops -v ARGS; t.Cleanup kills it if it still runs.
func startJob(t *testing.T, args ...string) *watchedJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	j := &watchedJob{cmd: ropsCmd(t, ctx, append([]string{"-v"}, args...)...), done: make(chan struct{}),
		outcomes: map[core.GroupID]core.Outcome{}, count: map[core.Outcome]int{}}
	stderr, err := j.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := j.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			j.mu.Lock()
			if id, outcome, ok := resultLine(line); ok {
				j.outcomes[id] = outcome
				j.count[outcome]++
			} else if !isRequestLog(line) {
				j.tail = append(j.tail[max(0, len(j.tail)-5):], line)
			}
			j.mu.Unlock()
		}
		j.err = j.cmd.Wait()
		close(j.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-j.done
	})
	return j
}

// wait waits for the job to end and returns its exit code; a usage error
// fails the test.
func (j *watchedJob) wait(t *testing.T) int {
	t.Helper()
	<-j.done
	code := 0
	if ee, ok := j.err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if j.err != nil {
		t.Fatal(j.err)
	}
	if code == 2 {
		t.Fatalf("rops %v: usage error: %s", j.cmd.Args[1:], j.lastLines())
	}
	return code
}

func (j *watchedJob) seen(o core.Outcome) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.count[o]
}

func (j *watchedJob) lastLines() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.tail, "\n")
}

// heldEverywhere returns which ids every server's node holds, failing the
// test if the nodes disagree on one.
func heldEverywhere(t *testing.T, servers []*server, what string) map[core.GroupID]bool {
	t.Helper()
	var first map[core.GroupID]bool
	for i, s := range servers {
		held := records(t, s.addr, fmt.Sprintf("node%02d", i+1))
		if first == nil {
			first = held
			continue
		}
		for id := range joinKeys(first, held) {
			if first[id] != held[id] {
				t.Fatalf("%s: node01 holds %s: %v, node%02d: %v", what, id, first[id], i+1, held[id])
			}
		}
	}
	return first
}

func joinKeys(a, b map[core.GroupID]bool) map[core.GroupID]bool {
	m := map[core.GroupID]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// TestEtcdManyCoordinators: three rops processes, each with its own data
// directory (as on three machines), create and delete the same 60 ids at
// once through one etcd journal, against three `rops serve` nodes with
// errors, lost acknowledgements and late writes, for 10 rounds. After every
// round the nodes agree without repair (recover settles what was reported
// pending), and each id's state is one that an operation reported done
// (or pending) made, or the round's start state if none changed it.
func TestEtcdManyCoordinators(t *testing.T) {
	skipLong(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	ec := etcdtest.Start(t, 1)
	servers, _, cfg, _ := cluster3(t, "--random-behavior", "0.2", "--ambiguous-rate", "0.05", "--late-rate", "0.02", "--late-delay", "3s")
	journal := etcdJournal(ec.Endpoints())
	data := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	target := func(p int) []string {
		return []string{"--config", cfg, "--target", "lab", "--data", data[p], "--journal", journal}
	}
	const ids = 60
	before := map[core.GroupID]bool{}
	for round := range 10 {
		var jobs []*watchedJob
		var ops []core.Op
		for p := range 3 {
			op := []core.Op{core.OpCreate, core.OpDelete}[rng.IntN(2)]
			ops = append(ops, op)
			jobs = append(jobs, startJob(t, append(target(p), "--seed", fmt.Sprint(seed+uint64(10*round+p)), string(op), "--range", fmt.Sprintf("0-%d", ids-1))...))
		}
		pending := 0
		for _, j := range jobs {
			j.wait(t)
			pending += j.seen(core.Pending)
		}
		if pending > 0 {
			if code, out := run(t, append(target(0), "recover")...); code != 0 {
				t.Fatalf("seed %d round %d: recover exited %d:\n%s", seed, round, code, out)
			}
		}
		if st := runJSON[statsOut](t, append(target(1), "stats")...); !st.Consistent {
			t.Fatalf("seed %d round %d (%v): stats = %+v, want consistent", seed, round, ops, st)
		}
		after := heldEverywhere(t, servers, fmt.Sprintf("seed %d round %d", seed, round))
		for i := range ids {
			id := core.GroupID(fmt.Sprint(i))
			// What the round's operations could have left: the state an
			// operation reported done, unchanged or pending wanted.
			could := map[bool]bool{}
			changed := false
			for p, j := range jobs {
				switch j.outcomes[id] {
				case core.Done, core.Unchanged, core.Pending:
					could[ops[p] == core.OpCreate] = true
					changed = changed || j.outcomes[id] == core.Done
				}
			}
			if !changed {
				could[before[id]] = true
			}
			if !could[after[id]] {
				t.Fatalf("seed %d round %d: %s is held: %v, which no reported operation made (ops %v, outcomes %v %v %v)",
					seed, round, id, after[id], ops, jobs[0].outcomes[id], jobs[1].outcomes[id], jobs[2].outcomes[id])
			}
		}
		t.Logf("round %d: %v, %d held", round, ops, len(after))
		before = after
	}
}

// TestEtcdCoordinatorKilled: a coordinator is SIGKILLed in the middle of a
// job; its locks outlive it until its lease expires, and then another
// process, with its own data directory, settles the intents it left. The
// ids it reported done stay done.
func TestEtcdCoordinatorKilled(t *testing.T) {
	skipLong(t)
	ec := etcdtest.Start(t, 1)
	servers, _, cfg, requests := cluster3(t, "--random-behavior", "0.2", "--ambiguous-rate", "0.1", "--latency", "5ms")
	journal := etcdJournal(ec.Endpoints())
	a := []string{"--config", cfg, "--target", "lab", "--data", t.TempDir(), "--journal", journal}
	b := []string{"--config", cfg, "--target", "lab", "--data", t.TempDir(), "--journal", journal}
	job := runKilled(t, requests, 400, append(a, "--seed", "11", "create", "--range", "0-299")...)
	if job.finished {
		t.Fatal("the job ended before it was killed: kill it sooner")
	}
	code, out := run(t, append(b, "recover")...)
	if code != 0 || !strings.Contains(out, "intents") {
		t.Fatalf("recover from another process exited %d, want it to settle the killed job's intents:\n%s", code, out)
	}
	t.Logf("%s", lastLine(out))
	if st := runJSON[statsOut](t, append(b, "stats")...); !st.Consistent {
		t.Fatalf("after recover, stats = %+v", st)
	}
	held := heldEverywhere(t, servers, "after recover")
	for _, id := range job.done {
		if !held[id] {
			t.Fatalf("create %s was reported done, and is gone", id)
		}
	}
	if code, out := run(t, append(a, "recover")...); code != 0 || !strings.Contains(out, "nothing to recover") {
		t.Fatalf("recover again exited %d:\n%s", code, out)
	}
}

// TestEtcdMembersDown: with a 3-member etcd, a job goes on when one member
// is killed under it. When the other two go down under the next job, it
// stops, reporting pending what it could not finish; once etcd is back,
// recover settles them, and what was reported done holds.
func TestEtcdMembersDown(t *testing.T) {
	skipLong(t)
	ec := etcdtest.Start(t, 3)
	servers, _, cfg, requests := cluster3(t, "--random-behavior", "0.2", "--latency", "20ms")
	// One request per write, 16 at once: each job is then bound by the
	// nodes' latency (2,000 ids, 16 at a time, at least 20 ms each: 2.5 s
	// and more), and outlasts etcd's members stopping under it. Batches,
	// or the adaptive concurrency, finished it first (the other e2e tests
	// run both).
	target := []string{"--config", cfg, "--target", "lab", "--data", t.TempDir(), "--journal", etcdJournal(ec.Endpoints()), "--no-batches", "--concurrency", "16"}

	// One member killed mid-job: the job goes on. (Stopping a member takes
	// a while, a leader handing over: the job is long enough to outlast it.)
	at := requests.after(300)
	job := startJob(t, append(target, "--seed", "21", "create", "--range", "0-1999")...)
	<-at
	ec.Stop(0)
	doneAtStop := job.seen(core.Done)
	select {
	case <-job.done:
		t.Fatalf("the job ended while a member was stopping (done %d): make it longer", doneAtStop)
	default:
	}
	job.wait(t)
	if got := job.seen(core.Done); got <= doneAtStop {
		t.Fatalf("done %d when a member stopped and %d at the end: the job did not go on (%s)", doneAtStop, got, job.lastLines())
	}
	run(t, append(target, "recover")...)
	held := heldEverywhere(t, servers, "after the first job")
	for id, o := range job.outcomes {
		if o == core.Done && !held[id] {
			t.Fatalf("create %s was reported done, and is gone", id)
		}
	}

	// Every member down mid-job: the job stops, with pending reported.
	at = requests.after(300)
	job = startJob(t, append(target, "--seed", "22", "delete", "--range", "0-1999")...)
	<-at
	ec.StopAll()
	code := job.wait(t)
	if code != 3 || job.seen(core.Pending) == 0 {
		t.Fatalf("with etcd down the job exited %d with %d pending, want 3 and some pending (%s)", code, job.seen(core.Pending), job.lastLines())
	}
	t.Logf("etcd down: %d done, %d rolled back, %d pending", job.seen(core.Done), job.seen(core.RolledBack), job.seen(core.Pending))
	// A command with etcd down stops before it touches a node.
	out, err := ropsCmd(t, context.Background(), append(target, "recover")...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "did not answer") {
		t.Fatalf("recover with etcd down: %v, want exit 2 saying etcd did not answer:\n%s", err, out)
	}

	ec.Restart()
	if code, out := run(t, append(target, "recover")...); code != 0 {
		t.Fatalf("recover once etcd is back exited %d:\n%s", code, out)
	}
	if st := runJSON[statsOut](t, append(target, "stats")...); !st.Consistent {
		t.Fatalf("after recover, stats = %+v", st)
	}
	held = heldEverywhere(t, servers, "after recover")
	for id, o := range job.outcomes {
		if o == core.Done && held[id] {
			t.Fatalf("delete %s was reported done, and is held", id)
		}
	}
}

// TestEtcdRefusedPassword: a journal in an etcd that refuses the user's
// password stops a writing command before any node is touched: exit 2,
// saying what etcd refused and where the password came from, never the
// password. With the right one, the command goes through.
func TestEtcdRefusedPassword(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	ec.EnableAuth(etcdtest.User{Name: "rops", Password: "right-secret", Prefix: "/rops/"})
	servers, _, cfg, _ := cluster3(t)
	args := []string{"--config", cfg, "--target", "lab", "--data", t.TempDir(), "--journal", "etcd://rops@" + ec.Endpoints()[0] + "/rops", "create-one", "x"}
	createOne := func(password string) (int, string) {
		t.Helper()
		cmd := ropsCmd(t, context.Background(), args...)
		cmd.Env = append(cmd.Env, "ROPS_ETCD_PASSWORD="+password)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}

	code, out := createOne("wrong-secret")
	want := "etcd at " + ec.Endpoints()[0] + " refused user rops: unknown user or wrong password (etcdserver: authentication failed, invalid user ID or password): check the user name and the password (rops sent ROPS_ETCD_PASSWORD's)"
	if code != 2 || !strings.Contains(out, want) || strings.Contains(out, "wrong-secret") {
		t.Fatalf("create-one with a wrong password exited %d, want 2 saying %q (and not the password):\n%s", code, want, out)
	}
	for i, s := range servers {
		if held := records(t, s.addr, fmt.Sprintf("node%02d", i+1)); len(held) != 0 {
			t.Fatalf("node%02d holds %v after a command refused by etcd, want nothing", i+1, held)
		}
	}

	if code, out := createOne("right-secret"); code != 0 {
		t.Fatalf("create-one with the right password exited %d:\n%s", code, out)
	}
	if held := heldEverywhere(t, servers, "after create-one"); !held["x"] {
		t.Fatalf("after create-one with the right password the nodes hold %v, want x", held)
	}
}
