package nemesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/history"
)

// Process is a node's server process.
type Process interface {
	// Kill kills the process with SIGKILL and returns once it is dead.
	Kill() error
	// Restart starts it again, on the same address and data, and returns
	// once it serves.
	Restart(ctx context.Context) error
	// Pause stops the process (SIGSTOP); Resume continues it (SIGCONT).
	Pause() error
	Resume() error
}

// Switch reads and changes one node's faults while it serves.
type Switch interface {
	// Faults returns the node's faults.
	Faults(ctx context.Context) (faults.Faults, error)
	// Patch sets the faults it names, by their JSON keys ("down",
	// "late_rate"...), over the node's others, as PUT /admin/faults does.
	Patch(ctx context.Context, patch map[string]any) error
}

// Node is one node a nemesis may strike.
type Node struct {
	Name string
	// Process is the node's server process, for kill and pause; nil if
	// the nemesis did not start it.
	Process Process
	// Switch switches its faults, for down, late, reset, gateway and batch; nil
	// if it has none that the nemesis can reach.
	Switch Switch
	// Coordinator marks a coordinator process rather than a node: it takes
	// pause-coordinator and kill-coordinator, through Process, and no
	// node's fault.
	Coordinator bool
	// Outlast is the shortest window on it: a coordinator's lease and a
	// margin, so that a pause or kill outlasts the lease whatever length
	// the schedule drew.
	Outlast time.Duration
}

// DefaultRate is the rate of a late, reset or gateway window's fault.
const DefaultRate = 0.5

// Config is what a nemesis does.
type Config struct {
	Seed   uint64
	Faults []Fault
	Nodes  []Node
	Bounds Bounds  // zero: DefaultBounds
	Rate   float64 // of late, reset, gateway and batch in their windows; zero: DefaultRate
	// Clock returns the time that windows are recorded in, such as a
	// history's; nil: the time since Start.
	Clock func() time.Duration
	// Log, if not nil, is told of each window as it starts and ends, and of
	// the seed.
	Log io.Writer
	// Record, if not nil, is given each window once it has ended, on the
	// nemesis's goroutine.
	Record func(Window)
	// HealTimeout bounds the healing of a window (a restart): zero, 30 s.
	HealTimeout time.Duration
}

// Window is a fault that happened: on Node, from Start to End, in the
// Clock's time.
type Window struct {
	N          int // its plan's
	Fault      Fault
	Node       string
	Start, End time.Duration
}

// Op returns w as a history's nemesis line.
func (w Window) Op() history.Op {
	return history.Op{Kind: history.Nemesis, What: string(w.Fault), Target: w.Node, Call: w.Start, Return: w.End}
}

// String describes w, such as "window 3: kill node02 from 1.204s to 2.871s".
func (w Window) String() string {
	return fmt.Sprintf("window %d: %s %s from %v to %v", w.N, w.Fault, w.Node, w.Start.Round(time.Millisecond), w.End.Round(time.Millisecond))
}

// Nemesis strikes a cluster's nodes on a schedule until stopped. Its
// methods are safe for concurrent use.
type Nemesis struct {
	cfg    Config
	sched  *Schedule
	nodes  map[string]Node
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	windows []Window
	errs    []error
}

// Check returns an error naming a fault of cfg that a node cannot take
// (kill or pause without its Process, a switched fault without its
// Switch), or a bound or rate out of range.
func (cfg Config) Check() error {
	if len(cfg.Faults) == 0 || len(cfg.Nodes) == 0 {
		return errors.New("nemesis: no faults or no nodes")
	}
	if cfg.Bounds != (Bounds{}) {
		if err := cfg.Bounds.Validate(); err != nil {
			return fmt.Errorf("nemesis: %w", err)
		}
	}
	if !(cfg.Rate >= 0 && cfg.Rate <= 1) {
		return fmt.Errorf("nemesis: rate %v: give a probability from 0 to 1", cfg.Rate)
	}
	for _, f := range cfg.Faults {
		if len(cfg.targets(f)) == 0 {
			what := "node"
			if f.Coordinator() {
				what = "coordinator process"
			}
			return fmt.Errorf("nemesis: %s needs a %s to strike, and there is none", f, what)
		}
		for _, n := range cfg.targets(f) {
			switch {
			case f.Coordinator() && n.Process == nil:
				return fmt.Errorf("nemesis: %s needs the process of %s, and it has none that rops started", f, n.Name)
			case f.Process() && n.Process == nil:
				return fmt.Errorf("nemesis: %s needs the process of %s, and it has none that rops started", f, n.Name)
			case f.Switched() && n.Switch == nil:
				return fmt.Errorf("nemesis: %s needs to switch the faults of %s, and it has no way to (an admin API, or a local node)", f, n.Name)
			}
		}
	}
	return nil
}

// targets returns the nodes that f may strike: the coordinators for a
// coordinator's fault, the nodes for the others.
func (cfg Config) targets(f Fault) []Node {
	var ns []Node
	for _, n := range cfg.Nodes {
		if n.Coordinator == f.Coordinator() {
			ns = append(ns, n)
		}
	}
	return ns
}

