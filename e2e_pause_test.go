package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/journals/etcd/etcdtest"
)

// The pause tests (issue 17): a coordinator frozen with SIGSTOP past its
// etcd lease, while other processes settle and change its ids, must change
// nothing once SIGCONT lets it run again, even with its requests already
// due (its operation timeout passed: it undoes at once). They judge from
// outside rops: every node is read directly over HTTP, and the outcomes the
// processes reported (-v results, -o json reports) are held against what
// the nodes hold.

var pauseSeed = flag.Uint64("pause.seed", 0, "seed of TestEtcdPausedCoordinators' choices (0: a new one)")

const (
	// pauseLease is the lease of etcdJournal's journal.
	pauseLease = 2 * time.Second
	// pauseLateDelay is how late a node applies a late request: less than
	// the lease, so that the late writes of a paused coordinator have
	// landed by the time another process may settle its ids, as in the
	// issue's schedule (3 s late, a 10 s lease).
	pauseLateDelay = 700 * time.Millisecond
)

// pausedArgs are the paused coordinator's timeouts. With the short
// operation timeout, its operations give up (and undo) long before it
// resumes, a lease and more after it stopped, so that its undo is due the
// moment it runs again; with a long one, it resumes in the middle of its
// operations and retries them at once. What it cannot undo ends pending a
// second later.
func pausedArgs(long bool) []string {
	op := "1500ms"
	if long {
		op = "30s"
	}
	return []string{"--operation-timeout", op, "--request-timeout", "500ms", "--compensation-timeout", "1s"}
}

// TestEtcdPausedCoordinator is issue 17's schedule, scaled down: A creates
// ids through the etcd journal while node03 applies every request late and
// never answers; A is stopped once node01 and node02 hold every id; the
// late creates land on node03; B (another process, its own --data) runs
// recover, which waits for A's lease and finds every create complete; A
// resumes past its operation timeout and undoes at once. Then every node
// must hold every id B reported done, A's reports must agree, and a final
// recover must find the nodes agreeing. Before the fix, A's conditional
// deletes went out before it noticed its lease was gone, leaving ids on
// some nodes only, recover saying nothing to recover. In one case A resumes
// before its operation timeout instead, and sends its retries at once.
func TestEtcdPausedCoordinator(t *testing.T) {
	skipLong(t)
	c := startPauseCluster(t, 170)
	// The cases share the cluster, on ids of their own.
	earlier := map[core.GroupID]bool{}
	for i, tc := range []struct {
		name string
		ids  int
		// hold is the least time A stays stopped; it always stays past
		// its lease and B's recover.
		hold time.Duration
		// lateOnResume makes node03 late again when A resumes: its undo
		// reaches node03 late, after A has exited.
		lateOnResume bool
		// midOperation gives A a long operation timeout: it resumes in
		// the middle of its operations (see pausedArgs).
		midOperation bool
	}{
		{"40 ids", 40, 0, false, false},
		{"40 ids, node03 late on resume", 40, 0, true, false},
		{"40 ids, resumed mid-operation", 40, 0, false, true},
		{"10 ids, stopped for 3 leases", 10, 3 * pauseLease, false, false},
		{"1 id, node03 late on resume", 1, 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := make([]core.GroupID, tc.ids)
			first := 100 * i
			for k := range ids {
				ids[k] = core.GroupID(strconv.Itoa(first + k))
			}
			span := fmt.Sprintf("%d-%d", first, first+tc.ids-1)
			start := time.Now()

			c.setFaults(t, 2, faults.Faults{LateRate: 1})
			a := c.start(t, "A", 0, append(pausedArgs(tc.midOperation), "--concurrency", strconv.Itoa(tc.ids), "create", "--range", span)...)
			// A's creates are out once node01 and node02 hold them all;
			// node03 has them queued.
			if !c.waitHeld(t, []int{0, 1}, ids, true, a.exited, 30*time.Second) {
				t.Fatalf("node01 and node02 do not hold every id A creates (A exited: %v; %s)\n%s", isClosed(a.exited), c, a.tail())
			}
			a.signal(t, syscall.SIGSTOP)
			stopped := time.Now()
			atStop := a.progress()
			landed := c.waitHeld(t, []int{2}, ids, true, nil, pauseLateDelay+10*time.Second)

			c.setFaults(t, 2, faults.Faults{})
			b := c.start(t, "B", 1, "recover")
			b.wait(t)
			if tc.lateOnResume {
				c.setFaults(t, 2, faults.Faults{LateRate: 1})
			}
			holdUntil(stopped.Add(max(tc.hold, pauseLease+500*time.Millisecond)))
			a.signal(t, syscall.SIGCONT)
			resumed, atResume := time.Now(), a.progress()
			a.wait(t)
			c.lapse(t)
			final := c.finalRecover(t)

			h := &pauseHistory{what: tc.name, before: map[core.GroupID]bool{}, ids: ids, ignore: earlier,
				runs: []jobRun{{a, core.OpCreate}}, recovers: []*coordinator{b, final}, stopped: stopped, resumed: resumed}
			held := c.judge(t, h)
			for _, id := range ids {
				earlier[id] = true
			}
			rep, rec, end := a.report(t), b.recovered(t), a.progress()
			t.Logf("A: %d done, %d rolled back, %d pending (%d reported before it was stopped); after it resumed, %d requests, %d refused stale; "+
				"node03 had every late create before B: %v; B: %d done, %d rolled back, %d pending; ids per node %v; A stopped %.1fs; %.1fs in all",
				rep.Done, rep.RolledBack, rep.Pending, atStop.reported, end.requests-atResume.requests, end.stale-atResume.stale,
				landed, rec.Done, rec.RolledBack, rec.Pending, held, resumed.Sub(stopped).Seconds(), time.Since(start).Seconds())
			h.fail(t, c)
		})
	}
}

