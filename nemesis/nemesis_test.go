package nemesis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/history"
)

// fakeProcess is a Process of function fields; a test sets those it needs.
type fakeProcess struct {
	KillFn, PauseFn, ResumeFn func() error
	RestartFn                 func(context.Context) error
}

func (p *fakeProcess) Kill() error                       { return p.KillFn() }
func (p *fakeProcess) Restart(ctx context.Context) error { return p.RestartFn(ctx) }
func (p *fakeProcess) Pause() error                      { return p.PauseFn() }
func (p *fakeProcess) Resume() error                     { return p.ResumeFn() }

// fakeSwitch is a Switch of function fields.
type fakeSwitch struct {
	FaultsFn func(context.Context) (faults.Faults, error)
	PatchFn  func(context.Context, map[string]any) error
}

func (s *fakeSwitch) Faults(ctx context.Context) (faults.Faults, error) { return s.FaultsFn(ctx) }
func (s *fakeSwitch) Patch(ctx context.Context, p map[string]any) error { return s.PatchFn(ctx, p) }

// journal records what the fakes were asked, in order, with the fake
// clock's time since the test began.
type journal struct {
	mu    sync.Mutex
	start time.Time
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, fmt.Sprintf("%v ", time.Since(j.start))+fmt.Sprintf(format, args...))
}

// fakeNodes returns nodes whose processes and switches write to j, and
// whose faults start as old.
func fakeNodes(j *journal, old faults.Faults, names ...string) []Node {
	var nodes []Node
	for _, name := range names {
		nodes = append(nodes, Node{
			Name: name,
			Process: &fakeProcess{
				KillFn:    func() error { j.add("kill %s", name); return nil },
				RestartFn: func(context.Context) error { j.add("restart %s", name); return nil },
				PauseFn:   func() error { j.add("pause %s", name); return nil },
				ResumeFn:  func() error { j.add("resume %s", name); return nil },
			},
			Switch: &fakeSwitch{
				FaultsFn: func(context.Context) (faults.Faults, error) { return old, nil },
				PatchFn: func(_ context.Context, p map[string]any) error {
					var kv []string
					for _, k := range slices.Sorted(maps.Keys(p)) {
						kv = append(kv, fmt.Sprintf("%s=%v", k, p[k]))
					}
					j.add("patch %s %s", name, strings.Join(kv, ","))
					return nil
				},
			},
		})
	}
	return nodes
}

