package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/history"
	"github.com/reliable-ops/rops/journals/etcd"
	"github.com/reliable-ops/rops/nemesis"
)

// CoordinatorFlags are check's flags for a workload run by many coordinator
// processes over one etcd journal, which the nemesis's coordinator faults
// strike (issue 18 point 3).
type CoordinatorFlags struct {
	Coordinators int `placeholder:"N" help:"Run the workload in N coordinator processes (rops check workers, each with its share of the operations, all on the same ids) over the --journal etcd://... given, and judge their merged history; pause-coordinator and kill-coordinator in --nemesis strike them."`

	// A worker's flags, given by the check that starts it.
	Worker       int   `hidden:"" help:"Run as coordinator K of a check's --coordinators: the workload only, each operation written to stdout as it is called and as it returns."`
	HistoryStart int64 `hidden:"" help:"The history's start in Unix nanoseconds: a worker's times are the wall clock's since then."`
	ProcessBase  int   `hidden:"" help:"A worker's first process number in the history."`
}

// coordinatorMargin is how long a coordinator fault outlasts the lease: a
// paused coordinator's locks are others' once it passed, and a killed one's
// intents recover's.
const coordinatorMargin = time.Second

// maxLeaseForFaults is the longest lease that coordinator faults accept:
// each of their windows outlasts it, and a check of seconds would see few.
const maxLeaseForFaults = 5 * time.Second

// checkCoordinators checks --coordinators and the worker's flags against
// the others, and fs (--nemesis's faults).
func checkCoordinators(c *CheckCmd, g *Globals, fs []nemesis.Fault) error {
	if c.Worker > 0 {
		if c.Coordinators > 0 || c.Spawn > 0 || len(fs) > 0 || c.HistoryStart <= 0 {
			return errors.New("--worker is check's own: it starts its workers with --history-start and without --coordinators, --spawn or --nemesis")
		}
		return nil
	}
	i := slices.IndexFunc(fs, nemesis.Fault.Coordinator)
	switch {
	case c.Coordinators < 0 || c.Coordinators > 32:
		return fmt.Errorf("--coordinators %d is out of range: give 1 to 32 processes (or 0 for the check's own)", c.Coordinators)
	case i >= 0 && c.Coordinators == 0:
		return fmt.Errorf("--nemesis %s needs --coordinators N and --journal etcd://HOST:PORT/PREFIX?ttl=2s: it strikes the check's coordinator processes, which share that journal and its locks", fs[i])
	case c.Coordinators == 0:
		return nil
	case !strings.HasPrefix(g.Journal, "etcd://"):
		return fmt.Errorf("--coordinators %d needs --journal etcd://HOST:PORT/PREFIX: the processes share the journal and the locks of the ids in etcd", c.Coordinators)
	case c.Spawn == 0 && g.Target == "local":
		return fmt.Errorf("--coordinators %d needs nodes the processes share: --spawn N, or a --target of rops serve nodes (the local target is each process's own)", c.Coordinators)
	case c.Chaos > 0:
		return fmt.Errorf("--coordinators %d and --chaos: give --nemesis's faults instead", c.Coordinators)
	}
	if i >= 0 {
		ttl, err := leaseOf(g.Journal)
		if err != nil {
			return fmt.Errorf("--journal %s: %w", g.Journal, err)
		}
		if ttl > maxLeaseForFaults {
			return fmt.Errorf("--nemesis %s strikes a coordinator past its lease, and the journal's is %v: give a short one in --journal, such as ?ttl=2s (%v at most)", fs[i], ttl, maxLeaseForFaults)
		}
	}
	return nil
}

// leaseOf returns the lease of the etcd journal at u: its ttl, or etcd's
// default.
func leaseOf(u string) (time.Duration, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return 0, err
	}
	s := pu.Query().Get("ttl")
	if s == "" {
		return etcd.DefaultTTL, nil
	}
	ttl, err := time.ParseDuration(s)
	if err != nil || ttl <= 0 {
		return 0, fmt.Errorf("ttl=%s: give a positive duration such as 2s", s)
	}
	return ttl, nil
}

