package cli

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// parseGlobals parses args as rops' command line does and returns the
// globals.
func parseGlobals(t *testing.T, args ...string) *Globals {
	t.Helper()
	var cli CLI
	parser, err := kong.New(&cli, kong.Exit(func(int) { t.Fatal("kong exited") }), kong.Writers(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return &cli.Globals
}

// TestFaultFlags checks that every fault flag reaches faults.Faults.
func TestFaultFlags(t *testing.T) {
	g := parseGlobals(t, "--random-behavior", "0.1", "--ambiguous-rate", "0.2", "--latency", "15ms", "--jitter", "2ms",
		"--hang-rate", "0.3", "--late-rate", "0.4", "--late-delay", "5s", "--reset-rate", "0.5",
		"--duplicate-rate", "0.6", "--gateway-rate", "0.7", "ping")
	want := faults.Faults{ErrorRate: 0.1, AmbiguousRate: 0.2, Latency: faults.Duration(15 * time.Millisecond),
		Jitter: faults.Duration(2 * time.Millisecond), HangRate: 0.3, LateRate: 0.4, LateDelay: faults.Duration(5 * time.Second),
		ResetRate: 0.5, DuplicateRate: 0.6, GatewayRate: 0.7}
	if got := g.faults(); got != want {
		t.Fatalf("faults()=%v, want %v", got, want)
	}
	defaults := parseGlobals(t, "ping").faults()
	if got, want := defaults, (faults.Faults{ErrorRate: 0.2, LateDelay: faults.Duration(faults.DefaultLateDelay)}); got != want {
		t.Fatalf("default faults()=%v, want %v", got, want)
	}
}

// TestFaultFlagsAreTheSettings checks that the fault flags are the fault
// settings, one for one (faultFlag names them), and that each flag reaches
// its setting: a new fault needs its flag, and a flag its fault.
func TestFaultFlagsAreTheSettings(t *testing.T) {
	parser, err := kong.New(&CLI{}, kong.Exit(func(int) { t.Fatal("kong exited") }), kong.Writers(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, f := range parser.Model.Flags {
		if f.Group != nil && f.Group.Title == "Faults of local nodes and of rops serve:" {
			flags = append(flags, "--"+f.Name)
		}
	}
	var want []string
	for _, s := range faults.Settings() {
		want = append(want, faultFlag(s.Key))
	}
	slices.Sort(flags)
	slices.Sort(want)
	if !slices.Equal(flags, want) {
		t.Fatalf("fault flags %v, want one per setting: %v", flags, want)
	}

	sample := map[faults.Kind]string{faults.KindRate: "0.37", faults.KindDuration: "7ms"}
	defaults := parseGlobals(t, "ping").faults()
	for _, s := range faults.Settings() {
		if s.Kind == faults.KindBool {
			// --down names nodes: it is per node (setDown).
			continue
		}
		t.Run(s.Key, func(t *testing.T) {
			v, ok := sample[s.Kind]
			if !ok {
				t.Fatalf("no sample of kind %d", s.Kind)
			}
			want := defaults
			if err := s.Set(&want, v); err != nil {
				t.Fatal(err)
			}
			if got := parseGlobals(t, faultFlag(s.Key), v, "ping").faults(); got != want {
				t.Fatalf("%s %s gave faults %v, want %v", faultFlag(s.Key), v, got, want)
			}
		})
	}
}

// TestLocalNodesClosed checks that closing a cluster closes its local
// nodes: a late write still queued is dropped, and goleak (TestMain) finds
// no goroutine left waiting to apply it.
func TestLocalNodesClosed(t *testing.T) {
	g := parseGlobals(t, "--data", t.TempDir(), "--random-behavior", "0", "--late-rate", "1", "--late-delay", "1m", "--down", "node03", "ping")
	// Journaled, as a job opens it: a read-only open makes no data dir.
	cl, err := g.open(t.Context(), io.Discard, journaled)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if err := cl.target.Nodes[0].Create(ended, "5", "1.000001"); !core.IsAmbiguous(err) {
		t.Fatalf("late Create=%v, want an ambiguous error", err)
	}
	if err := cl.target.Nodes[2].Create(t.Context(), "5", "1.000001"); !core.IsRetryable(err) || core.ErrorCode(err) != core.EUnavailable {
		t.Fatalf("Create on node03, down=%v, want EUnavailable", err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
}
