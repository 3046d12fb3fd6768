package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/nemesis"

	"github.com/reliable-ops/rops/core/breaker"
)

// NemesisFlags are check's flags for a cluster of its own and for faults
// injected on a schedule while it runs (issue 18).
type NemesisFlags struct {
	Spawn       int     `placeholder:"N" help:"Start N rops serve processes, one node each (node01...), on free loopback ports with their badger data in a temporary directory, run the check against them, then stop them and remove the directory. Global fault flags and --seed apply to them."`
	Nemesis     string  `placeholder:"LIST" help:"While the check runs, strike one node at a time in windows drawn from --seed, printed and written to the history: some of kill and pause (the processes of --spawn: SIGKILL and restart, SIGSTOP and SIGCONT), down, late, reset, gateway and batch (switched on and back through the nodes' admin API, rops serve --admin, or on local nodes); with --coordinators, pause-coordinator and kill-coordinator (SIGSTOP one past its etcd lease and SIGCONT; SIGKILL, rops recover once its lease expired, and a new process for the rest of its share)."`
	NemesisRate float64 `default:"0.5" placeholder:"P" help:"The rate of late, reset, gateway and batch faults in their --nemesis windows."`

	faults []nemesis.Fault
	// ctx and g are the command's, kept by AfterApply for prepare, which
	// starts the servers of --spawn before the check's cluster opens
	// over them.
	ctx     context.Context
	g       *Globals
	spawned *nemesis.Cluster
}

// spawnTarget is the name of the target of the nodes --spawn starts.
const spawnTarget = "spawn"

// opEstimate is how long an operation of check is taken to last, to scale
// the nemesis's windows to a run of --ops: about what one takes, 16 at
// once, on three rops serve processes of this machine with no fault. The
// faults then slow the run, and more windows fit in it.
const opEstimate = 2 * time.Millisecond

// AfterApply checks the flags once kong has parsed them, and keeps what
// prepare needs.
func (f *NemesisFlags) AfterApply(ctx context.Context, g *Globals, k *kong.Context) error {
	f.ctx, f.g = ctx, g
	switch {
	case f.Spawn < 0 || f.Spawn > 99:
		return fmt.Errorf("--spawn %d is out of range: give 1 to 99 nodes (or 0 for none)", f.Spawn)
	case f.Spawn > 0 && g.Target != "local":
		return fmt.Errorf("--spawn %d starts the nodes the check runs on: leave out --target (it is %q)", f.Spawn, g.Target)
	case !(f.NemesisRate > 0 && f.NemesisRate <= 1):
		return fmt.Errorf("--nemesis-rate %v is out of range: give a probability above 0, up to 1", f.NemesisRate)
	}
	if f.Spawn > 0 {
		for _, name := range g.Down {
			if n, err := strconv.Atoi(strings.TrimPrefix(name, "node")); err != nil || !strings.HasPrefix(name, "node") || n < 1 || n > f.Spawn || name != nodeName(n) {
				return fmt.Errorf("--down %s: --spawn %d starts nodes %s to %s", name, f.Spawn, nodeName(1), nodeName(f.Spawn))
			}
		}
	}
	var fs []nemesis.Fault
	if f.Nemesis != "" {
		var err error
		if fs, err = nemesis.ParseFaults(f.Nemesis); err != nil {
			return fmt.Errorf("--nemesis %s: %w", f.Nemesis, err)
		}
	}
	if c, ok := selected(k).(*CheckCmd); ok {
		if err := checkCoordinators(c, g, fs); err != nil {
			return err
		}
	}
	if f.Nemesis == "" {
		return nil
	}
	if c, ok := selected(k).(*CheckCmd); ok && c.Chaos > 0 {
		if i := slices.IndexFunc(fs, nemesis.Fault.Switched); i >= 0 {
			// Each would put back what it found, perhaps the other's.
			return fmt.Errorf("--nemesis %s and --chaos both switch the nodes' faults: give one of them", fs[i])
		}
	}
	if f.Spawn == 0 {
		if i := slices.IndexFunc(fs, nemesis.Fault.Process); i >= 0 {
			return fmt.Errorf("--nemesis %s needs --spawn N: rops kills and pauses only the rops serve processes it starts itself; without --spawn, the nemesis works through the nodes' admin API (rops serve --admin) or on local nodes only: down, late, reset, gateway or batch", fs[i])
		}
	}
	f.faults = fs
	return nil
}