// TestEtcdPausedCoordinators: three coordinator processes, each with its
// own --data (as on three machines), share one etcd journal and a small
// set of ids on three `rops serve` nodes with faults. In every round one of
// them (the victim) creates or deletes every id while one node applies its
// requests late; once it has begun every operation (or, deleting two at a
// time, a few) it is stopped, and the others, one after the other, run
// recover and/or creates and deletes of the same ids (each waiting for the
// victim's lease, which expires); the victim resumes after them, its
// operations past their timeout (or, in some rounds, in the middle of
// them, retrying at once). Once every process has exited, the late writes
// have landed and a fresh process has run recover, every node is read
// directly: each id must be on every node or none, and in a state that the
// reported outcomes allow, the victim's operations begun before it was
// stopped taking effect (if at all) before the others'.
func TestEtcdPausedCoordinators(t *testing.T) {
	skipLong(t)
	seed := *pauseSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d: go test -run 'TestEtcdPausedCoordinators$' -pause.seed=%d . replays its choices", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	c := startPauseCluster(t, seed)
	const n = 8
	ids := make([]core.GroupID, n)
	for k := range ids {
		ids[k] = core.GroupID(strconv.Itoa(k))
	}
	span := fmt.Sprintf("0-%d", n-1)
	ops := []core.Op{core.OpCreate, core.OpDelete}
	// The others run two at a time, so that most of their deletes go
	// without a read.
	others := []string{"--request-timeout", "1s", "--operation-timeout", "10s", "--compensation-timeout", "5s", "--concurrency", "2"}
	before := map[core.GroupID]bool{}
	for round := range 10 {
		start := time.Now()
		victim := rng.IntN(3)
		// The victim changes most ids: it creates them if most are absent.
		held := 0
		for _, id := range ids {
			if before[id] {
				held++
			}
		}
		vop := core.OpCreate
		if 2*held > n {
			vop = core.OpDelete
		}
		slow, slowLate := rng.IntN(3), []float64{1, 1, 0.6}[rng.IntN(3)]
		// Mostly, the victim begins every operation at once and is stopped
		// once its writes are on the other nodes, so that the late ones
		// complete its operations and the others settle them forward:
		// what its undo must then not touch.
		waitLanded, lateOnResume := rng.IntN(4) != 0, rng.IntN(2) == 0
		// Half the rounds with the slow node healthy on resume, the victim
		// resumes in the middle of its operations.
		midOperation := !lateOnResume && rng.IntN(2) == 0
		// A process's first deletes read first, until its nodes have said
		// they delete without a read: half the victims that delete run
		// two at a time instead, and are stopped once they have begun 3
		// to 5, the later ones without a read (the slow node answers
		// some, to say so); the rest begin after the others' phase.
		concurrency, stopAt := n, n
		if vop == core.OpDelete && !midOperation && rng.IntN(2) == 0 {
			concurrency, stopAt, slowLate, waitLanded, lateOnResume = 2, 3+rng.IntN(3), 0.6, false, false
		}
		wp := []int{(victim + 1) % 3, (victim + 2) % 3}
		if rng.IntN(2) == 0 {
			wp[0], wp[1] = wp[1], wp[0]
		}
		// What the others do while the victim is stopped, one after the
		// other: "recover", or a create or delete of every id.
		var steps []string
		switch rng.IntN(4) {
		case 0:
			steps = []string{"recover"}
		case 1:
			steps = []string{string(ops[rng.IntN(2)])}
		case 2:
			steps = []string{"recover", string(ops[rng.IntN(2)])}
		default:
			steps = []string{string(ops[rng.IntN(2)]), string(ops[rng.IntN(2)])}
		}
		what := fmt.Sprintf("seed %d round %d: p%d %s (%d at a time, node%02d late %v, stopped once %d begun",
			seed, round, victim, vop, concurrency, slow+1, slowLate, stopAt)
		if waitLanded {
			what += " and landed"
		}
		what += fmt.Sprintf("), then %v by p%d, p%d", steps, wp[0], wp[1])
		if lateOnResume {
			what += ", the node late again on resume"
		}
		if midOperation {
			what += ", resumed mid-operation"
		}

		// The victim's phase: a slow node, the others failing some
		// requests, losing some answers and applying some twice.
		for i := range 3 {
			f := faults.Faults{ErrorRate: 0.1, AmbiguousRate: 0.05, DuplicateRate: 0.05}
			if i == slow {
				f = faults.Faults{LateRate: slowLate}
			}
			c.setFaults(t, i, f)
		}
		h := &pauseHistory{what: what, before: before, ids: ids}
		v := c.start(t, fmt.Sprintf("p%d", victim), victim,
			append(pausedArgs(midOperation), "--concurrency", strconv.Itoa(concurrency), string(vop), "--range", span)...)
		h.runs = append(h.runs, jobRun{v, vop})
		if !v.waitUntil(30*time.Second, func(v *coordinator) bool { return len(v.begun) >= stopAt }) {
			t.Fatalf("%s: the victim did not begin %d operations before it exited: make it slower (%s)\n%s", what, stopAt, c, v.tail())
		}
		if waitLanded {
			var fast []int
			for i := range 3 {
				if i != slow {
					fast = append(fast, i)
				}
			}
			// Not for long: its operations give up after 1.5 s.
			c.waitHeld(t, fast, ids, vop == core.OpCreate, v.exited, time.Second)
		}
		if isClosed(v.exited) {
			t.Fatalf("%s: the victim exited before it was stopped: make it slower (%s)\n%s", what, c, v.tail())
		}
		v.signal(t, syscall.SIGSTOP)
		stopped := time.Now()
		atStop := v.progress()
		h.unbegun = v.unbegun(ids)

		// The others' phase: every node fails some requests and loses
		// some answers.
		for i := range 3 {
			c.setFaults(t, i, faults.Faults{ErrorRate: 0.1, AmbiguousRate: 0.05})
		}
		for k, step := range steps {
			p := wp[k%2]
			if step == "recover" {
				r := c.start(t, fmt.Sprintf("p%d", p), p, append(others, "recover")...)
				r.wait(t)
				h.recovers = append(h.recovers, r)
				continue
			}
			j := c.start(t, fmt.Sprintf("p%d", p), p, append(others, step, "--range", span)...)
			j.wait(t)
			h.runs = append(h.runs, jobRun{j, core.Op(step)})
		}

		if lateOnResume {
			c.setFaults(t, slow, faults.Faults{LateRate: 1})
		}
		holdUntil(stopped.Add(pauseLease + 500*time.Millisecond))
		v.signal(t, syscall.SIGCONT)
		resumed, atResume := time.Now(), v.progress()
		h.stopped, h.resumed = stopped, resumed
		v.wait(t)
		c.lapse(t)
		h.recovers = append(h.recovers, c.finalRecover(t))
		counts := c.judge(t, h)
		var reports []string
		for _, r := range h.runs {
			rep := r.job.report(t)
			reports = append(reports, fmt.Sprintf("%s %s %d/%d/%d/%d", r.job.name, r.op, rep.Done, rep.Unchanged, rep.RolledBack, rep.Pending))
		}
		end := v.progress()
		t.Logf("round %d: %s; reports (done/unchanged/rolled back/pending) %s; victim: %d reported and %d not begun when stopped, after it resumed %d requests, %d refused stale; "+
			"ids per node %v; victim stopped %.1fs; round %.1fs",
			round, what, strings.Join(reports, ", "), atStop.reported, len(h.unbegun), end.requests-atResume.requests, end.stale-atResume.stale,
			counts, resumed.Sub(stopped).Seconds(), time.Since(start).Seconds())
		h.fail(t, c)
		before = h.after
	}
}