// Start checks cfg and starts striking, on a goroutine of its own, until
// Stop or ctx ends.
func Start(ctx context.Context, cfg Config) (*Nemesis, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Bounds == (Bounds{}) {
		cfg.Bounds = DefaultBounds
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.HealTimeout == 0 {
		cfg.HealTimeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		start := time.Now()
		cfg.Clock = func() time.Duration { return time.Since(start) }
	}
	n := &Nemesis{cfg: cfg, nodes: map[string]Node{}, done: make(chan struct{})}
	targets := map[Fault][]string{}
	for _, f := range cfg.Faults {
		for _, node := range cfg.targets(f) {
			targets[f] = append(targets[f], node.Name)
		}
	}
	var names []string // those a fault may strike
	for _, node := range cfg.Nodes {
		n.nodes[node.Name] = node
		if slices.ContainsFunc(cfg.Faults, func(f Fault) bool { return slices.Contains(targets[f], node.Name) }) {
			names = append(names, node.Name)
		}
	}
	n.sched = NewScheduleOf(cfg.Seed, cfg.Faults, targets, cfg.Bounds)
	n.logf("seed %d: %s on %s, %s (the same --seed replays this schedule)", cfg.Seed, joinFaults(cfg.Faults), strings.Join(names, ", "), cfg.Bounds)
	ctx, n.cancel = context.WithCancel(ctx)
	go n.run(ctx)
	return n, nil
}

// Stop ends the window under way at once, healing its node, stops the
// nemesis and returns the windows that happened. The error joins those of
// strikes and heals that failed: a node a heal failed on may still be
// down or paused.
func (n *Nemesis) Stop() ([]Window, error) {
	n.cancel()
	<-n.done
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.windows, errors.Join(n.errs...)
}

// Windows returns the windows that happened so far.
func (n *Nemesis) Windows() []Window {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Window(nil), n.windows...)
}

// run strikes plan after plan until ctx ends.
func (n *Nemesis) run(ctx context.Context) {
	defer close(n.done)
	for {
		p := n.sched.Next()
		if !sleep(ctx, p.Gap) {
			return
		}
		// A strike and its heal run to the end whatever ctx does, so that
		// a strike half made is healed, never left behind.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.HealTimeout)
		start := n.cfg.Clock()
		heal, err := n.strike(sctx, p)
		cancel()
		if err != nil {
			if heal != nil {
				hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.HealTimeout)
				_ = heal(hctx) // best effort: what failed may have been half made
				cancel()
			}
			n.fail(fmt.Errorf("window %d: %s %s: %w", p.N, p.Fault, p.Node, err))
			if ctx.Err() != nil {
				return
			}
			continue
		}
		n.logf("seed %d: window %d: %s %s at %v", n.cfg.Seed, p.N, p.Fault, p.Node, start.Round(time.Millisecond))
		stopped := !sleep(ctx, max(p.Length, n.nodes[p.Node].Outlast))
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.HealTimeout)
		err = heal(hctx)
		cancel()
		w := Window{N: p.N, Fault: p.Fault, Node: p.Node, Start: start, End: n.cfg.Clock()}
		n.mu.Lock()
		n.windows = append(n.windows, w)
		n.mu.Unlock()
		n.logf("seed %d: %s", n.cfg.Seed, w)
		if n.cfg.Record != nil {
			n.cfg.Record(w)
		}
		if err != nil {
			n.fail(fmt.Errorf("window %d: healing %s %s: %w", p.N, p.Fault, p.Node, err))
		}
		if stopped {
			return
		}
	}
}

// strike starts p's fault and returns how to heal it. If it fails, heal
// is what may undo a strike half made, or nil.
func (n *Nemesis) strike(ctx context.Context, p Plan) (heal func(context.Context) error, err error) {
	node := n.nodes[p.Node]
	switch p.Fault {
	case Kill, KillCoordinator:
		return node.Process.Restart, node.Process.Kill()
	case Pause, PauseCoordinator:
		return func(context.Context) error { return node.Process.Resume() }, node.Process.Pause()
	}
	old, err := node.Switch.Faults(ctx)
	if err != nil {
		return nil, err
	}
	var on, off map[string]any
	switch p.Fault {
	case Down:
		on, off = map[string]any{"down": true}, map[string]any{"down": old.Down}
	case Late:
		on, off = map[string]any{"late_rate": n.cfg.Rate}, map[string]any{"late_rate": old.LateRate}
		if old.LateDelay <= 0 {
			on["late_delay"] = faults.Duration(faults.DefaultLateDelay)
		}
	case Reset:
		on, off = map[string]any{"reset_rate": n.cfg.Rate}, map[string]any{"reset_rate": old.ResetRate}
	case Gateway:
		on, off = map[string]any{"gateway_rate": n.cfg.Rate}, map[string]any{"gateway_rate": old.GatewayRate}
	case Batch:
		on, off = map[string]any{"batch_rate": n.cfg.Rate}, map[string]any{"batch_rate": old.BatchRate}
		if old.LateDelay <= 0 {
			on["late_delay"] = faults.Duration(faults.DefaultLateDelay)
		}
	default:
		return nil, fmt.Errorf("unknown fault %q", p.Fault)
	}
	heal = func(ctx context.Context) error { return node.Switch.Patch(ctx, off) }
	return heal, node.Switch.Patch(ctx, on)
}

// fail notes err and logs it.
func (n *Nemesis) fail(err error) {
	n.logf("seed %d: %v", n.cfg.Seed, err)
	n.mu.Lock()
	n.errs = append(n.errs, err)
	n.mu.Unlock()
}

func (n *Nemesis) logf(format string, args ...any) {
	if n.cfg.Log != nil {
		fmt.Fprintf(n.cfg.Log, "nemesis: "+format+"\n", args...)
	}
}

// sleep waits for d, or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
