package cli

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/plugins"
)

// serveMemory serves three memory nodes, node01..03, over HTTP on a free
// port of 127.0.0.1 and returns the server's base URL and the nodes.
func serveMemory(t *testing.T) (string, *plugins.Target) {
	t.Helper()
	target, err := plugins.OpenTarget(t.Context(), []string{"memory://node01", "memory://node02", "memory://node03"}, plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	srv := httptest.NewServer(httpapi.NewServer(target.Nodes, httpapi.ServerOptions{}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1", target
}

// TestRemoteFlag: --remote, and ROPS_REMOTE, point the remote target at
// node01..03 of the server at that URL.
func TestRemoteFlag(t *testing.T) {
	base, target := serveMemory(t)
	data := t.TempDir()
	if code, out, errs := run(t, "--data", data, "-t", "remote", "--remote", base, "create-one", "7"); code != ExitOK {
		t.Fatalf("create-one with --remote %s: exit %d\n%s%s", base, code, out, errs)
	}
	t.Setenv("ROPS_REMOTE", base+"/") // a trailing slash is fine
	if code, out, errs := run(t, "--data", data, "-t", "remote", "create", "--range", "8-9"); code != ExitOK {
		t.Fatalf("create with ROPS_REMOTE=%s: exit %d\n%s%s", base, code, out, errs)
	}
	for _, n := range target.Nodes {
		if c, err := n.Count(t.Context()); err != nil || c != 3 {
			t.Errorf("%s holds %d records (%v), want 3", n.Name(), c, err)
		}
	}
}

// TestRemoteFlagBad: a URL the HTTP nodes cannot use is a usage error
// that says why, before anything is opened.
func TestRemoteFlagBad(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"ftp://127.0.0.1/v1", "give an http:// or https:// URL"},
		{"127.0.0.1:8080", "give an http:// or https:// URL"},
		{"http:///v1", "no host"},
		{"http://127.0.0.1:8080/v1?node=node01", "remove the query"},
		{"http://127.0.0.1:8080/v1#x", "remove the query and fragment"},
		{"http://127.0.0.1:99999/v1", "port 99999 is out of range"},
		{"http://me@127.0.0.1:8080/v1", "rops sends no credentials"},
	} {
		code, _, errs := run(t, "--data", t.TempDir(), "-t", "remote", "--remote", tc.url, "ping")
		if code != ExitUsage || !strings.Contains(errs, "--remote: ") || !strings.Contains(errs, tc.want) {
			t.Errorf("--remote %s: exit %d, stderr %q; want exit 2 saying %q", tc.url, code, errs, tc.want)
		}
	}
}
