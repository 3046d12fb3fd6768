package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// faultyNodes returns a node over a new memory store per fault set, named
// node01, node02, ..., closed when the test ends.
func faultyNodes(tb testing.TB, sets ...faults.Faults) []core.Node {
	tb.Helper()
	ns := make([]core.Node, len(sets))
	for i, f := range sets {
		n := faults.New(fmt.Sprintf("node%02d", i+1), memory.New(), faults.Options{Faults: f, Seed: 1})
		tb.Cleanup(func() { n.Close() })
		ns[i] = n
	}
	return ns
}

// do sends one request to h in process and returns the answer's status and
// body. A canceled ctx ends a hang or a late write at once. A handler that
// aborts (a reset connection cannot be taken over here) answers 0.
func do(tb testing.TB, ctx context.Context, h http.Handler, method, path, node, body string) (code int, text string) {
	tb.Helper()
	r := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if node != "" {
		r.Header.Set("Node", node)
	}
	w := httptest.NewRecorder()
	func() {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
		}()
		h.ServeHTTP(w, r)
	}()
	if w.Code == 200 && w.Body.Len() == 0 && len(w.Result().Header) == 0 {
		return 0, ""
	}
	return w.Code, w.Body.String()
}

// scrape returns the server's /metrics text.
func scrape(tb testing.TB, h http.Handler) string {
	tb.Helper()
	code, text := do(tb, tb.Context(), h, "GET", "/metrics", "", "")
	if code != http.StatusOK {
		tb.Fatalf("GET /metrics: %d %s", code, text)
	}
	return text
}

// wantLine fails unless text has the sample line want.
func wantLine(tb testing.TB, text, want string) {
	tb.Helper()
	for line := range strings.Lines(text) {
		if strings.TrimSuffix(line, "\n") == want {
			return
		}
	}
	tb.Errorf("no line %q in /metrics:\n%s", want, grepRops(text))
}

// hasSample reports whether text has a sample line that starts with
// prefix and holds label, such as `fault="error_`.
func hasSample(text, prefix, label string) bool {
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, label) {
			return true
		}
	}
	return false
}

// grepRops returns text's rops_ lines, for failure messages.
func grepRops(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "rops_") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func createBody(id int) string { return fmt.Sprintf(`{"groupId": "g%d"}`, id) }

