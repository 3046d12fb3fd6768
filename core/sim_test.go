package core

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The deterministic simulation, in the manner of FoundationDB's simulator
// and TigerBeetle's VOPR: everything a schedule can observe (the clock, the
// faults, the operations, the crashes) comes from its seed, and the clock
// is the fake one of a synctest bubble, so a schedule of minutes of
// timeouts runs in microseconds and a failing seed replays.
//
// A schedule runs rounds of concurrent creates and deletes on a few ids over
// 1 to 5 fake nodes that inject every fault of the fault model, sometimes as
// the original server would (no tombstones, no replays, no tokens; such
// nodes get no late or duplicated writes, which nothing can fence there);
// in three schedules of four, rops nodes serve Remove, so deletes send no
// read, and its copies get every fault a write gets. In some
// rounds the coordinator's process crashes after a random number of node
// calls: it can send nothing more and write nothing more to its journal,
// though what it had sent goes on at the nodes; a new coordinator over the
// same journal recovers. In others the process loses its locks (an etcd
// lease that expired) after a random number of node calls: the operations
// holding them must send nothing more and end pending. Half the schedules run with a Breaker (see
// Breaker), so a node downed for a round is refused fast. After every round, Checker verifies the nodes
// against the reported outcomes; at the end every fault is healed, every
// late request lands, and nothing may be pending, lost, unexpected or
// divergent.

var (
	simSchedules = flag.Int("sim.schedules", 0, "simulation schedules to run (default 10000; 1000 with -short or -race)")
	simSeed      = flag.Uint64("sim.seed", 0, "run only the simulation schedule with this seed")
)

// simFaults are the faults a schedule draws from; reject stands for a node
// that refuses a request for good.
var simFaults = []fault{errBefore, errAfter, hangBefore, hangAfter, late, reset, duplicate,
	gatewayApplied, gatewayNotApplied, down, reject}

// simStats counts what the schedules did, for the log.
type simStats struct {
	schedules, ops, crashes, recovers atomic.Int64
	lockLosses                        atomic.Int64
	unsure                            atomic.Int64    // schedules whose Begins may time out
	outcomes                          [4]atomic.Int64 // done, unchanged, rolled back, pending
	refused                           atomic.Int64    // requests a breaker refused
	removes                           atomic.Int64    // Remove calls the nodes saw
	faults                            [numFaults]atomic.Int64
}

func TestSimulation(t *testing.T) {
	seeds := regressionSeeds(t)
	n := *simSchedules
	switch {
	case *simSeed != 0:
		seeds, n = []uint64{*simSeed}, 0
	case n == 0 && (testing.Short() || raceEnabled):
		n = 1000
	case n == 0:
		n = 10000
	}
	// A seed from the file or the flag runs without and with a breaker;
	// a new seed draws whether it has one.
	var scheds []schedule
	for _, seed := range seeds {
		scheds = append(scheds, schedule{seed, false}, schedule{seed, true})
	}
	base := uint64(time.Now().UnixNano())
	for i := range n {
		seed := base + uint64(i)
		scheds = append(scheds, schedule{seed, draw(seed, "breaker") < 0.5})
	}
	t.Logf("%d schedules, seeds %d.. (and %d regression seeds from testdata, each without and with a breaker)", n, base, len(seeds))

	var st simStats
	start := time.Now()
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
			t.Parallel()
			for i := w; i < len(scheds); i += workers {
				sc := scheds[i]
				synctest.Test(t, func(t *testing.T) { runSchedule(t, sc.seed, sc.breaker, &st) })
				if t.Failed() {
					t.Fatalf("schedule %d (breaker=%v) failed; replay it with: go test ./core -run 'TestSimulation$' -sim.seed=%d -v", sc.seed, sc.breaker, sc.seed)
				}
			}
		})
	}
	t.Cleanup(func() {
		var fs []string
		for f := range numFaults {
			if c := st.faults[f].Load(); c > 0 {
				fs = append(fs, fmt.Sprintf("%s=%d", f, c))
			}
		}
		t.Logf("%d schedules in %.1fs: %d operations (done %d, unchanged %d, rolled back %d, pending %d), %d crashes, %d locks lost, %d schedules with unsure Begins, %d recovers, %d requests refused by a breaker, %d Removes; faults: %s",
			st.schedules.Load(), time.Since(start).Seconds(), st.ops.Load(), st.outcomes[0].Load(), st.outcomes[1].Load(),
			st.outcomes[2].Load(), st.outcomes[3].Load(), st.crashes.Load(), st.lockLosses.Load(), st.unsure.Load(), st.recovers.Load(), st.refused.Load(), st.removes.Load(), strings.Join(fs, " "))
	})
}