// nodeName returns the name of the i-th node of --spawn, 1 first.
func nodeName(i int) string { return fmt.Sprintf("node%02d", i) }

// prepare starts the servers of --spawn, and points the check's cluster
// at them: a target of their nodes in a config file, and --data (the
// journal) in their temporary directory. Run stops them (stopSpawned).
func (f *NemesisFlags) prepare(io *IO) error {
	if f.Spawn == 0 {
		return nil
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--spawn: cannot find the rops binary to run rops serve: %w", err)
	}
	opts := nemesis.SpawnOptions{Bin: bin, Nodes: f.Spawn, Dir: cmp.Or(f.g.Data, scratchDir(f.g)), Args: f.serveArgs}
	if f.g.Verbose {
		opts.Log = io.Stderr
	}
	c, err := nemesis.Spawn(f.ctx, opts)
	if err != nil {
		return fmt.Errorf("--spawn %d: %w", f.Spawn, err)
	}
	f.spawned = c
	cfg := Config{Targets: map[string]TargetConfig{spawnTarget: {Nodes: c.Specs()}}}
	data, err := json.Marshal(cfg)
	if err == nil {
		err = os.WriteFile(filepath.Join(c.Dir, "targets.json"), data, 0o644)
	}
	if err != nil {
		f.stopSpawned(io.Stderr)
		return fmt.Errorf("--spawn: %w", err)
	}
	// --down is the servers' (serveArgs).
	f.g.Config, f.g.Target, f.g.Data, f.g.Down = filepath.Join(c.Dir, "targets.json"), spawnTarget, c.Dir, nil
	if !f.g.Quiet {
		var nodes []string
		for _, p := range c.Procs() {
			nodes = append(nodes, fmt.Sprintf("%s at %s (pid %d)", p.Name(), p.URL(), p.PID()))
		}
		fmt.Fprintf(io.Stderr, "check: --spawn %d: %s; data in %s\n", f.Spawn, strings.Join(nodes, ", "), c.Dir)
	}
	return nil
}

// serveArgs returns the flags of node's rops serve: the global fault
// flags and --seed, and --down if it names node.
func (f *NemesisFlags) serveArgs(node string) []string {
	g := f.g
	ftoa := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	args := []string{
		"--seed", strconv.FormatUint(g.seed(), 10),
		"--random-behavior", ftoa(g.RandomBehavior), "--ambiguous-rate", ftoa(g.AmbiguousRate),
		"--latency", g.Latency.String(), "--jitter", g.Jitter.String(), "--hang-rate", ftoa(g.HangRate),
		"--late-rate", ftoa(g.LateRate), "--late-delay", g.LateDelay.String(), "--reset-rate", ftoa(g.ResetRate),
		"--duplicate-rate", ftoa(g.DuplicateRate), "--gateway-rate", ftoa(g.GatewayRate),
		"--batch-rate", ftoa(g.BatchRate),
	}
	if slices.Contains(g.Down, node) {
		args = append(args, "--down", node)
	}
	return args
}

// stopSpawned stops the servers of --spawn, if any, and removes their
// directory (the check's journal with it).
func (f *NemesisFlags) stopSpawned(stderr io.Writer) {
	if f.spawned == nil {
		return
	}
	err := f.spawned.Close()
	f.spawned = nil
	if err != nil {
		fmt.Fprintf(stderr, "rops: check: --spawn: %v\n", err)
	}
}

// checkNemesis is the nemesis of one check run; nil without --nemesis,
// and then its methods do nothing.
type checkNemesis struct {
	cfg    nemesis.Config
	n      *nemesis.Nemesis
	ctx    context.Context // start's
	stderr io.Writer
}

