package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/storetest"
)

// discardWriter is the cheapest http.ResponseWriter, so that a benchmark
// of the handler measures the handler.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header               { return w.h }
func (w *discardWriter) Write(b []byte) (int, error)       { return len(b), nil }
func (w *discardWriter) WriteString(s string) (int, error) { return len(s), nil } // as net/http's
func (w *discardWriter) WriteHeader(code int)              { w.code = code }

// BenchmarkServer measures the handler alone, on every core, for the
// requests a job sends.
func BenchmarkServer(b *testing.B) {
	for _, bc := range []struct {
		name   string
		method string
		path   string
		body   func(i int64) []byte // nil: no body
		log    bool                 // with an access log
		served bool                 // as rops serve runs (servedOptions)
		items  int                  // a batch's items, each counted as a request
		want   int
	}{
		{name: "ping", method: "GET", path: "/v1/ping", want: 200},
		{name: "get", method: "GET", path: "/v1/group/5", want: 200},
		{name: "create", method: "POST", path: "/v1/group", want: 201,
			body: func(i int64) []byte { return []byte(`{"groupId": "c` + strconv.FormatInt(i, 10) + `"}`) }},
		{name: "create-number-id", method: "POST", path: "/v1/group", want: 201,
			body: func(i int64) []byte { return []byte(`{"groupId": 1` + strconv.FormatInt(i, 10) + `}`) }},
		{name: "create-logged", method: "POST", path: "/v1/group", want: 201, log: true,
			body: func(i int64) []byte { return []byte(`{"groupId": "c` + strconv.FormatInt(i, 10) + `"}`) }},
		{name: "create-served", method: "POST", path: "/v1/group", want: 201, served: true,
			body: func(i int64) []byte { return []byte(`{"groupId": "c` + strconv.FormatInt(i, 10) + `"}`) }},
		// A batch of 128 creates as a Client sends it (appendBatchBody);
		// items/s is per item.
		{name: "batch-served", method: "POST", path: "/v1/batch", want: 200, served: true, items: 128,
			body: func(i int64) []byte {
				b := []byte(`{"wait":"1.8s","items":[`)
				for k := range 128 {
					if k > 0 {
						b = append(b, ',')
					}
					b = append(b, `{"op":"create","groupId":"b`...)
					b = strconv.AppendInt(append(strconv.AppendInt(b, i, 10), '-'), int64(k), 10)
					b = append(b, `","timestamp":"1700000000.000001"}`...)
				}
				return append(b, "]}"...)
			}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ns := memoryNodes(names...)
			opts := httpapi.ServerOptions{}
			if bc.log {
				opts.AccessLog = slog.New(slog.NewTextHandler(io.Discard, nil))
			}
			if bc.served {
				ns, opts = servedOptions()
			}
			if err := ns[0].Create(b.Context(), "5", "1.000001"); err != nil {
				b.Fatal(err)
			}
			s := httpapi.NewServer(ns, opts)
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(bc.method, bc.path, nil)
				r.Host = servedAddr
				r.Header.Set("Node", "node01")
				r.Header.Set("Timestamp", "1700000000.000001")
				w := &discardWriter{h: http.Header{}}
				var body bytes.Reader
				for pb.Next() {
					if bc.body != nil {
						body.Reset(bc.body(next.Add(1)))
						r.Body = io.NopCloser(&body)
					}
					clear(w.h)
					s.ServeHTTP(w, r)
					if w.code != bc.want {
						b.Errorf("status %d, want %d", w.code, bc.want)
						return
					}
				}
			})
			if bc.items > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bc.items), "ns/item")
			}
		})
	}
}

// servedAddr is the address servedOptions' Host check takes for the
// server's own.
const servedAddr = "127.0.0.1:8080"

// servedOptions returns the nodes and options of rops serve --store memory
// at 0 faults (cli/serve.go): memory stores behind faults with none but the
// CLI's default --late-delay, an access log in slog's text format through
// a TextHandler, the metrics and the Host check.
func servedOptions() ([]core.Node, httpapi.ServerOptions) {
	ns := make([]core.Node, len(names))
	for i, name := range names {
		ns[i] = faults.New(name, memory.New(), faults.Options{Faults: faults.Faults{LateDelay: faults.Duration(faults.DefaultLateDelay)}})
	}
	return ns, httpapi.ServerOptions{
		AccessLog: slog.New(httpapi.NewTextHandler(io.Discard, nil)),
		Metrics:   true,
		HostCheck: &httpapi.HostCheck{Listen: servedAddr},
	}
}