// TestMetricsCounts sends known requests and reads them back from
// /metrics: counts by node, route, status and fault, the latency
// histogram's count, and each node's records.
func TestMetricsCounts(t *testing.T) {
	ns := faultyNodes(t, faults.Faults{}, faults.Faults{ErrorRate: 1}, faults.Faults{Down: true})
	s := httpapi.NewServer(ns, httpapi.ServerOptions{Metrics: true})
	ctx := t.Context()
	for i := range 3 {
		if code, text := do(t, ctx, s, "POST", "/v1/group", "node01", createBody(i)); code != 201 {
			t.Fatalf("create on node01: %d %s", code, text)
		}
	}
	// ErrorRate 1 answers 500 or 408, as the seed draws them.
	byStatus := map[int]int{}
	for i := range 4 {
		code, _ := do(t, ctx, s, "POST", "/group", "node02", createBody(i))
		byStatus[code]++
	}
	if byStatus[500]+byStatus[408] != 4 {
		t.Fatalf("node02 with error_rate 1 answered %v, want 500s and 408s", byStatus)
	}
	code, _ := do(t, ctx, s, "DELETE", "/v1/group", "node03", createBody(0))
	do(t, ctx, s, "GET", "/v1/group/g1", "node01", "")
	do(t, ctx, s, "GET", "/v1/ping", "", "")
	do(t, ctx, s, "GET", "/v1/nope", "node09", "")

	text := scrape(t, s)
	wantLine(t, text, `rops_http_requests_total{code="201",fault="none",handler="/group",method="post",node="node01"} 3`)
	for _, st := range []int{500, 408} {
		if n := byStatus[st]; n > 0 {
			wantLine(t, text, fmt.Sprintf(`rops_http_requests_total{code="%d",fault="error_%d",handler="/group",method="post",node="node02"} %d`, st, st, n))
		}
	}
	wantLine(t, text, fmt.Sprintf(`rops_http_requests_total{code="%d",fault="down",handler="/group",method="delete",node="node03"} 1`, code))
	wantLine(t, text, `rops_http_requests_total{code="200",fault="none",handler="/group/{id}",method="get",node="node01"} 1`)
	wantLine(t, text, `rops_http_requests_total{code="200",fault="none",handler="/ping",method="get",node=""} 1`)
	// An unknown node and route do not grow the labels' values.
	wantLine(t, text, `rops_http_requests_total{code="404",fault="none",handler="other",method="get",node=""} 1`)
	wantLine(t, text, `rops_http_request_duration_seconds_count{handler="/group",method="post",node="node01"} 3`)
	wantLine(t, text, `rops_http_request_duration_seconds_count{handler="/group",method="post",node="node02"} 4`)
	wantLine(t, text, `rops_node_records{node="node01"} 3`)
	wantLine(t, text, `rops_node_records{node="node02"} 0`)
	if strings.Contains(text, `rops_node_records{node="node03"}`) {
		t.Errorf("node03 is down, yet has a records sample:\n%s", grepRops(text))
	}
	// The server's own registry holds the runtime's metrics too.
	if !strings.Contains(text, "\ngo_goroutines ") {
		t.Errorf("no go_goroutines in /metrics")
	}
}

// TestMetricsLabels checks the handler and method labels, which follow
// promhttp's middleware: the method in lower case, "unknown" for one
// promhttp does not know; the path pattern, at the root or under /v1,
// "other" for a path no route serves.
func TestMetricsLabels(t *testing.T) {
	for _, tc := range []struct {
		name, method, path string
		want               string // the sample's labels but fault and node
	}{
		{"get", "GET", "/v1/group/g1", `code="404",fault="none",handler="/group/{id}",method="get"`},
		{"head", "HEAD", "/ping", `code="200",fault="none",handler="/ping",method="head"`},
		{"trailing slash", "GET", "/v1/ping/", `code="200",fault="none",handler="/ping",method="get"`},
		{"post", "POST", "/v1/group", `code="201",fault="none",handler="/group",method="post"`},
		{"patch", "PATCH", "/group", `code="405",fault="none",handler="/group",method="patch"`},
		{"unknown method", "FOO", "/v1/group", `code="405",fault="none",handler="/group",method="unknown"`},
		{"unknown path", "GET", "/v1/nope", `code="404",fault="none",handler="other",method="get"`},
		{"stats", "GET", "/stats", `code="200",fault="none",handler="/stats",method="get"`},
		{"readyz", "GET", "/v1/readyz", `code="200",fault="none",handler="/readyz",method="get"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{Metrics: true})
			do(t, t.Context(), s, tc.method, tc.path, "", createBody(1))
			wantLine(t, scrape(t, s), `rops_http_requests_total{`+tc.want+`,node="node01"} 1`)
		})
	}
}

// TestMetricsFaults checks the fault label of every injected fault, each
// on a node that injects it always.
func TestMetricsFaults(t *testing.T) {
	late := faults.Duration(faults.DefaultLateDelay)
	for _, tc := range []struct {
		fault  string
		faults faults.Faults
	}{
		{faults.FaultHang, faults.Faults{HangRate: 1}},
		{faults.FaultLate, faults.Faults{LateRate: 1, LateDelay: late}},
		{faults.FaultReset, faults.Faults{ResetRate: 1}},
		{faults.FaultDuplicate, faults.Faults{DuplicateRate: 1}},
		{faults.FaultGateway, faults.Faults{GatewayRate: 1}},
		{faults.FaultDown, faults.Faults{Down: true}},
		{"ambiguous_", faults.Faults{AmbiguousRate: 1}},
		{"error_", faults.Faults{ErrorRate: 1}},
		{faults.FaultNone, faults.Faults{}},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			s := httpapi.NewServer(faultyNodes(t, tc.faults), httpapi.ServerOptions{Metrics: true})
			// A hang or a late write holds the request until its
			// client gives up: here, at once.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			do(t, ctx, s, "POST", "/v1/group", "", createBody(1))
			text := scrape(t, s)
			if !hasSample(text, "rops_http_requests_total{", `fault="`+tc.fault) {
				t.Errorf("no rops_http_requests_total sample with fault=%q...:\n%s", tc.fault, grepRops(text))
			}
			if tc.fault == faults.FaultReset {
				// No answer: counted as nginx logs it.
				wantLine(t, text, `rops_http_requests_total{code="444",fault="reset",handler="/group",method="post",node="node01"} 1`)
			}
		})
	}
}