// pauseCluster is three `rops serve` processes of one memory node each,
// with the admin API, and an etcd member for the journal.
type pauseCluster struct {
	servers []*server
	names   []string
	cfg     string
	journal string
	data    [3]string // each coordinator process's --data, as on three machines
	markers int       // lapse markers sent so far
}

func startPauseCluster(t *testing.T, seed uint64) *pauseCluster {
	t.Helper()
	ec := etcdtest.Start(t, 1)
	c := &pauseCluster{journal: etcdJournal(ec.Endpoints())}
	var addrs []string
	for i := range 3 {
		name := fmt.Sprintf("node%02d", i+1)
		s := startServer(t, "", nil, "--nodes", name, "--store", "memory", "--admin", "--random-behavior", "0",
			"--late-delay", pauseLateDelay.String(), "--seed", fmt.Sprint(seed+uint64(i)))
		c.servers, c.names, addrs = append(c.servers, s), append(c.names, name), append(addrs, s.addr)
		c.data[i] = t.TempDir()
	}
	c.cfg = writeConfig(t, "lab", remoteSpecs(addrs...)...)
	return c
}

// String names the cluster's ports, for failure messages.
func (c *pauseCluster) String() string {
	var addrs []string
	for _, s := range c.servers {
		addrs = append(addrs, s.addr)
	}
	return fmt.Sprintf("nodes %s, journal %s", strings.Join(addrs, " "), c.journal)
}

