package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kong"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/history"
	"github.com/reliable-ops/rops/nemesis"
)

// CheckCmd runs a seeded mix of creates and deletes on ids of its own and
// judges what the target did with them, as Jepsen's set checker does.
type CheckCmd struct {
	Ops      int           `default:"1000" help:"Operations to run; not with --duration."`
	Duration time.Duration `help:"Run operations for this long instead of a number of them; not with --ops."`
	IDs      int           `name:"ids" default:"64" help:"How many ids the operations share: fewer ids, more operations on each."`
	Prefix   string        `default:"rops-check" help:"Ids are PREFIX-SEED-N: they must belong to no one else."`
	Chaos    float64       `placeholder:"P" help:"Halfway through, switch on late, reset, duplicate, gateway and batch faults at this rate each: on local nodes, or through a remote server's admin API (rops serve --admin)."`
	History  string        `placeholder:"FILE" predictor:"file" help:"Write the run's history to FILE: JSON Lines, one line for each create, delete and read, and for each fault window (README, Histories and rops verify)."`
	Report   string        `placeholder:"DIR" predictor:"dir" help:"Write a report into DIR: history.jsonl, history.html (porcupine's page, at the first error), latency.png, rate.png and summary.json (with the recovery time after each fault window)."`
	NemesisFlags
	CoordinatorFlags
}

// checkJSON is what check prints.
type checkJSON struct {
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
	// RoundTripsOp is the HTTP round trips per operation: fewer than
	// RequestsOp where batches carry many requests; 0 for local nodes.
	RoundTripsOp float64 `json:"round_trips_per_op"`
	P50ms        float64 `json:"latency_p50_ms"`
	P99ms        float64 `json:"latency_p99_ms"`
	Seconds      float64 `json:"seconds"`
	Chaos        string  `json:"chaos,omitempty"`
	// Linearizable is rops verify's verdict on the run's history, which
	// History describes.
	Linearizable bool             `json:"linearizable"`
	History      checkHistoryJSON `json:"history"`
	Report       string           `json:"report,omitempty"` // --report
	OK           bool             `json:"ok"`
}

// checkHistoryJSON is the run's history as history.Verify judged it.
type checkHistoryJSON struct {
	File    string     `json:"file,omitempty"` // --history, if given
	Ops     int        `json:"ops"`            // creates, deletes and reads
	IDs     int        `json:"ids"`
	Nemeses int        `json:"nemeses"`        // fault windows
	Seconds float64    `json:"verify_seconds"` // reading and judging it
	Failed  []string   `json:"failed"`         // the ids that cannot be explained
	First   *firstJSON `json:"first,omitempty"`
}

// Validate checks the flags: k tells which were given.
func (c *CheckCmd) Validate(k *kong.Context) error {
	given := givenFlags(k)
	switch {
	case given["ops"] && given["duration"]:
		return fmt.Errorf("--ops %d and --duration %v conflict: give --ops N to run N operations, or --duration D to run for D, not both", c.Ops, c.Duration)
	case c.Ops < 1 && c.Duration <= 0:
		return fmt.Errorf("--ops %d: give 1 or more operations, or a --duration", c.Ops)
	case c.Duration < 0:
		return fmt.Errorf("--duration %v is negative: give a duration such as 30s", c.Duration)
	case c.IDs < 1 || c.IDs > 1_000_000:
		return fmt.Errorf("--ids %d is out of range: give 1 to 1000000", c.IDs)
	case !(c.Chaos >= 0 && c.Chaos <= 1):
		return fmt.Errorf("--chaos %v is out of range: give a probability from 0 to 1", c.Chaos)
	}
	if _, err := core.ParseGroupID(c.Prefix + "-1-1"); err != nil {
		return fmt.Errorf("--prefix %q cannot start an id: %w", c.Prefix, err)
	}
	return nil
}

// openMode: the check changes records, after what earlier runs left.
func (*CheckCmd) openMode() openMode { return recovered }

