package cli

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/plugins"
)

func TestCompactNames(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"node01"}, "node01"},
		{[]string{"node01", "node02", "node03"}, "node01..03"},
		{[]string{"node08", "node09", "node10"}, "node08..10"},
		{[]string{"node01", "node03"}, "node01, node03"},
		{[]string{"a", "b"}, "a, b"},
		{[]string{"n9", "n10"}, "n9, n10"},
		{[]string{"x1", "y2"}, "x1, y2"},
	} {
		if got := compactNames(tc.in); got != tc.want {
			t.Errorf("compactNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestUnreachableTLS: nodes whose certificate is not trusted are a cluster
// nobody can reach: the job names the cause once, stops early and exits
// ExitUnreachable.
func TestUnreachableTLS(t *testing.T) {
	target, err := plugins.OpenTarget(t.Context(), []string{"memory://node01", "memory://node02", "memory://node03"}, plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	srv := httptest.NewUnstartedServer(httpapi.NewServer(target.Nodes, httpapi.ServerOptions{}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshakes
	srv.StartTLS()
	defer srv.Close()
	base := srv.URL + "/v1"
	cfg := filepath.Join(t.TempDir(), "targets.json")
	specs := fmt.Sprintf(`{"targets": {"tls": {"nodes": ["%s?node=node01", "%s?node=node02", "%s?node=node03"]}}}`, base, base, base)
	if err := os.WriteFile(cfg, []byte(specs), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "--data", t.TempDir(), "--config", cfg, "-t", "tls", "create", "--range", "0-199")
	want := "rops: node01..03: x509: certificate signed by unknown authority at " + base + ": give the CA with --ca-file (or ca_file in the target's config)\n"
	if code != ExitUnreachable || !strings.HasPrefix(errs, want) || !strings.Contains(errs, "ids not started") {
		t.Fatalf("create against untrusted nodes: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 6 and stderr starting %q, then ids not started", code, out, errs, want)
	}
	for _, n := range target.Nodes {
		if c, err := n.Count(t.Context()); err != nil || c != 0 {
			t.Errorf("%s holds %d records (%v), want none", n.Name(), c, err)
		}
	}
}

// TestSummarizeUnreachable: nodes are grouped by cause and address, each
// cause with its hint.
func TestSummarizeUnreachable(t *testing.T) {
	target, err := plugins.OpenTarget(t.Context(), []string{"memory://node01", "memory://node02", "memory://node03"}, plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	dns := &core.Error{Code: core.EUnavailable, Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}}
	refused := &core.Error{Code: core.EUnavailable, Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	got := summarizeUnreachable(target.Nodes, []error{dns, dns, fmt.Errorf("%w (retries exhausted)", refused)})
	want := "node01..02: lookup x.invalid: no such host: is the host name right?; node03: connection refused: is rops serve running?"
	if got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if !cannotReach(dns) || !cannotReach(fmt.Errorf("wrapped: %w", refused)) || cannotReach(core.Errorf(core.ETransient, "timeout")) || cannotReach(core.Errorf(core.ERejected, "400")) {
		t.Errorf("cannotReach misclassifies")
	}
}

// TestUnreachableInterrupted: operations that ended "not sent" because the
// job was interrupted say nothing about the nodes: no probe, no summary.
// Without the interruption the same results name the cause.
func TestUnreachableInterrupted(t *testing.T) {
	target, err := plugins.OpenTarget(t.Context(), []string{"http://127.0.0.1:1/v1?node=node01", "http://127.0.0.1:1/v1?node=node02"}, plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	notSent := &core.Error{Code: core.EUnavailable, Message: "request not sent: context canceled", Err: context.Canceled}
	res := core.Result{Op: core.OpCreate, ID: "1", Outcome: core.RolledBack,
		Nodes: []core.NodeResult{{Node: "node01", Err: notSent}, {Node: "node02", Err: notSent}}}
	for _, interrupted := range []bool{true, false} {
		ctx, cancel := context.WithCancel(t.Context())
		if interrupted {
			cancel()
		}
		u := newUnreachable(target.Nodes)
		for range unreachableBound {
			u.add(res)
		}
		var stopped bool
		for range u.ids(ctx, slices.Values([]core.GroupID{"2"})) {
		}
		stopped = u.stopped
		var out strings.Builder
		u.report(ctx, &out, 1)
		cancel()
		want := ""
		if !interrupted {
			want = "rops: node01..02: connection refused at http://127.0.0.1:1/v1: is rops serve running?\n" +
				"rops: stopped after 8 operations reached no node: 1 ids not started (nothing was sent for them); run the job again once the nodes answer\n"
		}
		if out.String() != want || stopped == interrupted {
			t.Errorf("interrupted %v: stopped %v, report %q; want stopped %v, report %q", interrupted, stopped, out.String(), !interrupted, want)
		}
	}
}