// newNemesis returns the nemesis of --nemesis over cl's nodes, on the
// clock of run's history, into which it writes its windows; or nil without
// --nemesis. It returns an error naming a node that cannot take a fault,
// such as a server without its admin API.
func (c *CheckCmd) newNemesis(ctx context.Context, cl *Cluster, seed uint64, run *checkRun, stderr io.Writer, coordinators []nemesis.Node) (*checkNemesis, error) {
	if len(c.faults) == 0 {
		return nil, nil
	}
	// A fresh connection for each call: a server the nemesis killed left
	// dead ones behind.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: cl.tlsConfig()}}
	var procs []*nemesis.Proc
	if c.spawned != nil {
		procs = c.spawned.Procs()
	}
	var nodes []nemesis.Node
	for _, n := range cl.Nodes() {
		node := nemesis.Node{Name: n.Name()}
		if i := slices.IndexFunc(procs, func(p *nemesis.Proc) bool { return p.Name() == n.Name() }); i >= 0 {
			node.Process = procs[i]
		}
		if hn, ok := core.NodeAs[*httpapi.Client](n); ok {
			node.Switch = &nemesis.Admin{URL: hn.URL(), Node: hn.Name(), HTTP: hc, Token: cl.adminToken}
		} else if fn, ok := faults.Faulty(n); ok {
			node.Switch = nemesis.Local{Node: fn}
		}
		nodes = append(nodes, node)
	}
	switched := nodes
	nodes = append(slices.Clip(nodes), coordinators...)
	expected := c.Duration
	if expected <= 0 {
		expected = time.Duration(c.Ops) * opEstimate
	}
	cfg := nemesis.Config{
		Seed: seed, Faults: c.faults, Nodes: nodes, Bounds: nemesis.BoundsFor(expected), Rate: c.NemesisRate,
		Clock: run.hist.Now,
		Record: func(w nemesis.Window) {
			run.recordWindow(string(w.Fault), w.Node, w.Start, w.End)
		},
	}
	if !c.g.Quiet {
		cfg.Log = stderr
	}
	if err := cfg.Check(); err != nil {
		return nil, usageError(err)
	}
	if i := slices.IndexFunc(c.faults, nemesis.Fault.Switched); i >= 0 {
		// Asked once now, rather than failing every window.
		for _, n := range switched {
			if _, err := n.Switch.Faults(ctx); err != nil {
				return nil, usageError(fmt.Errorf("--nemesis %s: cannot read the faults of %s: %w", c.faults[i], n.Name, err))
			}
		}
	}
	return &checkNemesis{cfg: cfg, stderr: stderr}, nil
}

// start starts striking.
func (n *checkNemesis) start(ctx context.Context) {
	if n == nil {
		return
	}
	var err error
	n.ctx = ctx
	// Checked by newNemesis: Start cannot fail.
	if n.n, err = nemesis.Start(ctx, n.cfg); err != nil {
		fmt.Fprintf(n.stderr, "rops: check: %v\n", err)
	}
}

// stop ends the window under way, healing its node, and says what the
// nemesis did; a strike or heal that failed is reported, not fatal: the
// check judges what the nodes hold either way.
func (n *checkNemesis) stop() {
	if n == nil || n.n == nil {
		return
	}
	ws, err := n.n.Stop()
	count := map[nemesis.Fault]int{}
	for _, w := range ws {
		count[w.Fault]++
	}
	var parts []string
	for _, f := range n.cfg.Faults {
		parts = append(parts, fmt.Sprintf("%s %d", f, count[f]))
	}
	if n.cfg.Log != nil {
		fmt.Fprintf(n.stderr, "nemesis: seed %d: %d windows: %s\n", n.cfg.Seed, len(ws), strings.Join(parts, ", "))
	}
	if len(ws) > 0 {
		// A node just back from a kill or down may still be refused by
		// the breaker: the final recover waits until it tries again.
		if last := ws[len(ws)-1]; last.Fault == nemesis.Kill || last.Fault == nemesis.Down {
			t := time.NewTimer(last.End + breaker.DefaultCooldown - n.cfg.Clock())
			select {
			case <-t.C:
			case <-n.ctx.Done():
				t.Stop()
			}
		}
	}
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintf(n.stderr, "rops: check: nemesis: %v\n", e)
		}
	}
}

// unjoin returns the errors that errors.Join joined into err, or err.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