// Run runs the check; the exit code is 3 if anything was lost, unexpected
// or divergent.
func (c *CheckCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	if c.Worker > 0 {
		return c.runWorker(ctx, g, cl, io.Stdout)
	}
	defer c.stopSpawned(io.Stderr)
	if cl.left > 0 {
		return &exitError{code: ExitInconsistent, err: fmt.Errorf("%d operations of an earlier run are still pending: run rops recover first", cl.left)}
	}
	sink, err := openSink(c.History, c.Report, scratchDir(g))
	if err != nil {
		return usageError(err)
	}
	defer sink.close()
	seed := g.seed()
	ids := checkIDs(c.Prefix, seed, c.IDs)
	chk := core.NewChecker()
	w := &workload{c: cl.Coordinator, chk: chk, ids: ids, rng: rand.New(rand.NewPCG(seed, 0xC4EC)), busy: map[core.GroupID]bool{}, pending: map[core.GroupID]bool{}}
	w.free = sync.NewCond(&w.mu)
	// At most one operation per id at a time: more workers than ids would
	// find none free.
	run := &checkRun{c: cl.Coordinator, w: w, hist: history.NewWriter(sink), workers: min(cl.concurrency, c.IDs)}
	crew, err := c.newCrew(ctx, g, run, io.Stderr) // nil without --coordinators
	if err != nil {
		return err
	}
	defer crew.close()
	nem, err := c.newNemesis(ctx, cl, seed, run, io.Stderr, crew.nodes())
	if err != nil {
		return err
	}
	if err := checkChaosToken(ctx, cl, c.Chaos); err != nil {
		return err
	}
	// Start from nothing: a run with the same seed may have left some.
	run.each(ids, func(p int, id core.GroupID) { run.op(ctx, p, core.OpDelete, id) })

	out := checkJSON{Target: g.Target, Seed: seed}
	var stopChaos func()
	var chaosNodes []string
	var chaosFrom time.Duration
	start, trips := time.Now(), cl.roundTrips()
	deadline := time.Time{}
	if c.Duration > 0 {
		deadline = start.Add(c.Duration)
	}
	chaosAt := c.Ops / 2
	stopReader := func() {}
	workers := run.workers
	var wg sync.WaitGroup
	if crew != nil {
		// The workload runs in the crew's processes; no reader, which
		// cannot know which ids they are on.
		wg.Go(func() { crew.work(deadline) })
		workers = 0
	} else {
		stopReader = run.startReader(ctx, rand.New(rand.NewPCG(seed, 0x5EAD)))
	}
	for p := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				t, ok := w.take(c.Ops, deadline)
				if !ok {
					return
				}
				if c.Chaos > 0 && (t.n == chaosAt && c.Duration == 0 || c.Duration > 0 && t.n == 0) {
					// With --duration, faults start with the first operation.
					chaosFrom = run.hist.Now()
					stopChaos, chaosNodes, out.Chaos = startChaos(ctx, cl, c.Chaos, io.Stderr)
				}
				run.work(ctx, p, t)
			}
		})
	}
	nem.start(ctx)
	wg.Wait()
	nem.stop()
	stopReader()
	if stopChaos != nil {
		stopChaos()
		for _, n := range chaosNodes {
			run.recordWindow("chaos", n, chaosFrom, run.hist.Now())
		}
	}
	elapsed, tripsRun := time.Since(start), cl.roundTrips()-trips
	if err := crew.end(w); err != nil {
		return &exitError{code: ExitInconsistent, err: fmt.Errorf("--coordinators: %w", err)}
	}

	// Settle what is pending, then judge.
	still := run.recover(ctx, cl.concurrency)
	chk.Resolve(still)
	v, err := run.verify(ctx, chk, ids)
	if err != nil {
		err = unreachableError(ctx, cl.Nodes(), err)
		return &exitError{code: unreachableCode(err, ExitInconsistent), err: err}
	}
	if err := run.hist.Flush(); err != nil {
		return fmt.Errorf("cannot write the history: %w", err)
	}
	w.mu.Lock()
	rep, lat := w.rep, w.latencies
	w.mu.Unlock()
	out.Ops, out.Done, out.Unchanged, out.RolledBack, out.Pending = rep.Requested, rep.Done, rep.Unchanged, rep.RolledBack, rep.Pending
	out.Lost, out.Unexpected, out.Divergent = orEmpty(v.Lost), orEmpty(v.Unexpected), orEmpty(v.Divergent)
	out.RequestsOp = round(float64(rep.Requests)/math.Max(1, float64(rep.Requested)), 2)
	out.RoundTripsOp = round(float64(tripsRun)/math.Max(1, float64(rep.Requested)), 2)
	out.P50ms, out.P99ms = percentileMs(lat, 0.50), percentileMs(lat, 0.99)
	out.Seconds = round(elapsed.Seconds(), 2)

	// Remove what the check wrote.
	cl.Bulk(ctx, core.OpDelete, slices.Values(ids), cl.concurrency, nil)

	// Judge the history from outside, as rops verify does.
	lin, err := verifyHistory(sink.path())
	if err != nil {
		return fmt.Errorf("cannot verify the history: %w", err)
	}
	out.Linearizable = lin.ok()
	out.History = checkHistoryJSON{File: c.History, Ops: lin.ops, IDs: lin.ids, Nemeses: lin.nemeses, Seconds: round(lin.took.Seconds(), 3), Failed: []string{}}
	for _, f := range lin.failed {
		out.History.Failed = append(out.History.Failed, f.ID)
	}
	if f := lin.first; f != nil {
		line, err := history.Marshal(f.Op)
		if err != nil {
			return err
		}
		out.History.First = &firstJSON{Line: f.Op.Line, Op: rawJSON(line), State: f.State, Explained: f.Explained, Total: f.Total}
	}
	out.OK = v.OK() && out.Linearizable
	if c.Report != "" {
		out.Report = c.Report
		if err := writeReport(c.Report, sink.path(), lin, out); err != nil {
			return fmt.Errorf("cannot write --report: %w", err)
		}
	}
	if g.Output == "json" {
		err = writeJSON(io.Stdout, out)
	} else {
		printCheck(io.Stdout, out, len(still), lin)
	}
	if err != nil {
		return err
	}
	if !out.OK {
		return &exitError{code: ExitInconsistent}
	}
	return nil
}