// setFaults gives node i the faults f, late by pauseLateDelay.
func (c *pauseCluster) setFaults(t *testing.T, i int, f faults.Faults) {
	t.Helper()
	f.LateDelay = faults.Duration(pauseLateDelay)
	b, err := json.Marshal(map[string]faults.Faults{c.names[i]: f})
	if err != nil {
		t.Fatal(err)
	}
	setFaults(t, c.servers[i].addr, string(b))
}

// start starts a coordinator process named name with the --data of
// process p (0 to 2; -1: a fresh one) on the cluster.
func (c *pauseCluster) start(t *testing.T, name string, p int, args ...string) *coordinator {
	t.Helper()
	data := t.TempDir()
	if p >= 0 {
		data = c.data[p]
	}
	return startCoordinator(t, name, append([]string{"--config", c.cfg, "--target", "lab", "--data", data, "--journal", c.journal}, args...)...)
}

// finalRecover runs recover in a fresh process, once every other process
// has exited and the nodes have no faults: it must leave nothing pending.
func (c *pauseCluster) finalRecover(t *testing.T) *coordinator {
	t.Helper()
	r := c.start(t, "final", -1, "recover")
	if code := r.wait(t); code != 0 {
		t.Fatalf("the final recover exited %d (%s):\n%s", code, c, r.tail())
	}
	return r
}

// holdings returns what node i holds, id to token, read through
// GET /v1/groups, which is never faulted.
func (c *pauseCluster) holdings(t *testing.T, i int) map[core.GroupID]core.Token {
	t.Helper()
	return holdings(t, c.servers[i].addr, c.names[i])
}

// waitHeld polls the nodes until each of them holds every one of ids (or,
// if !present, none), stop is closed or d passes, and reports whether
// they did.
func (c *pauseCluster) waitHeld(t *testing.T, nodes []int, ids []core.GroupID, present bool, stop <-chan struct{}, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, i := range nodes {
			held := c.holdings(t, i)
			for _, id := range ids {
				if _, on := held[id]; on != present {
					ok = false
				}
			}
		}
		if ok || time.Now().After(deadline) || isClosed(stop) {
			return ok
		}
		<-tick.C
	}
}