// TestNemesisStrikesAsPlanned runs a nemesis of every fault over fake
// nodes in a bubble of fake time: each window strikes its node as its
// plan says, when it says, and heals it at the end, putting back the
// fault's old value; each window is recorded as a nemesis line of a
// history; and the same seed does exactly the same again.
func TestNemesisStrikesAsPlanned(t *testing.T) {
	old := faults.Faults{LateRate: 0.1, LateDelay: faults.Duration(time.Second)}
	run := func() ([]string, []Window, []Plan) {
		var lines []string
		var windows []Window
		var plans []Plan
		synctest.Test(t, func(t *testing.T) {
			j := &journal{start: time.Now()}
			var recorded []Window
			cfg := Config{Seed: 7, Faults: NodeFaults, Nodes: fakeNodes(j, old, "node01", "node02", "node03"), Record: func(w Window) { recorded = append(recorded, w) }}
			n, err := Start(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := NewSchedule(7, NodeFaults, []string{"node01", "node02", "node03"}, DefaultBounds)
			var total time.Duration
			for range 12 {
				p := s.Next()
				plans = append(plans, p)
				total += p.Gap + p.Length
			}
			time.Sleep(total + time.Millisecond) // 12 windows and no more
			ws, err := n.Stop()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ws, recorded) {
				t.Fatalf("Stop returned %v, Record was given %v", ws, recorded)
			}
			lines, windows = j.lines, ws
		})
		return lines, windows, plans
	}
	lines, windows, plans := run()
	if got, want := len(windows), len(plans); got != want {
		t.Fatalf("%d windows, want %d:\n%s", got, want, strings.Join(lines, "\n"))
	}
	var want []string
	var at time.Duration
	for i, p := range plans {
		w := windows[i]
		start := at + p.Gap
		at = start + p.Length
		if w.N != p.N || w.Fault != p.Fault || w.Node != p.Node || w.Start != start || w.End != at {
			t.Errorf("window %v, want %v from %v to %v", w, p, start, at)
		}
		on := map[Fault]string{
			Kill:    "kill " + p.Node,
			Pause:   "pause " + p.Node,
			Down:    "patch " + p.Node + " down=true",
			Late:    "patch " + p.Node + " late_rate=0.5",
			Reset:   "patch " + p.Node + " reset_rate=0.5",
			Gateway: "patch " + p.Node + " gateway_rate=0.5",
			Batch:   "patch " + p.Node + " batch_rate=0.5",
		}[p.Fault]
		heal := map[Fault]string{
			Kill:    "restart " + p.Node,
			Pause:   "resume " + p.Node,
			Down:    "patch " + p.Node + " down=false",
			Late:    "patch " + p.Node + " late_rate=0.1",
			Reset:   "patch " + p.Node + " reset_rate=0",
			Gateway: "patch " + p.Node + " gateway_rate=0",
			Batch:   "patch " + p.Node + " batch_rate=0",
		}[p.Fault]
		want = append(want, fmt.Sprintf("%v %s", start, on), fmt.Sprintf("%v %s", at, heal))
		op := w.Op()
		if got, want := op, (history.Op{Kind: history.Nemesis, What: string(p.Fault), Target: p.Node, Call: start, Return: at}); got != want {
			t.Errorf("Op() = %+v, want %+v", got, want)
		}
		if err := op.Validate(); err != nil {
			t.Errorf("Op() of %v is not a valid line: %v", w, err)
		}
	}
	if !slices.Equal(lines, want) {
		t.Errorf("did:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	again, _, _ := run()
	if !slices.Equal(lines, again) {
		t.Errorf("seed 7 ran two ways:\n%s\n\n%s", strings.Join(lines, "\n"), strings.Join(again, "\n"))
	}
}

// TestNemesisStopHeals stops a nemesis in the middle of a window: the
// node is healed at once and the window recorded as ending then.
func TestNemesisStopHeals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{start: time.Now()}
		n, err := Start(t.Context(), Config{Seed: 1, Faults: []Fault{Pause}, Nodes: fakeNodes(j, faults.Faults{}, "node01"), Bounds: Bounds{time.Second, time.Second, time.Second, time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		ws, err := n.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := j.lines, []string{"1s pause node01", "1.5s resume node01"}; !slices.Equal(got, want) {
			t.Fatalf("did %q, want %q", got, want)
		}
		if got, want := ws, []Window{{N: 1, Fault: Pause, Node: "node01", Start: time.Second, End: 1500 * time.Millisecond}}; !slices.Equal(got, want) {
			t.Fatalf("windows %v, want %v", got, want)
		}
	})
}

// TestNemesisFailures checks that a strike that fails is healed as far as
// it can be, not recorded, and reported by Stop, and that the nemesis goes
// on with the next window; and that a heal that fails is recorded and
// reported.
func TestNemesisFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{start: time.Now()}
		nodes := fakeNodes(j, faults.Faults{}, "node01")
		sw := nodes[0].Switch.(*fakeSwitch)
		patch := sw.PatchFn
		sw.PatchFn = func(ctx context.Context, p map[string]any) error {
			patch(ctx, p)
			if p["down"] == true {
				return errors.New("503 from a proxy")
			}
			return nil
		}
		pr := nodes[0].Process.(*fakeProcess)
		pr.RestartFn = func(context.Context) error { j.add("restart node01"); return errors.New("port taken") }
		b := Bounds{time.Second, time.Second, time.Second, time.Second}
		n, err := Start(t.Context(), Config{Seed: 1, Faults: []Fault{Down, Kill}, Nodes: nodes, Bounds: b})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3500 * time.Millisecond)
		ws, err := n.Stop()
		if err == nil || !strings.Contains(err.Error(), "503 from a proxy") || !strings.Contains(err.Error(), "healing kill node01: port taken") {
			t.Errorf("Stop() error = %v, want both failures", err)
		}
		if len(ws) != 1 || ws[0].Fault != Kill {
			t.Errorf("windows %v, want the kill alone", ws)
		}
		want := []string{"1s patch node01 down=true", "1s patch node01 down=false", "2s kill node01", "3s restart node01"}
		if got := j.lines; !slices.Equal(got, want) {
			// Which of the two comes first is the seed's.
			want = []string{"1s kill node01", "2s restart node01", "3s patch node01 down=true", "3s patch node01 down=false"}
			if !slices.Equal(got, want) {
				t.Errorf("did %q", got)
			}
		}
	})
}