// workload hands out operations on ids, at most one at a time on each, so
// that the checker can record each id's outcomes in order.
type workload struct {
	c   *core.Coordinator
	chk *core.Checker
	ids []core.GroupID

	mu      sync.Mutex
	free    *sync.Cond // signalled when reading ends
	rng     *rand.Rand
	busy    map[core.GroupID]bool
	pending map[core.GroupID]bool // the last outcome on the id was pending
	// reading is the id the reader is reading, if any: an operation
	// that takes it waits until the reading ends, so that none is in
	// flight during a reading and the reader does not change which ids
	// the workload draws.
	reading   core.GroupID
	started   int
	rep       core.Report
	latencies []time.Duration
}

// task is one operation of the workload.
type task struct {
	n  int // its number, from 0
	id core.GroupID
	op core.Op
}

// take claims the next operation, or returns false once ops are started
// (or the deadline passed) or every id is busy.
func (w *workload) take(ops int, deadline time.Time) (task, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if deadline.IsZero() && w.started >= ops || !deadline.IsZero() && !time.Now().Before(deadline) {
		return task{}, false
	}
	free := make([]core.GroupID, 0, len(w.ids))
	for _, id := range w.ids {
		if !w.busy[id] {
			free = append(free, id)
		}
	}
	if len(free) == 0 {
		return task{}, false
	}
	t := task{n: w.started, id: free[w.rng.IntN(len(free))], op: core.OpCreate}
	if w.rng.IntN(2) == 0 {
		t.op = core.OpDelete
	}
	w.busy[t.id] = true
	w.started++
	for w.reading == t.id {
		w.free.Wait()
	}
	return t, true
}

// startChaos switches on the new faults at rate on every node it can, and
// returns how to put the old faults back, the nodes it struck and what it
// did.
func startChaos(ctx context.Context, cl *Cluster, rate float64, stderr io.Writer) (func(), []string, string) {
	var undo []func()
	var local, remote, none []string
	for _, n := range cl.Nodes() {
		if f, ok := faults.Faulty(n); ok {
			old := f.Faults()
			chaos := old
			chaos.LateRate, chaos.ResetRate, chaos.DuplicateRate, chaos.GatewayRate, chaos.BatchRate = rate, rate, rate, rate, rate
			if chaos.LateDelay == 0 {
				chaos.LateDelay = faults.Duration(faults.DefaultLateDelay)
			}
			if f.SetFaults(chaos) == nil {
				undo = append(undo, func() { _ = f.SetFaults(old) })
				local = append(local, n.Name())
				continue
			}
		}
		if c, ok := core.NodeAs[*httpapi.Client](n); ok {
			if restore, err := putChaos(ctx, cl.http, cl.adminToken, c, rate); err == nil {
				undo = append(undo, restore)
				remote = append(remote, n.Name())
				continue
			} else {
				fmt.Fprintf(stderr, "rops: check: no chaos on %s: %v\n", n.Name(), err)
			}
		}
		none = append(none, n.Name())
	}
	what := fmt.Sprintf("late, reset, duplicate, gateway and batch faults at %v on %d of %d nodes", rate, len(local)+len(remote), len(cl.Nodes()))
	if len(none) > 0 {
		what += " (none on " + strings.Join(none, ", ") + ")"
	}
	return func() {
		for _, f := range undo {
			f()
		}
	}, append(local, remote...), what
}

