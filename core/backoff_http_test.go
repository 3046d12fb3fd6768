package core_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/storetest"
)

// loadedServer wraps a handler in one whose latency grows with the
// requests in flight (perRequest each, at most maxLatency), as an
// overloaded server's does, and records when each request arrived and how
// long it was handled.
type loadedServer struct {
	next                   http.Handler
	perRequest, maxLatency time.Duration

	mu       sync.Mutex
	inflight int
	seen     map[string][]handled // by node, method, URL and body
}

type handled struct {
	at   time.Time // when the handler was entered (monotonic)
	took time.Duration
}

func (s *loadedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(r.Body) // a create names its id in the body
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.inflight++
	delay := min(time.Duration(s.inflight)*s.perRequest, s.maxLatency)
	s.mu.Unlock()
	time.Sleep(delay) // the server's own latency, not synchronisation
	s.next.ServeHTTP(w, r)
	end := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	key := r.Header.Get("Node") + " " + r.Method + " " + r.URL.String() + " " + string(body)
	s.seen[key] = append(s.seen[key], handled{at: start, took: end.Sub(start)})
}

// TestRetryPacedBySlowServer runs creates against a real HTTP server on
// loopback whose latency grows with load and half of whose answers are
// injected 500s (seeded). The first retry may come at once after a fast
// failure, but never sooner than the failed request took: between two
// attempts of the same request there is the first one's time at the
// server, its answer, and at least as long again.
func TestRetryPacedBySlowServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ~1 s of requests against a slow server")
	}
	const seed = 7
	names := []string{"node01", "node02", "node03"}
	ns := make([]core.Node, len(names))
	for i, name := range names {
		ns[i] = faults.New(name, memory.New(), faults.Options{Seed: seed + uint64(i), Faults: faults.Faults{ErrorRate: 0.5}})
	}
	ls := &loadedServer{
		next:       httpapi.NewServer(ns, httpapi.ServerOptions{}),
		perRequest: 200 * time.Microsecond,
		maxLatency: 20 * time.Millisecond,
		seen:       map[string][]handled{},
	}
	srv := httptest.NewServer(ls)
	t.Cleanup(srv.Close)
	hc := httpapi.NewHTTPClient(64 * len(names))
	t.Cleanup(hc.CloseIdleConnections)
	cs := make([]core.Node, len(names))
	for i, name := range names {
		c, err := httpapi.NewClient(srv.URL+"/v1", name, httpapi.ClientOptions{HTTP: hc})
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	coord, err := core.New(core.Config{Nodes: cs, Rand: rand.New(core.NewLockedSource(seed))})
	if err != nil {
		t.Fatal(err)
	}
	rep := coord.Bulk(t.Context(), core.OpCreate, storetest.IDs(300), 64, nil)
	if rep.Retries == 0 {
		t.Fatalf("seed %d: no retries: %+v", seed, rep)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	checked := 0
	for key, hs := range ls.seen {
		for i := 1; i < len(hs); i++ {
			prev, gap := hs[i-1], hs[i].at.Sub(hs[i-1].at)
			if want := 2 * prev.took; gap < want {
				t.Errorf("seed %d: %s: attempt %d came %v after the one before, which the server took %v over: want at least %v",
					seed, key, i+1, gap, prev.took, want)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatalf("seed %d: no request was repeated", seed)
	}
	t.Logf("%d retries checked, %+v", checked, rep)
}