// lapse waits until every late write the nodes hold has landed (or been
// refused), and leaves the nodes without faults. A late write is visible
// nowhere before it lands pauseLateDelay after it arrived, so once every
// process of a round has exited, each node is made late for everything
// and sent the create of a marker id: it arrived after every late write of
// the round and waits as long, so once it is listed they have all landed.
func (c *pauseCluster) lapse(t *testing.T) {
	t.Helper()
	c.markers++
	marker := core.GroupID(fmt.Sprintf("lapse-%d", c.markers))
	for i := range c.servers {
		c.setFaults(t, i, faults.Faults{LateRate: 1})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, s := range c.servers {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, "POST", "http://"+s.addr+"/v1/group", strings.NewReader(`{"groupId": "`+string(marker)+`"}`))
			if err != nil {
				return
			}
			req.Header.Set("node", c.names[i])
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close() // late: never answered until cancelled
			}
		})
	}
	landed := c.waitHeld(t, []int{0, 1, 2}, []core.GroupID{marker}, true, nil, pauseLateDelay+30*time.Second)
	cancel()
	wg.Wait()
	if !landed {
		t.Fatalf("the late marker %s did not land on every node (%s)", marker, c)
	}
	for i := range c.servers {
		c.setFaults(t, i, faults.Faults{})
	}
}

// holdUntil waits until at: a point of the schedule (how long a process
// stays stopped), not a way to wait for anything to happen.
func holdUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}

func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// coordinator is a rops process run in the background with -v -o json:
// what it logs to stderr (each request to a node, each operation's result)
// is read as it comes, its JSON output once it exits.
type coordinator struct {
	name   string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	exited chan struct{} // closed once it exited and its stderr was read
	err    error
	// started and ended bound its lifetime: before it started, after it
	// exited.
	started, ended time.Time

	mu       sync.Mutex
	changed  chan struct{} // closed, and replaced, on every line read
	outcomes map[core.GroupID]core.Outcome
	begun    map[core.GroupID]bool     // ids it sent a request on
	byID     map[core.GroupID][]string // its log lines about each id
	codes    map[core.Code]int         // its requests' failures, by code
	requests int                       // requests it began (logged)
	other    []string                  // its last other lines
}

// startCoordinator starts rops -v -o json ARGS; t.Cleanup kills it if it
// still runs (stopped or not).
func startCoordinator(t *testing.T, name string, args ...string) *coordinator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	c := &coordinator{name: name, cmd: ropsCmd(t, ctx, append([]string{"-v", "-o", "json"}, args...)...),
		exited: make(chan struct{}), changed: make(chan struct{}), outcomes: map[core.GroupID]core.Outcome{},
		begun: map[core.GroupID]bool{}, byID: map[core.GroupID][]string{}, codes: map[core.Code]int{}}
	c.cmd.Stdout = &c.stdout
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.started = time.Now()
	if err := c.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.read(sc.Text())
		}
		c.err = c.cmd.Wait()
		c.ended = time.Now()
		close(c.exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.exited
	})
	return c
}

// lived reports whether at falls in its lifetime; it must have exited.
func (c *coordinator) lived(at time.Time) bool {
	<-c.exited
	return !at.Before(c.started) && !at.After(c.ended)
}

// read takes in one line of the -v log.
func (c *coordinator) read(line string) {
	f := logFields(line)
	c.mu.Lock()
	defer c.mu.Unlock()
	id := core.GroupID(f["groupId"])
	if id == "" {
		id = core.GroupID(f["id"])
	}
	switch {
	case id == "":
		c.other = append(c.other[max(0, len(c.other)-9):], line)
	case f["msg"] == "result":
		c.outcomes[id] = core.Outcome(f["outcome"])
	case f["msg"] == "answer" && f["code"] != "":
		c.codes[core.Code(f["code"])]++
	case f["msg"] == "request":
		c.requests++
		c.begun[id] = true
	}
	if id != "" {
		c.byID[id] = append(c.byID[id], line)
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// unbegun returns the ids of ids on which c has sent no request yet (with
// one sent, it holds the id's lock and has written its intent).
func (c *coordinator) unbegun(ids []core.GroupID) map[core.GroupID]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[core.GroupID]bool{}
	for _, id := range ids {
		if !c.begun[id] {
			m[id] = true
		}
	}
	return m
}

// progress is how far a coordinator has got: the operations it reported,
// the requests it sent and how many a node refused as stale (core.EStale).
type progress struct{ reported, requests, stale int }

func (c *coordinator) progress() progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return progress{len(c.outcomes), c.requests, c.codes[core.EStale]}
}