// workerLine is one line of a worker's stdout: an operation as it is
// called (pending, no return) or as it returned, the first and the second
// line of each process's operation.
type workerLine struct {
	Op       json.RawMessage `json:"op"` // a history line
	Requests int             `json:"requests,omitempty"`
	Took     time.Duration   `json:"took_ns,omitempty"`
}

// runWorker runs a worker's share of the workload on the ids of the check
// that started it, drawing its operations from a stream of the seed of its
// own, and writes each operation to stdout as it is called and as it
// returns, on the wall clock since --history-start.
func (c *CheckCmd) runWorker(ctx context.Context, g *Globals, cl *Cluster, stdout io.Writer) error {
	seed := g.seed()
	ids := checkIDs(c.Prefix, seed, c.IDs)
	w := &workload{c: cl.Coordinator, chk: core.NewChecker(), ids: ids, rng: rand.New(rand.NewPCG(seed, 0xC4EC+uint64(c.Worker))), busy: map[core.GroupID]bool{}, pending: map[core.GroupID]bool{}}
	w.free = sync.NewCond(&w.mu)
	var deadline time.Time
	if c.Duration > 0 {
		deadline = time.Now().Add(c.Duration)
	}
	start := time.Unix(0, c.HistoryStart) // no monotonic reading: the wall clock, as the check's
	var mu sync.Mutex
	var werr error
	emit := func(op history.Op, requests int, took time.Duration) {
		b, err := history.Marshal(op)
		if err == nil {
			b, err = json.Marshal(workerLine{Op: b, Requests: requests, Took: took})
		}
		mu.Lock()
		defer mu.Unlock()
		if err == nil && werr == nil {
			// One write a line: a worker killed mid-line leaves none.
			_, err = stdout.Write(append(b, '\n'))
		}
		if werr == nil {
			werr = err
		}
	}
	var wg sync.WaitGroup
	for p := range min(cl.concurrency, c.IDs) {
		wg.Go(func() {
			for ctx.Err() == nil {
				t, ok := w.take(c.Ops, deadline)
				if !ok {
					return
				}
				op := history.Op{Kind: history.Create, Process: c.ProcessBase + p, ID: string(t.id), Outcome: history.Pending, Call: time.Since(start), Return: history.NoReturn}
				if t.op == core.OpDelete {
					op.Kind = history.Delete
				}
				emit(op, 0, 0)
				began := time.Now()
				res, _ := runOp(ctx, cl.Coordinator, t.op, t.id)
				took := time.Since(began)
				op.Outcome, op.Token = history.Outcome(res.Outcome), string(res.Token)
				if res.Outcome != core.Pending {
					op.Return = max(time.Since(start), op.Call)
				}
				emit(op, res.Requests, took)
				w.mu.Lock()
				delete(w.busy, t.id)
				w.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return werr
}

// checkIDs returns the ids of a check: PREFIX-SEED-N.
func checkIDs(prefix string, seed uint64, n int) []core.GroupID {
	ids := make([]core.GroupID, n)
	for i := range ids {
		ids[i] = core.GroupID(fmt.Sprintf("%s-%d-%d", prefix, seed, i))
	}
	return ids
}

// crew is the coordinator processes of --coordinators: it starts them,
// merges what they write into the check's history, and is the nemesis's
// way to pause and kill them. Its methods are safe for concurrent use.
type crew struct {
	c      *CheckCmd
	g      *Globals
	run    *checkRun
	bin    string
	dir    string // the workers' and recovers' --data, removed by close
	ttl    time.Duration
	stderr io.Writer
	ctx    context.Context // the workers'

	// start is the history's start on the wall clock, at offset of the
	// history's own clock: a worker's times are from start.
	start  time.Time
	offset time.Duration

	deadline time.Time // of --duration; zero with --ops
	slots    []*slot

	mu        sync.Mutex
	launched  int // processes started, for their process numbers
	rep       core.Report
	latencies []time.Duration
	touched   map[core.GroupID]bool
	errs      []error
}

// newCrew returns the crew of --coordinators, not started; nil without.
func (c *CheckCmd) newCrew(ctx context.Context, g *Globals, run *checkRun, stderr io.Writer) (*crew, error) {
	if c.Coordinators == 0 {
		return nil, nil
	}
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--coordinators: cannot find the rops binary: %w", err)
	}
	ttl, err := leaseOf(g.Journal)
	if err != nil {
		return nil, usageError(fmt.Errorf("--journal %s: %w", g.Journal, err))
	}
	dir, err := os.MkdirTemp(scratchDir(g), "rops-check-coordinators-*")
	if err != nil {
		return nil, fmt.Errorf("--coordinators: %w", err)
	}
	cr := &crew{c: c, g: g, run: run, bin: bin, dir: dir, ttl: ttl, stderr: stderr, ctx: ctx, touched: map[core.GroupID]bool{}}
	if !g.Quiet {
		fmt.Fprintf(stderr, "check: --coordinators %d: over %s (lease %v); their data in %s\n", c.Coordinators, g.Journal, ttl, dir)
	}
	for k := range c.Coordinators {
		s := &slot{cr: cr, k: k + 1, over: make(chan struct{})}
		if c.Duration == 0 {
			s.share = c.Ops / c.Coordinators
			if k < c.Ops%c.Coordinators {
				s.share++
			}
		}
		cr.slots = append(cr.slots, s)
	}
	return cr, nil
}

// nodes returns the coordinators as the nemesis's nodes; none for a nil
// crew.
func (cr *crew) nodes() []nemesis.Node {
	if cr == nil {
		return nil
	}
	var ns []nemesis.Node
	for _, s := range cr.slots {
		ns = append(ns, nemesis.Node{Name: s.name(), Process: s, Coordinator: true, Outlast: cr.ttl + coordinatorMargin})
	}
	return ns
}

// work starts every coordinator and returns once each ran its share to the
// end (killed ones restarted for what was left of it), or ctx ended.
func (cr *crew) work(deadline time.Time) {
	cr.deadline = deadline
	cr.start = time.Now()
	cr.offset = cr.run.hist.Now()
	for _, s := range cr.slots {
		s.mu.Lock()
		err := s.launch()
		s.mu.Unlock()
		if err != nil {
			cr.fail(err)
			s.end()
		}
	}
	for _, s := range cr.slots {
		<-s.over
	}
}

// end adds what the coordinators did to the check's report, and makes w's
// checker take each id they touched as either present or absent: their
// operations on an id overlap, and only the history, judged as a whole,
// says which orders explain them. It returns the failures of processes
// the nemesis did not kill.
func (cr *crew) end(w *workload) error {
	if cr == nil {
		return nil
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	w.mu.Lock()
	w.rep, w.latencies = cr.rep, cr.latencies
	w.mu.Unlock()
	for id := range cr.touched {
		w.chk.Crashed(core.OpCreate, id)
		w.chk.Crashed(core.OpDelete, id)
	}
	return errors.Join(cr.errs...)
}

// close kills what still runs and removes the crew's directory.
func (cr *crew) close() {
	if cr == nil {
		return
	}
	for _, s := range cr.slots {
		_ = s.Kill()
	}
	os.RemoveAll(cr.dir)
}

func (cr *crew) fail(err error) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.errs = append(cr.errs, err)
}

// globalArgs are the flags of a worker's or a recover's process: the
// check's target and journal, a --data of its own, and its timeouts.
func (cr *crew) globalArgs(data string) []string {
	g := cr.g
	args := []string{"--target", g.Target, "--journal", g.Journal, "--data", data, "--seed", strconv.FormatUint(g.seed(), 10), "-q",
		"--request-timeout", g.RequestTimeout.String(), "--operation-timeout", g.OperationTimeout.String(),
		"--compensation-timeout", g.CompensationTimeout.String()}
	if g.Config != "" {
		args = append(args, "--config", g.Config)
	}
	if g.Remote != "" {
		args = append(args, "--remote", string(g.Remote))
	}
	if g.Retries != nil {
		args = append(args, "--retries", strconv.Itoa(*g.Retries))
	}
	if g.Concurrency != nil {
		args = append(args, "--concurrency", *g.Concurrency)
	}
	return args
}

// recover runs rops recover in a fresh process on the crew's journal, so
// that what a killed coordinator left is settled.
func (cr *crew) recover(ctx context.Context, name string) error {
	data := filepath.Join(cr.dir, name)
	cmd := nemesis.Command(ctx, cr.bin, append(cr.globalArgs(data), "recover")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("rops recover after %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// merge reads a worker's lines until it exits, writing each operation as
// it returns into the history, on the history's clock; an operation still
// under way when the worker died is written as it was called: pending,
// with no return.
func (cr *crew) merge(s *slot, r io.Reader) {
	open := map[int]history.Op{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	record := func(op history.Op, requests int, took time.Duration) {
		_ = cr.run.hist.Write(op) // a write error is sticky: Flush returns it
		cr.mu.Lock()
		defer cr.mu.Unlock()
		cr.rep.Requested++
		cr.rep.Add(core.Result{ID: core.GroupID(op.ID), Outcome: core.Outcome(op.Outcome), Requests: requests})
		if took > 0 { // not one a worker died in
			cr.latencies = append(cr.latencies, took)
		}
		cr.touched[core.GroupID(op.ID)] = true
	}
	for sc.Scan() {
		var l workerLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			cr.fail(fmt.Errorf("%s wrote %q: %w", s.name(), sc.Text(), err))
			continue
		}
		op, err := history.Unmarshal(l.Op)
		if err != nil {
			cr.fail(fmt.Errorf("%s wrote %q: %w", s.name(), sc.Text(), err))
			continue
		}
		op.Call += cr.offset
		if op.Return != history.NoReturn {
			op.Return += cr.offset
		}
		if _, ok := open[op.Process]; !ok {
			open[op.Process] = op
			s.called()
			continue
		}
		delete(open, op.Process)
		record(op, l.Requests, l.Took)
	}
	for _, p := range slices.Sorted(maps.Keys(open)) {
		record(open[p], 0, 0)
	}
}

// slot is one coordinator of the crew: a worker process, started again
// after the nemesis kills it, for what is left of its share. It is the
// nemesis's Process of the coordinator.
type slot struct {
	cr *crew
	k  int // 1 first

	mu       sync.Mutex
	cmd      *workerProc   // the running worker; nil before the first
	killedAt time.Time     // zero unless the nemesis killed it
	calls    int           // operations called, over its processes
	share    int           // of --ops; 0 with --duration
	over     chan struct{} // closed once it starts no more processes
	ended    bool
}

var _ nemesis.Process = (*slot)(nil)

// workerProc is a worker process, and done closed once it exited and its
// lines are merged.
type workerProc struct {
	p    *os.Process
	done chan struct{}
}

func (s *slot) name() string { return fmt.Sprintf("coordinator %d", s.k) }

func (s *slot) called() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
}

// end says that the slot starts no more processes.
func (s *slot) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.ended = true
		close(s.over)
	}
}

// launch starts a worker for what is left of the slot's share, or ends
// the slot if nothing is; s.mu held.
func (s *slot) launch() error {
	cr, c := s.cr, s.cr.c
	var rest []string
	if c.Duration > 0 {
		left := time.Until(cr.deadline)
		if left < 100*time.Millisecond {
			go s.end()
			return nil
		}
		rest = []string{"--duration", left.Round(time.Millisecond).String()}
	} else {
		left := s.share - s.calls
		if left <= 0 {
			go s.end()
			return nil
		}
		rest = []string{"--ops", strconv.Itoa(left)}
	}
	cr.mu.Lock()
	cr.launched++
	n := cr.launched
	cr.mu.Unlock()
	data := filepath.Join(cr.dir, fmt.Sprintf("coordinator%d-%d", s.k, n))
	args := append(cr.globalArgs(data), "check", "--worker", strconv.Itoa(s.k),
		"--history-start", strconv.FormatInt(cr.start.UnixNano(), 10), "--process-base", strconv.Itoa(10000*n),
		"--ids", strconv.Itoa(c.IDs), "--prefix", c.Prefix)
	cmd := nemesis.Command(cr.ctx, cr.bin, append(args, rest...)...)
	cmd.Stderr = cr.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%s: %w", s.name(), err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.name(), err)
	}
	if !cr.g.Quiet {
		fmt.Fprintf(cr.stderr, "check: %s: pid %d, processes from %d, %s\n", s.name(), cmd.Process.Pid, 10000*n, strings.Join(rest, " "))
	}
	nc := &workerProc{p: cmd.Process, done: make(chan struct{})}
	s.cmd, s.killedAt = nc, time.Time{}
	go func() {
		cr.merge(s, out)
		err := cmd.Wait()
		s.mu.Lock()
		killed := !s.killedAt.IsZero()
		s.mu.Unlock()
		close(nc.done)
		if killed {
			return // Restart goes on with its share
		}
		if err != nil && cr.ctx.Err() == nil {
			cr.fail(fmt.Errorf("%s (pid %d): %w", s.name(), nc.p.Pid, err))
		}
		s.end()
	}()
	return nil
}

// running returns the worker running, or nil.
func (s *slot) running() *workerProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || isClosed(s.cmd.done) || !s.killedAt.IsZero() {
		return nil
	}
	return s.cmd
}

// Kill kills the running worker with SIGKILL, paused or not, and returns
// once it is dead and its lines are merged. With none running, it does
// nothing.
func (s *slot) Kill() error {
	s.mu.Lock()
	nc := s.cmd
	if nc == nil || isClosed(nc.done) || !s.killedAt.IsZero() {
		s.mu.Unlock()
		return nil
	}
	s.killedAt = time.Now()
	s.mu.Unlock()
	if err := nc.p.Kill(); err != nil && !isClosed(nc.done) {
		return fmt.Errorf("kill %s (pid %d): %w", s.name(), nc.p.Pid, err)
	}
	<-nc.done
	return nil
}

// Restart settles what the killed worker left, once its lease expired,
// with rops recover, and starts a worker for what is left of its share.
// With none killed, it does nothing.
func (s *slot) Restart(ctx context.Context) error {
	s.mu.Lock()
	at := s.killedAt
	s.mu.Unlock()
	if at.IsZero() {
		return nil
	}
	t := time.NewTimer(time.Until(at.Add(s.cr.ttl + coordinatorMargin)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.cr.ctx.Done():
	}
	if s.cr.ctx.Err() != nil {
		s.end() // the check was stopped: its final recover settles what is left
		return nil
	}
	err := s.cr.recover(ctx, fmt.Sprintf("recover-%d-%d", s.k, at.UnixNano()))
	s.mu.Lock()
	defer s.mu.Unlock()
	if lerr := s.launch(); lerr != nil {
		go s.end()
		err = errors.Join(err, lerr)
	}
	return err
}

// Pause stops the running worker with SIGSTOP; with none, it does nothing.
func (s *slot) Pause() error {
	if nc := s.running(); nc != nil {
		return nemesis.Stop(nc.p)
	}
	return nil
}

// Resume continues it with SIGCONT; with none, it does nothing.
func (s *slot) Resume() error {
	s.mu.Lock()
	nc := s.cmd
	s.mu.Unlock()
	if nc != nil && !isClosed(nc.done) {
		return nemesis.Continue(nc.p)
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
