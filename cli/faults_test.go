package cli

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/faults"
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

// TestLocalNodesClosed checks that closing a cluster closes its local
// nodes: a late write still queued is dropped, and goleak (TestMain) finds
// no goroutine left waiting to apply it.
func TestLocalNodesClosed(t *testing.T) {
	g := parseGlobals(t, "--data", t.TempDir(), "--random-behavior", "0", "--late-rate", "1", "--late-delay", "1m", "--down", "node03", "ping")
	cl, err := g.open(t.Context(), io.Discard, readOnly)
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