// waitUntil waits until cond holds of what c has logged, c exits, or d
// passes, and reports whether cond held. cond runs with c.mu held.
func (c *coordinator) waitUntil(d time.Duration, cond func(*coordinator) bool) bool {
	deadline := time.After(d)
	for {
		c.mu.Lock()
		ok, changed := cond(c), c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-c.exited:
			c.mu.Lock()
			defer c.mu.Unlock()
			return cond(c)
		case <-deadline:
			return false
		}
	}
}

// signal sends sig (SIGSTOP, SIGCONT) to the process.
func (c *coordinator) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v: %v", c.name, sig, err)
	}
}

// wait waits for the process to exit and returns its exit code; a usage
// error or a failure to run fails the test.
func (c *coordinator) wait(t *testing.T) int {
	t.Helper()
	<-c.exited
	code := 0
	if ee, ok := c.err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if c.err != nil {
		t.Fatalf("%s: %v", c.name, c.err)
	}
	if code == 2 || code < 0 {
		t.Fatalf("%s: rops %v exited %d:\n%s", c.name, c.cmd.Args[1:], code, c.tail())
	}
	return code
}

// tail returns its last lines that concern no id, and its JSON output.
func (c *coordinator) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.name + ": " + strings.Join(c.other, "\n")
	if isClosed(c.exited) { // else its output is still being written
		s += "\n" + c.stdout.String()
	}
	return s
}

// report returns the job's -o json report, checked against the results
// it logged: the same outcome for every id, and every id started.
func (c *coordinator) report(t *testing.T) jobJSON {
	t.Helper()
	<-c.exited
	var rep jobJSON
	if err := json.Unmarshal(c.stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%s: its -o json report: %v\n%s", c.name, err, c.tail())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	count := map[core.Outcome]int{}
	var rolledBack, pending []core.GroupID
	for id, o := range c.outcomes {
		count[o]++
		switch o {
		case core.RolledBack:
			rolledBack = append(rolledBack, id)
		case core.Pending:
			pending = append(pending, id)
		}
	}
	slices.Sort(rolledBack)
	slices.Sort(pending)
	if got, want := []int{rep.Done, rep.Unchanged, rep.RolledBack, rep.Pending, rep.NotStarted},
		[]int{count[core.Done], count[core.Unchanged], count[core.RolledBack], count[core.Pending], 0}; !slices.Equal(got, want) {
		t.Errorf("%s: report counts done, unchanged, rolled back, pending, not started %v; its logged results %v", c.name, got, want)
	}
	if !slices.Equal(slices.Sorted(slices.Values(rep.RolledBackIDs)), rolledBack) || !slices.Equal(slices.Sorted(slices.Values(rep.PendingIDs)), pending) {
		t.Errorf("%s: report lists rolled back %v and pending %v; its logged results %v and %v", c.name, rep.RolledBackIDs, rep.PendingIDs, rolledBack, pending)
	}
	return rep
}

// jobJSON is a job's -o json report.
type jobJSON struct {
	core.Report
	NotStarted int `json:"not_started"`
}

// recoverReport is recover's -o json output.
type recoverReport struct {
	Intents []struct {
		Op      core.Op      `json:"op"`
		ID      core.GroupID `json:"id"`
		Token   core.Token   `json:"token"`
		Outcome core.Outcome `json:"outcome"`
		Error   string       `json:"error"`
	} `json:"intents"`
	Done       int `json:"done"`
	RolledBack int `json:"rolled_back"`
	Pending    int `json:"pending"`
}

// recovered returns recover's -o json output.
func (c *coordinator) recovered(t *testing.T) recoverReport {
	t.Helper()
	<-c.exited
	var rep recoverReport
	if err := json.Unmarshal(c.stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%s: its -o json output: %v\n%s", c.name, err, c.tail())
	}
	return rep
}

// logFields returns the key=value fields of a line of slog's text
// handler, quoted values unquoted.
func logFields(line string) map[string]string {
	f := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		k, rest, ok := strings.Cut(line, "=")
		if !ok {
			break
		}
		v := rest
		if strings.HasPrefix(rest, `"`) {
			// The closing quote: the first one not escaped.
			end := 1
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end+1, len(rest))
			v, line = rest[:end], rest[end:]
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
		} else {
			v, line, _ = strings.Cut(rest, " ")
		}
		f[k] = v
	}
	return f
}