// schedule is one run of the simulation: its seed, and whether its
// coordinators have a Breaker.
type schedule struct {
	seed    uint64
	breaker bool
}

// regressionSeeds reads testdata/sim-seeds.txt: seeds that once failed, one
// a line, # comments.
func regressionSeeds(t *testing.T) []uint64 {
	f, err := os.Open("testdata/sim-seeds.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seeds []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		s, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("testdata/sim-seeds.txt: %v", err)
		}
		seeds = append(seeds, s)
	}
	return seeds
}

// draw returns a number in [0, 1) that depends only on the seed and the
// parts, so that concurrent calls draw the same whatever their order.
func draw(seed uint64, parts ...any) float64 {
	h := fnv.New64a()
	fmt.Fprint(h, seed)
	for _, p := range parts {
		fmt.Fprint(h, "\x00", p)
	}
	return float64(h.Sum64()>>11) / (1 << 53)
}

// process is one coordinator process: its nodes and journal go dead once it
// crashes.
type process struct {
	c       *Coordinator
	mu      sync.Mutex
	calls   int
	crashAt int // crash before this call; -1: never
	crashed bool
	loseAt  int // lose every lock held before this call; -1: never
	locks   *losableLocker
	// unsure is the chance that a Begin times out: it records the intent
	// or not (half each) and fails with ETransient. The journal then stays
	// unreachable for that intent's next Finish (the withdrawal) and
	// Update, half the time.
	unsure float64
	seed   uint64
	down   map[Token]int // unsure Begins: calls of the token still to fail
}

var errDead = errors.New("the coordinator's process is dead")

// enter counts a call and says whether the process may make it.
func (p *process) enter() error {
	p.mu.Lock()
	if !p.crashed && p.crashAt >= 0 && p.calls >= p.crashAt {
		p.crashed = true
	}
	lose := p.loseAt >= 0 && p.calls >= p.loseAt
	if lose {
		p.loseAt = -1
	}
	p.calls++
	crashed := p.crashed
	p.mu.Unlock()
	if lose {
		// This call was on its way: it goes on; nothing after it may.
		p.locks.lose()
	}
	if crashed {
		return &Error{Code: EUnavailable, Message: errDead.Error()}
	}
	return nil
}

func (p *process) dead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashed
}

// procNode is a node as one process reaches it.
type procNode struct {
	*fakeNode
	p *process
}

func (n procNode) Unwrap() Node { return n.fakeNode }
func (n procNode) Create(ctx context.Context, id GroupID, tok Token) error {
	if err := n.p.enter(); err != nil {
		return err
	}
	return n.fakeNode.Create(ctx, id, tok)
}
func (n procNode) Delete(ctx context.Context, id GroupID, tok Token) error {
	if err := n.p.enter(); err != nil {
		return err
	}
	return n.fakeNode.Delete(ctx, id, tok)
}
func (n procNode) Remove(ctx context.Context, id GroupID, before Token) (Token, error) {
	if err := n.p.enter(); err != nil {
		return "", err
	}
	return n.fakeNode.Remove(ctx, id, before)
}
func (n procNode) Get(ctx context.Context, id GroupID) (Record, error) {
	if err := n.p.enter(); err != nil {
		return Record{}, err
	}
	return n.fakeNode.Get(ctx, id)
}

// procJournal is the journal as one process writes it: nothing once dead.
type procJournal struct {
	*fakeJournal
	p *process
}

func (j procJournal) Begin(ctx context.Context, in Intent) error {
	if j.p.dead() {
		return errDead
	}
	if j.p.unsure > 0 && draw(j.p.seed, "unsure", in.Token) < j.p.unsure {
		if draw(j.p.seed, "unsureRecorded", in.Token) < 0.5 {
			if err := j.fakeJournal.Begin(ctx, in); err != nil {
				return err
			}
		}
		if draw(j.p.seed, "unsureDown", in.Token) < 0.5 {
			j.p.mu.Lock()
			j.p.down[in.Token] = 2 // the withdrawal and the mark
			j.p.mu.Unlock()
		}
		return Errorf(ETransient, "journal: the write of intent %s timed out", in.Token)
	}
	return j.fakeJournal.Begin(ctx, in)
}