// putChaos sets the new faults on c's node through its server's admin API
// and returns how to put the old ones back; token is the admin token.
func putChaos(ctx context.Context, hc *http.Client, token string, c *httpapi.Client, rate float64) (func(), error) {
	url := c.URL() + "/admin/faults"
	do := func(ctx context.Context, method string, body any) (map[string]faults.Faults, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%s %s: %s: %w", method, url, resp.Status, nemesis.AdminTokenError(token != ""))
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%s %s: %s (start the server with --admin)", method, url, resp.Status)
		}
		if resp.StatusCode != http.StatusOK {
			// The server's own word, such as a setting it refused.
			var e struct{ Message string }
			_ = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&e)
			return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, e.Message)
		}
		var all map[string]faults.Faults
		return all, json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&all)
	}
	all, err := do(ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	old, ok := all[c.Name()]
	if !ok {
		return nil, fmt.Errorf("the server has no faulty node %s", c.Name())
	}
	chaos := map[string]any{"late_rate": rate, "reset_rate": rate, "duplicate_rate": rate, "gateway_rate": rate, "batch_rate": rate}
	if old.LateDelay <= 0 {
		// Late writes need a delay, as on local nodes.
		chaos["late_delay"] = faults.Duration(faults.DefaultLateDelay)
	}
	set := map[string]map[string]any{c.Name(): chaos}
	if _, err := do(ctx, http.MethodPut, set); err != nil {
		return nil, err
	}
	return func() {
		_, _ = do(context.WithoutCancel(ctx), http.MethodPut, map[string]faults.Faults{c.Name(): old})
	}, nil
}

func printCheck(w io.Writer, out checkJSON, stillPending int, lin verdict) {
	fmt.Fprintf(w, "check: %d operations on %s (seed %d) in %.2fs", out.Ops, out.Target, out.Seed, out.Seconds)
	if out.Chaos != "" {
		fmt.Fprintf(w, ", with %s", out.Chaos)
	}
	fmt.Fprintln(w)
	rows := newColumns(w, len("  latency p50/p99  "))
	row := func(name string, v any) { fmt.Fprintf(rows, "  %s\t%v\n", name, v) }
	row("done", out.Done)
	row("unchanged", out.Unchanged)
	row("rolled back", out.RolledBack)
	row("pending", out.Pending)
	row("lost", len(out.Lost))
	row("unexpected", len(out.Unexpected))
	row("divergent", len(out.Divergent))
	row("requests/op", fmt.Sprintf("%.2f", out.RequestsOp))
	if out.RoundTripsOp > 0 {
		row("HTTP round trips/op", fmt.Sprintf("%.2f", out.RoundTripsOp))
	}
	row("latency p50/p99", fmt.Sprintf("%.1f ms / %.1f ms", out.P50ms, out.P99ms))
	judged := fmt.Sprintf("(%d ops, %s, %v)", lin.ops, nouns(lin.ids, "id"), brief(lin.took))
	if lin.ok() {
		row("linearizable", "yes "+judged)
	} else {
		row("linearizable", fmt.Sprintf("NO: %s cannot be explained %s", nouns(len(lin.failed), "id"), judged))
	}
	rows.Flush()
	for _, l := range []struct {
		name string
		ids  []core.GroupID
	}{{"lost", out.Lost}, {"unexpected", out.Unexpected}, {"divergent", out.Divergent}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(w, "%s: %s\n", l.name, listIDs(l.ids))
		}
	}
	if f := lin.first; f != nil {
		fmt.Fprintf(w, "first that cannot be explained: %v\n", f.Op)
		fmt.Fprintf(w, "  before it, %s is %s (%d of its %d operations explained)\n", f.ID, f.State, f.Explained, f.Total)
	}
	if out.Report != "" {
		fmt.Fprintf(w, "report: %s\n", strings.Join(reportFiles(out.Report), ", "))
	}
	switch {
	case len(out.Lost)+len(out.Unexpected)+len(out.Divergent) > 0:
		fmt.Fprintln(w, "FAIL: the target broke the guarantee")
	case !out.Linearizable:
		fmt.Fprintln(w, "FAIL: the history is not linearizable")
	case stillPending > 0:
		fmt.Fprintf(w, "OK: nothing lost, unexpected or divergent (%d ids still pending: run rops recover once the nodes answer)\n", stillPending)
	default:
		fmt.Fprintln(w, "OK: nothing lost, unexpected or divergent")
	}
}

// brief rounds d for a person: to the millisecond from 10 ms, else to
// 10 µs.
func brief(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

func orEmpty(ids []core.GroupID) []core.GroupID {
	if ids == nil {
		return []core.GroupID{}
	}
	return ids
}

// percentileMs returns the p-th percentile of ds in milliseconds.
func percentileMs(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return round(float64(s[max(i, 0)])/float64(time.Millisecond), 2)
}