// jobRun is one create or delete job of a round, in the order in which the
// round's jobs take effect: each job's operation on an id takes effect,
// if at all, after those of the jobs before it. Across a pause that holds
// for an operation the stopped job had begun (see pauseHistory.unbegun), as
// another process takes the id's lock only once the stopped one lost it
// (its lease expired): the guarantee under test is that it then changes
// nothing.
type jobRun struct {
	job *coordinator
	op  core.Op
}

// pauseHistory is what a round did, as its processes reported it.
type pauseHistory struct {
	what   string
	before map[core.GroupID]bool // the ids every node held before
	ids    []core.GroupID        // the ids the jobs were given
	ignore map[core.GroupID]bool // ids of earlier cases, judged by them
	runs   []jobRun
	// unbegun holds the ids on which the first run, stopped while the
	// others ran, had sent nothing when it was stopped: its operation on
	// one may have begun after the others' (it ran once it resumed), or
	// before (its intent written, no request sent yet).
	unbegun map[core.GroupID]bool
	// stopped and resumed are when the first run was stopped and resumed.
	stopped, resumed time.Time
	recovers         []*coordinator

	after    map[core.GroupID]bool // what every node holds, as judged
	failures map[core.GroupID][]string
}

// owner returns the index of the run whose operation has token tok, or -1
// if that cannot be told. An operation's token is the time it took its
// lock (seconds.micros), on this machine's clock as every process here:
// the other runs ran one after the other while the first was stopped, so a
// token from another run's lifetime is that run's, and one from the first
// run's lifetime outside its stop the first run's. (The requests do not
// tell: a delete that reads first never sends its own token, and a record's
// token, which others' requests carry, may be an undone delete's.)
func (h *pauseHistory) owner(tok core.Token) int {
	at, ok := tokenTime(tok)
	if !ok {
		return -1
	}
	for i, r := range h.runs[1:] {
		if r.job.lived(at) {
			return i + 1
		}
	}
	if h.runs[0].job.lived(at) && (at.Before(h.stopped) || at.After(h.resumed)) {
		return 0
	}
	return -1
}