// unreachable says whether the journal is still down for tok, counting the
// call.
func (j procJournal) unreachable(tok Token) bool {
	j.p.mu.Lock()
	defer j.p.mu.Unlock()
	if j.p.down[tok] == 0 {
		return false
	}
	j.p.down[tok]--
	return true
}

func (j procJournal) Update(ctx context.Context, in Intent) error {
	if j.p.dead() {
		return errDead
	}
	if j.unreachable(in.Token) {
		return Errorf(ETransient, "journal: unreachable")
	}
	return j.fakeJournal.Update(ctx, in)
}
func (j procJournal) Finish(ctx context.Context, tok Token) error {
	if j.p.dead() {
		return errDead
	}
	if j.unreachable(tok) {
		return Errorf(ETransient, "journal: unreachable")
	}
	return j.fakeJournal.Finish(ctx, tok)
}

// newProcess starts a coordinator process over nodes and j that crashes
// before its crashAt-th node call (never if crashAt < 0), with a Breaker of
// its own if breaker is set.
func newProcess(t *testing.T, seed uint64, nodes fakeCluster, j *fakeJournal, crashAt int, breaker bool) *process {
	p := &process{crashAt: crashAt, loseAt: -1, locks: &losableLocker{}, seed: seed, down: map[Token]int{}}
	ns := make([]Node, len(nodes))
	for i, n := range nodes {
		ns[i] = procNode{n, p}
	}
	cfg := Config{Nodes: ns, Journal: procJournal{j, p}, Locks: p.locks, Rand: rand.New(NewLockedSource(seed))}
	if breaker {
		cfg.Breaker = NewBreaker(BreakerOptions{})
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.c = c
	return p
}

// refused returns how many requests p's breaker refused.
func (p *process) refused() int {
	n := 0
	if b := p.c.cfg.Breaker; b != nil {
		for _, node := range p.c.cfg.Nodes {
			n += b.Refused(node.Name())
		}
	}
	return n
}

func runSchedule(t *testing.T, seed uint64, breaker bool, st *simStats) {
	rng := rand.New(rand.NewPCG(seed, 0x51))
	size := 1 + rng.IntN(5)
	nodes := newCluster(size)
	original := rng.IntN(4) == 0
	rate := []float64{0, 0.1, 0.2, 0.35}[rng.IntN(4)]
	// Some schedules of rops nodes delete reading first, as against nodes
	// that serve no Remove; drawn apart from rng, so that adding it did not
	// change the schedules.
	noRemove := draw(seed, "noRemove") < 0.25
	for _, n := range nodes {
		if original {
			n.original()
		}
		n.removes = !noRemove
		n.fn = func(c call) fault {
			if c.Method == "List" || c.Method == "Count" || draw(seed, n.name, c.Method, c.ID, c.KID) >= rate {
				return pass
			}
			f := simFaults[int(draw(seed, "which", n.name, c.Method, c.ID, c.KID)*float64(len(simFaults)))]
			if (f == duplicate || f == late) && original {
				// A limit of the original server: without tombstones,
				// nothing fences a write that lands after its operation
				// ended (README says so); rops waits out late writes
				// only when it undoes one (TestRegressionLateCreateAfterUndo).
				f = errAfter
			}
			st.faults[f].Add(1)
			return f
		}
	}
	ids := []GroupID{"a", "b", "c", "d"}[:2+rng.IntN(3)]
	j := &fakeJournal{}
	chk := NewChecker()
	fail := func(format string, args ...any) {
		t.Errorf("seed %d (%d nodes, original=%v, noRemove=%v, rate %v, breaker=%v): %s\nnodes: %v\njournal: %+v",
			seed, size, original, noRemove, rate, breaker, fmt.Sprintf(format, args...), nodes, j.left())
	}
	verify := func(when string, extra []GroupID) bool {
		v := chk.Verify(size, func(id GroupID) int { return len(nodes.holders(id)) }, extra)
		if !v.OK() {
			fail("%s: lost %v, unexpected %v, divergent %v", when, v.Lost, v.Unexpected, v.Divergent)
		}
		return v.OK()
	}
	recoverAll := func(p *process) {
		st.recovers.Add(1)
		results, _ := p.c.Recover(context.Background(), 0)
		if *simSeed != 0 {
			for _, res := range results {
				t.Logf("recover: %s %s -> %s (%v) %v", res.Op, res.ID, res.Outcome, res.Err, res.Nodes)
			}
		}
		var still []GroupID
		for _, res := range results {
			if res.Outcome == Pending {
				still = append(still, res.ID)
			}
		}
		chk.Resolve(still)
	}

	// Some schedules' journals time out on Begins that may still have
	// recorded their intents; drawn apart from rng.
	unsure := 0.0
	if draw(seed, "unsureBegins") < 0.25 {
		unsure = 0.15
		st.unsure.Add(1)
	}
	p := newProcess(t, seed, nodes, j, -1, breaker)
	p.unsure = unsure
	rounds := 2 + rng.IntN(5)
	for round := range rounds {
		crash := rng.IntN(4) == 0
		if crash {
			p.mu.Lock()
			p.crashAt = p.calls + rng.IntN(4*len(ids)*size)
			p.mu.Unlock()
		}
		// Drawn apart from rng, so that adding it did not change the
		// schedules.
		if !crash && draw(seed, "lose", round) < 0.15 {
			st.lockLosses.Add(1)
			p.mu.Lock()
			p.loseAt = p.calls + int(draw(seed, "loseAt", round)*float64(4*len(ids)*size))
			p.mu.Unlock()
		}
		downNode := -1
		if rng.IntN(6) == 0 {
			downNode = rng.IntN(size)
			nodes[downNode].mu.Lock()
			nodes[downNode].down = true
			nodes[downNode].mu.Unlock()
		}
		order := rng.Perm(len(ids))[:1+rng.IntN(len(ids))]
		var wg sync.WaitGroup
		for _, i := range order {
			id, op := ids[i], OpCreate
			if rng.IntN(2) == 0 {
				op = OpDelete
			}
			wg.Go(func() {
				var res Result
				if op == OpCreate {
					res, _ = p.c.Create(context.Background(), id)
				} else {
					res, _ = p.c.Delete(context.Background(), id)
				}
				st.ops.Add(1)
				if p.dead() {
					if *simSeed != 0 {
						t.Logf("round %d: %s %s crashed", round, op, id)
					}
					// The process died before it could report.
					chk.Crashed(op, id)
					return
				}
				if *simSeed != 0 {
					t.Logf("round %d: %s %s -> %s (%v) %v", round, op, id, res.Outcome, res.Err, res.Nodes)
				}
				st.outcomes[map[Outcome]int{Done: 0, Unchanged: 1, RolledBack: 2, Pending: 3}[res.Outcome]].Add(1)
				chk.Record(res)
			})
		}
		wg.Wait()
		if downNode >= 0 {
			nodes[downNode].mu.Lock()
			nodes[downNode].down = false
			nodes[downNode].mu.Unlock()
		}
		p.mu.Lock()
		p.crashAt, p.loseAt = -1, -1 // planned for this round and not reached
		p.mu.Unlock()
		if p.dead() {
			st.crashes.Add(1)
			st.refused.Add(int64(p.refused()))
			p = newProcess(t, seed+uint64(round)+1, nodes, j, -1, breaker)
			p.unsure = unsure
			recoverAll(p)
		} else if len(chk.Pending()) > 0 && rng.IntN(2) == 0 {
			recoverAll(p)
		}
		if !verify(fmt.Sprintf("after round %d", round), nil) {
			return
		}
	}

	// The end: heal, recover, let every late request land, and check that
	// nothing is pending and every id agrees with the history.
	nodes.heal()
	for i := range 3 {
		if len(chk.Pending()) == 0 {
			break
		}
		if i > 0 && breaker {
			// A breaker opened by a node down in the last round refuses
			// until its cooldown is over.
			time.Sleep(p.c.cfg.Breaker.Options().Cooldown)
		}
		recoverAll(p)
	}
	st.refused.Add(int64(p.refused()))
	for _, n := range nodes {
		st.removes.Add(int64(n.callCount("Remove")))
	}
	time.Sleep(time.Hour)
	synctest.Wait()
	if pend := chk.Pending(); len(pend) > 0 {
		fail("still pending after recover with every fault healed: %v", pend)
		return
	}
	if !verify("after every late request landed", nodes.ids()) {
		return
	}
	if left := j.left(); len(left) != 0 {
		fail("the journal still holds %d intents", len(left))
	}
	st.schedules.Add(1)
}
