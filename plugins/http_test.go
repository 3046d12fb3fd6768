package plugins

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/faults"
	"github.com/reliable-ops/rops/nodes/httpapi"
	"github.com/reliable-ops/rops/nodes/memory"
)

// countingTransport counts the requests it sends.
type countingTransport struct {
	http.RoundTripper
	n atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.RoundTripper.RoundTrip(r)
}

// serveNodes serves memory nodes called names until the test ends.
func serveNodes(t *testing.T, names ...string) *httptest.Server {
	t.Helper()
	ns := make([]core.Node, len(names))
	for i, name := range names {
		ns[i] = faults.New(name, memory.New(), faults.Options{})
	}
	srv := httptest.NewServer(httpapi.NewServer(ns, httpapi.ServerOptions{}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOpenHTTP(t *testing.T) {
	srv := serveNodes(t, "node01", "node02")
	hc := httpapi.NewHTTPClient(4)
	t.Cleanup(hc.CloseIdleConnections)
	counter := &countingTransport{RoundTripper: hc.Transport}
	hc.Transport = counter
	var log bytes.Buffer
	n, c, err := Open(t.Context(), srv.URL+"/v1?node=node02", Env{HTTP: hc, Log: textLog(&log)})
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		t.Fatalf("http node has a closer %T; its pool belongs to Env.HTTP", c)
	}
	if got, want := n.Name(), "node02"; got != want {
		t.Fatalf("Name()=%q, want %q", got, want)
	}
	if err := n.Create(t.Context(), "5", "1633806680.000001"); err != nil {
		t.Fatal(err)
	}
	rec, err := n.Get(t.Context(), "5")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Token, core.Token("1633806680.000001"); got != want {
		t.Fatalf("token=%q, want %q", got, want)
	}
	if got, want := counter.n.Load(), int64(2); got != want {
		t.Fatalf("Env.HTTP sent %d requests, want %d", got, want)
	}
	if !strings.Contains(log.String(), "msg=answer node=node02 op=create groupId=5 result=created\n") {
		t.Fatalf("log=%q, want the create logged", log.String())
	}
	// node01 of the same server holds nothing.
	n1, _, err := Open(t.Context(), srv.URL+"?node=node01", Env{HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := n1.Count(t.Context()); err != nil || got != 0 {
		t.Fatalf("node01 Count=%d, %v; want 0", got, err)
	}
}

func TestOpenHTTPInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"no node", "http://127.0.0.1:8080/v1", "no node name: add ?node=NAME to name the node on the server, such as http://127.0.0.1:8080/v1?node=node01"},
		{"empty node", "http://127.0.0.1:8080/v1?node=", "no node name"},
		{"node twice", "http://127.0.0.1:8080/v1?node=a&node=b", `setting "node" is given 2 times`},
		{"bad node", "https://127.0.0.1:8080/v1?node=node%2001", `invalid node name "node 01"`},
		{"fault", "http://127.0.0.1:8080/v1?node=node01&error_rate=0.2", "error_rate= is a fault setting, and the faults of a http node belong to its server"},
		{"seed", "https://127.0.0.1:8080/v1?node=node01&seed=1", "seed= is a fault setting"},
		{"unknown", "http://127.0.0.1:8080/v1?node=node01&timeout=1s", `unknown setting "timeout": http nodes take only node=NAME`},
		{"no host", "http:///v1?node=node01", "no server address"},
		{"opaque", "http:node01", "no server address"},
		{"user", "http://me:pw@127.0.0.1:8080/v1?node=node01", "takes no user"},
		{"fragment", "http://127.0.0.1:8080/v1?node=node01#x", `unexpected fragment "#x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Open(t.Context(), tc.spec, Env{})
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("code of %v=%q, want %q", err, got, want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%q, want it to contain %q", err, tc.want)
			}
		})
	}
}