// tokenTime returns the time a token (seconds.micros) stands for.
func tokenTime(tok core.Token) (time.Time, bool) {
	sec, frac, _ := strings.Cut(string(tok), ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || len(frac) > 9 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(s, ns), true
}

// claim is what one report says of a run's operation on an id: that it
// took effect (done, unchanged) or did not (rolled back).
type claim struct {
	by        string
	effective bool
}

// judge reads every node and checks the round: every id on every node or
// none, and each id's state one that its reports allow. It records what
// it found in h (see fail) and returns how many ids each node holds.
func (c *pauseCluster) judge(t *testing.T, h *pauseHistory) map[string]int {
	t.Helper()
	h.after, h.failures = map[core.GroupID]bool{}, map[core.GroupID][]string{}
	holdings := make([]map[core.GroupID]core.Token, len(c.servers))
	counts := map[string]int{}
	seen := map[core.GroupID]bool{}
	for _, id := range h.ids {
		seen[id] = true
	}
	for i := range c.servers {
		holdings[i] = c.holdings(t, i)
		for id := range holdings[i] {
			if !strings.HasPrefix(string(id), "lapse-") && !h.ignore[id] {
				seen[id] = true
				counts[c.names[i]]++
			}
		}
	}
	failf := func(id core.GroupID, format string, args ...any) {
		h.failures[id] = append(h.failures[id], fmt.Sprintf(format, args...))
	}
	// What each report says of each run's operation on each id.
	claims := map[core.GroupID][][]claim{}
	for _, id := range h.ids {
		claims[id] = make([][]claim, len(h.runs))
		for i, r := range h.runs {
			switch o := r.job.outcomes[id]; o {
			case core.Done, core.Unchanged, core.RolledBack:
				claims[id][i] = append(claims[id][i], claim{r.job.name + " " + string(o), o != core.RolledBack})
			}
		}
	}
	for _, rc := range h.recovers {
		for _, in := range rc.recovered(t).Intents {
			if in.Outcome == core.Pending || claims[in.ID] == nil {
				continue
			}
			i := h.owner(in.Token)
			if i < 0 {
				var logs []string
				for _, r := range h.runs {
					r.job.mu.Lock()
					logs = append(logs, fmt.Sprintf("%s's log of %s:\n\t%s", r.job.name, in.ID, strings.Join(r.job.byID[in.ID], "\n\t")))
					r.job.mu.Unlock()
				}
				t.Logf("%s: %s reports %s %s (token %s) %s, an operation of no job of the round\n%s", h.what, rc.name, in.Op, in.ID, in.Token, in.Outcome, strings.Join(logs, "\n"))
				continue
			}
			claims[in.ID][i] = append(claims[in.ID][i], claim{fmt.Sprintf("%s's recover %s", rc.name, in.Outcome), in.Outcome == core.Done})
		}
	}
	for id := range seen {
		var on []string
		for i, held := range holdings {
			if tok, ok := held[id]; ok {
				on = append(on, fmt.Sprintf("%s (token %s)", c.names[i], tok))
			}
		}
		if len(on) != 0 && len(on) != len(holdings) {
			failf(id, "%s is on %s only", id, strings.Join(on, ", "))
			continue
		}
		held := len(on) != 0
		h.after[id] = held
		if claims[id] == nil {
			if held != h.before[id] {
				failf(id, "%s is held: %v (before the round: %v), but no job of the round was given it", id, held, h.before[id])
			}
			continue
		}
		// Every choice of which operations took effect that the reports
		// allow, applied in the runs' order (or with the first last, if
		// it may have begun after the others).
		orders := [][]int{make([]int, len(h.runs))}
		for i := range orders[0] {
			orders[0][i] = i
		}
		if h.unbegun[id] {
			orders = append(orders, append(slices.Clone(orders[0][1:]), 0))
		}
		could, consistent := map[bool]bool{}, false
		for mask := range 1 << len(h.runs) {
			ok := true
			for i := range h.runs {
				for _, cl := range claims[id][i] {
					ok = ok && cl.effective == (mask&(1<<i) != 0)
				}
			}
			if !ok {
				continue
			}
			consistent = true
			for _, order := range orders {
				state := h.before[id]
				for _, i := range order {
					if mask&(1<<i) != 0 {
						state = h.runs[i].op == core.OpCreate
					}
				}
				could[state] = true
			}
		}
		switch {
		case !consistent:
			failf(id, "%s: the reports contradict each other: %s", id, describeClaims(h, claims[id]))
		case !could[held]:
			failf(id, "%s is held: %v (before the round: %v), which the reports do not allow: %s", id, held, h.before[id], describeClaims(h, claims[id]))
		}
	}
	return counts
}

func describeClaims(h *pauseHistory, claims [][]claim) string {
	var parts []string
	for i, r := range h.runs {
		var by []string
		for _, cl := range claims[i] {
			by = append(by, cl.by)
		}
		if len(by) == 0 {
			by = []string{"nothing known"}
		}
		parts = append(parts, fmt.Sprintf("%s's %s: %s", r.job.name, r.op, strings.Join(by, ", ")))
	}
	return strings.Join(parts, "; ")
}

// fail fails the test with every failure judge found, each id's log lines
// from every process of the round, and the cluster's ports and seed.
func (h *pauseHistory) fail(t *testing.T, c *pauseCluster) {
	t.Helper()
	if len(h.failures) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s):\n", h.what, c)
	procs := make([]*coordinator, 0, len(h.runs)+len(h.recovers))
	for _, r := range h.runs {
		procs = append(procs, r.job)
	}
	procs = append(procs, h.recovers...)
	ids := slices.Sorted(func(yield func(core.GroupID) bool) {
		for id := range h.failures {
			if !yield(id) {
				return
			}
		}
	})
	for k, id := range ids {
		for _, f := range h.failures[id] {
			fmt.Fprintf(&b, "  %s\n", f)
		}
		if k >= 3 {
			continue // the logs of the first few are enough
		}
		for _, p := range procs {
			p.mu.Lock()
			lines := p.byID[id]
			p.mu.Unlock()
			fmt.Fprintf(&b, "    %s's log of %s (%d lines):\n", p.name, id, len(lines))
			for _, l := range lines[max(0, len(lines)-25):] {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
	}
	fmt.Fprintf(&b, "%d ids failed", len(ids))
	t.Fatal(b.String())
}