// TestNemesisCheck checks that a nemesis refuses faults its nodes cannot
// take, before striking anything.
func TestNemesisCheck(t *testing.T) {
	j := &journal{start: time.Now()}
	node := fakeNodes(j, faults.Faults{}, "node01")[0]
	switchOnly := Node{Name: "node02", Switch: node.Switch}
	processOnly := Node{Name: "node03", Process: node.Process}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"kill without a process", Config{Faults: []Fault{Late, Kill}, Nodes: []Node{node, switchOnly}}, "kill needs the process of node02"},
		{"late without a switch", Config{Faults: []Fault{Pause, Late}, Nodes: []Node{processOnly}}, "late needs to switch the faults of node03"},
		{"no faults", Config{Nodes: []Node{node}}, "no faults"},
		{"bad rate", Config{Faults: []Fault{Late}, Nodes: []Node{node}, Rate: 2}, "rate 2"},
		{"bad bounds", Config{Faults: []Fault{Late}, Nodes: []Node{node}, Bounds: Bounds{MaxWindow: time.Second}}, "windows of 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Start(t.Context(), tc.cfg)
			if err == nil {
				n.Stop()
				t.Fatalf("Start: no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want %q", err, tc.want)
			}
		})
	}
	if len(j.lines) > 0 {
		t.Errorf("struck: %q", j.lines)
	}
}

// TestNemesisCoordinators: coordinator faults strike only the nodes marked
// Coordinator, a node's faults only the others, and a window on a
// coordinator lasts its Outlast at least, whatever the schedule drew.
func TestNemesisCoordinators(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{start: time.Now()}
		nodes := fakeNodes(j, faults.Faults{}, "node01", "node02", "coordinator 1", "coordinator 2")
		for i := 2; i < 4; i++ {
			nodes[i].Coordinator, nodes[i].Outlast, nodes[i].Switch = true, 3*time.Second, nil
		}
		fs := []Fault{Kill, Late, PauseCoordinator, KillCoordinator}
		n, err := Start(t.Context(), Config{Seed: 5, Faults: fs, Nodes: nodes, Bounds: BoundsFor(8 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		ws, err := n.Stop()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[Fault]int{}
		for i, w := range ws {
			seen[w.Fault]++
			if got, want := strings.HasPrefix(w.Node, "coordinator "), w.Fault.Coordinator(); got != want {
				t.Errorf("%v: struck a coordinator %v, want %v", w, got, want)
			}
			if i == len(ws)-1 {
				continue // cut short by Stop
			}
			if w.Fault.Coordinator() && w.End-w.Start < 3*time.Second {
				t.Errorf("%v: shorter than the coordinator's Outlast, 3s", w)
			}
		}
		for _, f := range fs {
			if seen[f] == 0 {
				t.Errorf("no %s window in %v", f, ws)
			}
		}
	})
	for _, tc := range []struct {
		name  string
		fault Fault
		nodes []string
		want  string
	}{
		{"no coordinator", PauseCoordinator, []string{"node01"}, "pause-coordinator needs a coordinator process to strike"},
		{"no node", Kill, nil, "kill needs a node to strike"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := fakeNodes(&journal{}, faults.Faults{}, tc.nodes...)
			nodes = append(nodes, Node{Name: "coordinator 1", Coordinator: true, Process: &fakeProcess{}})
			if tc.fault.Coordinator() {
				nodes = nodes[:len(nodes)-1]
			}
			_, err := Start(t.Context(), Config{Faults: []Fault{tc.fault}, Nodes: nodes})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want %q", err, tc.want)
			}
		})
	}
}