// BenchmarkLoopback measures requests over loopback HTTP from 16
// goroutines sharing one pool, as a job sends them: a bare net/http handler
// for scale, then the server's routes through a Client. Client and server
// share the machine's cores.
func BenchmarkLoopback(b *testing.B) {
	ns := memoryNodes(names...)
	if err := ns[0].Create(b.Context(), "5", "1.000001"); err != nil {
		b.Fatal(err)
	}
	server := httpapi.NewServer(ns, httpapi.ServerOptions{})
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "PONG\n") })
	var next atomic.Int64
	for _, bc := range []struct {
		name string
		h    http.Handler
		call func(ctx context.Context, c *httpapi.Client) error
	}{
		{"bare", bare, func(ctx context.Context, c *httpapi.Client) error { return c.Ping(ctx) }},
		{"ping", server, func(ctx context.Context, c *httpapi.Client) error { return c.Ping(ctx) }},
		{"get", server, func(ctx context.Context, c *httpapi.Client) error { _, err := c.Get(ctx, "5"); return err }},
		{"create", server, func(ctx context.Context, c *httpapi.Client) error {
			return c.Create(ctx, core.GroupID("c"+strconv.FormatInt(next.Add(1), 10)), "1.000001")
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := serve(b, bc.h)
			c := mustClient(b, srv, "node01", newHTTPClient(b))
			b.SetParallelism(max(1, core.DefaultConcurrency/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.call(b.Context(), c); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkBulkCreateHTTP runs a bulk create through a coordinator over
// three Clients of one server on loopback, with memory stores: without
// faults, and with the original's RANDOM_BEHAVIOR of 0.2; 16 at once, and
// at the CLI's default, auto; with batches (POST /batch) and without.
func BenchmarkBulkCreateHTTP(b *testing.B) {
	for _, conc := range []int{core.DefaultConcurrency, core.AutoConcurrency} {
		for _, rate := range []float64{0, 0.2} {
			for _, batches := range []bool{true, false} {
				bulkCreateHTTP(b, conc, rate, batches)
			}
		}
	}
}

// bulkCreateHTTP is one case of BenchmarkBulkCreateHTTP.
func bulkCreateHTTP(b *testing.B, conc int, rate float64, batches bool) {
	name := fmt.Sprintf("concurrency=%d/error_rate=%v", conc, rate)
	if conc == core.AutoConcurrency {
		name = fmt.Sprintf("concurrency=auto/error_rate=%v", rate)
	}
	name += map[bool]string{true: "/batches=on", false: "/batches=off"}[batches]
	b.Run(name, func(b *testing.B) {
		ns := make([]core.Node, len(names))
		for i, name := range names {
			ns[i] = faults.New(name, memory.New(), faults.Options{Seed: uint64(i), Faults: faults.Faults{ErrorRate: rate}})
		}
		srv := serve(b, httpapi.NewServer(ns, httpapi.ServerOptions{}))
		hc := httpapi.NewHTTPClient(core.MaxConcurrency * len(ns))
		b.Cleanup(hc.CloseIdleConnections)
		cs := make([]core.Node, len(ns))
		for i, n := range ns {
			c, err := httpapi.NewClient(srv.URL+"/v1", n.Name(), httpapi.ClientOptions{HTTP: hc, Batch: batches})
			if err != nil {
				b.Fatal(err)
			}
			cs[i] = c
		}
		coord, err := core.New(core.Config{Nodes: cs})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		rep := coord.Bulk(b.Context(), core.OpCreate, storetest.IDs(b.N), conc, nil)
		b.StopTimer()
		if rep.Done != b.N {
			b.Fatalf("%d of %d creates done: %+v", rep.Done, b.N, rep)
		}
		var trips int64
		for _, c := range cs {
			trips += c.(*httpapi.Client).Stats().RoundTrips
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		b.ReportMetric(float64(rep.Requests)/float64(b.N), "requests/op")
		b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/op")
	})
}

// BenchmarkClient measures what a client costs per create over loopback
// HTTP, 48 requests in flight, against one handler that answers as a rops
// node does and stores nothing: rops' Client (under a fence, as the
// coordinator sends), and a bare net/http client sending the same request
// as scripts/barehttp -client. The handler costs the same for both, so the
// difference of their CPU per request (cpu-ns/op: the process's user and
// system time) is the Client's own.
func BenchmarkClient(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hd := w.Header()
		hd["Rops-Protocol"] = []string{"2"}
		hd["Rops-Tombstones"] = []string{"10m0s"}
		hd["Rops-Removes"] = []string{"older_than"}
		hd["Content-Type"] = []string{"text/plain; charset=utf-8"}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "CREATED\n")
	})
	const token = "1700000000.000001"
	var next atomic.Int64
	for _, bc := range []struct {
		name   string
		create func(b *testing.B, srv *httptest.Server) func(ctx context.Context, id string) error
	}{
		{"bare", func(b *testing.B, srv *httptest.Server) func(ctx context.Context, id string) error {
			hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, DisableCompression: true}}
			b.Cleanup(hc.CloseIdleConnections)
			url := srv.URL + "/v1/group"
			return func(ctx context.Context, id string) error {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(`{"groupId": "`+id+`"}`)))
				if err != nil {
					return err
				}
				req.Header = http.Header{"Node": {"node01"}, "Content-Type": {"application/json"}, "Timestamp": {token}}
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}
		}},
		{"rops", func(b *testing.B, srv *httptest.Server) func(ctx context.Context, id string) error {
			c := mustClient(b, srv, "node01", newHTTPClient(b))
			return func(ctx context.Context, id string) error {
				return c.Create(core.WithFence(ctx, token), core.GroupID(id), token)
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			create := bc.create(b, serve(b, h))
			b.SetParallelism(max(1, 48/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			cpu := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := create(b.Context(), "c"+strconv.FormatInt(next.Add(1), 10)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if cpu > 0 {
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