// TestMetricsOff checks that without ServerOptions.Metrics /metrics is an
// unknown route.
func TestMetricsOff(t *testing.T) {
	s := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{})
	if code, text := do(t, t.Context(), s, "GET", "/metrics", "", ""); code != 404 || !strings.Contains(text, "/healthz, /readyz, at the root") {
		t.Errorf("GET /metrics without metrics: %d %s, want 404 not listing /metrics", code, text)
	}
}

// TestMetricsSideBySide checks that servers count apart, each in a
// registry of its own.
func TestMetricsSideBySide(t *testing.T) {
	a := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{Metrics: true})
	b := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{Metrics: true})
	do(t, t.Context(), a, "GET", "/ping", "", "")
	do(t, t.Context(), a, "GET", "/ping", "", "")
	do(t, t.Context(), b, "GET", "/ping", "", "")
	wantLine(t, scrape(t, a), `rops_http_requests_total{code="200",fault="none",handler="/ping",method="get",node="node01"} 2`)
	wantLine(t, scrape(t, b), `rops_http_requests_total{code="200",fault="none",handler="/ping",method="get",node="node01"} 1`)
}

// TestMetricsOverHTTP scrapes a real server after requests through a
// Client, under --original's protocol too: the operational routes are
// served there as well.
func TestMetricsOverHTTP(t *testing.T) {
	for _, original := range []bool{false, true} {
		t.Run(fmt.Sprint("original=", original), func(t *testing.T) {
			ns := memoryNodes(names...)
			srv := serve(t, httpapi.NewServer(ns, httpapi.ServerOptions{Metrics: true, Original: original}))
			hc := newHTTPClient(t)
			c := mustClient(t, srv, "node02", hc)
			for i := range 5 {
				if err := c.Create(t.Context(), core.GroupID(fmt.Sprint("h", i)), "1.000001"); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := hc.Get(srv.URL + "/v1/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("GET /v1/metrics: %d %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
			}
			wantLine(t, string(b), `rops_http_requests_total{code="201",fault="none",handler="/group",method="post",node="node02"} 5`)
			wantLine(t, string(b), `rops_node_records{node="node02"} 5`)
		})
	}
}

// TestHealth checks /healthz and /readyz, at the root and under /v1, with
// every node up, then with one down, under both protocols.
func TestHealth(t *testing.T) {
	for _, original := range []bool{false, true} {
		t.Run(fmt.Sprint("original=", original), func(t *testing.T) {
			ns := faultyNodes(t, faults.Faults{}, faults.Faults{}, faults.Faults{})
			s := httpapi.NewServer(ns, httpapi.ServerOptions{Original: original})
			ctx := t.Context()
			for _, p := range []string{"/healthz", "/v1/healthz"} {
				if code, text := do(t, ctx, s, "GET", p, "", ""); code != 200 || text != "ok\n" {
					t.Errorf("GET %s: %d %q, want 200 ok", p, code, text)
				}
			}
			for _, p := range []string{"/readyz", "/v1/readyz"} {
				if code, text := do(t, ctx, s, "GET", p, "", ""); code != 200 || text != "ready\n" {
					t.Errorf("GET %s: %d %q, want 200 ready", p, code, text)
				}
			}
			if code, _ := do(t, ctx, s, "POST", "/readyz", "", ""); code != 405 {
				t.Errorf("POST /readyz: %d, want 405", code)
			}
			n, _ := faults.Faulty(ns[1])
			if err := n.SetFaults(faults.Faults{Down: true}); err != nil {
				t.Fatal(err)
			}
			code, text := do(t, ctx, s, "GET", "/v1/readyz", "", "")
			if code != 503 || !strings.HasPrefix(text, "node02: not ready: ") || strings.Contains(text, "node01") || strings.Contains(text, "node03") {
				t.Errorf("GET /v1/readyz with node02 down: %d %q, want 503 naming node02 only", code, text)
			}
			if code, text := do(t, ctx, s, "GET", "/healthz", "", ""); code != 200 {
				t.Errorf("GET /healthz with node02 down: %d %q, want 200: the process serves", code, text)
			}
		})
	}
}

// TestReadyzClosedStore checks that a node whose store is closed is not
// ready.
func TestReadyzClosedStore(t *testing.T) {
	st := memory.New()
	n := faults.New("node01", closedStore{st}, faults.Options{})
	t.Cleanup(func() { n.Close() })
	s := httpapi.NewServer([]core.Node{n}, httpapi.ServerOptions{})
	if code, text := do(t, t.Context(), s, "GET", "/readyz", "", ""); code != 503 || !strings.Contains(text, "node01: not ready: store closed") {
		t.Errorf("GET /readyz on a closed store: %d %q", code, text)
	}
}

// closedStore is a store that has been closed: every read fails.
type closedStore struct{ core.Store }

func (closedStore) List(context.Context, core.GroupID, int) ([]core.Record, error) {
	return nil, errors.New("store closed")
}

// BenchmarkMetrics measures what counting a request costs the handler:
// the same requests with metrics off and on.
func BenchmarkMetrics(b *testing.B) {
	for _, route := range []struct{ method, path string }{{"GET", "/v1/group/5"}, {"POST", "/v1/group"}} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/metrics=%v", route.method, on), func(b *testing.B) {
				ns := memoryNodes(names...)
				if err := ns[0].Create(b.Context(), "5", "1.000001"); err != nil {
					b.Fatal(err)
				}
				s := httpapi.NewServer(ns, httpapi.ServerOptions{Metrics: on})
				var next atomic.Int64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					r := httptest.NewRequest(route.method, route.path, nil)
					r.Header.Set("Node", "node01")
					r.Header.Set("Timestamp", "1700000000.000001")
					w := &discardWriter{h: http.Header{}}
					for pb.Next() {
						if route.method == "POST" {
							r.Body = io.NopCloser(strings.NewReader(createBody(int(next.Add(1)))))
						}
						clear(w.h)
						s.ServeHTTP(w, r)
						if w.code >= 300 {
							b.Errorf("status %d", w.code)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkMetricsLoopback measures the same over loopback HTTP through a
// Client, as a job sends requests: what counting costs a real request.
func BenchmarkMetricsLoopback(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("GET/metrics=%v", on), func(b *testing.B) {
			ns := memoryNodes(names...)
			if err := ns[0].Create(b.Context(), "5", "1.000001"); err != nil {
				b.Fatal(err)
			}
			srv := serve(b, httpapi.NewServer(ns, httpapi.ServerOptions{Metrics: on}))
			c := mustClient(b, srv, "node01", newHTTPClient(b))
			b.SetParallelism(4)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Get(b.Context(), "5"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
