package httpapi_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// originalServer returns a Server with ServerOptions.Original over names,
// whose nodes hold ids 1, 5 and 7 with heldToken; node01 has faults.
func originalServer(t *testing.T, f faults.Faults) *httpapi.Server {
	t.Helper()
	ns := make([]core.Node, len(names))
	for i, name := range names {
		store := memory.New()
		for _, id := range []core.GroupID{"1", "5", "7"} {
			if err := store.Create(t.Context(), id, heldToken); err != nil {
				t.Fatal(err)
			}
		}
		opts := faults.Options{Clock: clock}
		if i == 0 {
			opts.Faults = f
		}
		ns[i] = faults.New(name, store, opts)
	}
	return httpapi.NewServer(ns, httpapi.ServerOptions{Original: true, Tokens: core.NewTokenSource(clock), Clock: clock})
}

// TestOriginalGolden records what a Server with ServerOptions.Original
// answers, in testdata/golden/original-*.txt: the original's record without
// a timestamp, Flask's 404 for GET /groups and unknown routes, 400 for a
// create with the record's own timestamp, a 503 of a node that is down
// without Rops-Applied, and no Rops-Tombstones anywhere.
func TestOriginalGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults faults.Faults
		reqs   []request
	}{
		{name: "original-ping", reqs: []request{get("/ping"), get("/v1/ping"), get("/v1/ping/")}},
		{name: "original-get", reqs: []request{
			get("/v1/group/5", n1), get("/v1/group/6", n1), get("/group/7", n2),
		}},
		{name: "original-no-groups", reqs: []request{
			get("/v1/groups", n1), get("/groups?limit=2", n1), get("/v1/nope"), get("/v1/admin/faults"),
		}},
		{name: "original-post", reqs: []request{
			post(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken),
			post(`{"groupId": "5"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "9"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "9"}`, n1, "Timestamp: 1700000001.000001"),
			get("/v1/group/9", n1),
		}},
		// The server finds whether it holds an id with one read of the
		// ids after a bound just below it: neighbours must not count.
		{name: "original-post-neighbours", reqs: []request{
			post(`{"groupId": "50"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "4\u00ff"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "6"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "6"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "\u00e9"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "\u00e8"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "\u00e9"}`, n1, "Timestamp: 1700000001.000001"),
			post(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken),
		}},
		{name: "original-delete", reqs: []request{
			del(`{"groupId": "5"}`, n1, "Timestamp: 1700000001.000001"),
			del(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken),
			post(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken),
			post(`{"groupId": "5"}`, n1, "Timestamp: 1700000002.000001"),
			get("/v1/stats"),
		}},
		// The original ignores Rops-Fence, and fences nothing.
		{name: "original-fence", reqs: []request{
			get("/v1/group/5", n1, "Rops-Fence: "+fence2),
			del(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken, "Rops-Fence: "+fence1),
			post(`{"groupId": "9"}`, n1, "Timestamp: 1700000001.000001", "Rops-Fence: soon"),
		}},
		{name: "original-down", faults: faults.Faults{Down: true}, reqs: []request{
			get("/v1/group/5", n1), post(`{"groupId": "9"}`, n1), get("/v1/stats"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := originalServer(t, tc.faults)
			var b strings.Builder
			for i, req := range tc.reqs {
				if i > 0 {
					b.WriteString("\n")
				}
				originalExchange(t, srv, req, &b)
			}
			checkGolden(t, filepath.Join("testdata", "golden", tc.name+".txt"), b.String())
		})
	}
}

// TestClientPingsTheOriginal: the original server answers GET /ping, and
// GET /ping/ 404, so a Client pings /ping.
func TestClientPingsTheOriginal(t *testing.T) {
	srv := serve(t, originalServer(t, faults.Faults{}))
	if err := mustClient(t, srv, "node01", newHTTPClient(t)).Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// originalExchange sends req to h and writes both to b, as exchange does,
// and fails t if the answer carries a rops header.
func originalExchange(t *testing.T, h http.Handler, req request, b *strings.Builder) {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, req.path, body)
	fmt.Fprintf(b, ">>> %s %s\n", req.method, req.path)
	for _, kv := range req.header {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Add(k, v)
		fmt.Fprintf(b, "%s\n", kv)
	}
	if req.body != "" {
		fmt.Fprintf(b, "\n%s\n", req.body)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Fprintf(b, "<<< %d\n", w.Code)
	for k := range w.Header() {
		if strings.HasPrefix(k, "Rops-") {
			t.Errorf("%s %s: the answer has a %s header: the original sends none", req.method, req.path, k)
		}
	}
	for _, k := range []string{"Content-Type", "Allow", "Retry-After"} {
		if v := w.Header().Get(k); v != "" {
			fmt.Fprintf(b, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintf(b, "\n%s", w.Body.String())
}

// TestOriginalClient runs a Client against a Server with
// ServerOptions.Original, over HTTP: it finds what TestOriginalServer's
// imitation shows, from a real server with real faults. Records come
// without a token, List is unsupported, the node does not fence, a replayed
// create is "exists", and neither a node that is down nor a reset
// connection passes for "certainly not applied".
func TestOriginalClient(t *testing.T) {
	srv := serve(t, originalServer(t, faults.Faults{}))
	hc := newHTTPClient(t)
	c := mustClient(t, srv, "node01", hc)

	rec, err := c.Get(t.Context(), "5")
	if err != nil {
		t.Fatalf("Get(5): %v", err)
	}
	if got, want := rec, (core.Record{ID: "5"}); got != want {
		t.Fatalf("Get(5)=%+v, want %+v", got, want)
	}
	if got := c.Fences(); got {
		t.Fatalf("Fences()=%v after an answer of the original's protocol, want false", got)
	}
	if _, err := c.List(t.Context(), "", 10); core.ErrorCode(err) != core.EUnsupported {
		t.Fatalf("List: err=%v, want code %s", err, core.EUnsupported)
	}
	if err := c.Create(t.Context(), "9", "1700000001.000001"); err != nil {
		t.Fatalf("Create(9): %v", err)
	}
	if err := c.Create(t.Context(), "9", "1700000001.000001"); !errors.Is(err, core.ErrExists) {
		t.Fatalf("Create(9) again with its own token: err=%v, want %v (the original has no replay)", err, core.ErrExists)
	}
	if err := c.Delete(t.Context(), "9", "1700000001.000001"); err != nil {
		t.Fatalf("Delete(9): %v", err)
	}
	coord, err := core.New(core.Config{Nodes: clients(t, srv, hc, memoryNodes(names...))})
	if err != nil {
		t.Fatal(err)
	}
	st, err := coord.Stats(t.Context(), core.StatsOptions{})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if !st.CountsOnly || !st.Consistent || len(st.Nodes) != 3 || st.Nodes[0].Count != 3 {
		t.Fatalf("Stats=%+v, want consistent counts only, 3 on each of 3 nodes", st)
	}

	for _, tc := range []struct {
		name   string
		faults faults.Faults
	}{
		{"down", faults.Faults{Down: true}},
		{"reset", faults.Faults{ResetRate: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, originalServer(t, tc.faults))
			c := mustClient(t, srv, "node01", newHTTPClient(t))
			err := c.Create(t.Context(), "9", "1700000001.000001")
			if got, want := core.ErrorCode(err), core.ETransient; got != want {
				t.Fatalf("Create on a node %s: err=%v, code %s, want %s: may have been applied", tc.name, err, got, want)
			}
		})
	}
}
