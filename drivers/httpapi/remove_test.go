package httpapi_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// methodCounter counts the requests a handler gets, by method.
type methodCounter struct {
	h  http.Handler
	mu sync.Mutex
	n  map[string]int
}

func (c *methodCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Method]++
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

func (c *methodCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}

// deleteOverHTTP creates n ids through a coordinator of Clients at a server
// over memory nodes, then deletes them, and returns the requests the
// deletes cost, as the server counted them by method and as the results
// counted them, and the Clients.
func deleteOverHTTP(t *testing.T, opts httpapi.ServerOptions, n int) (map[string]int, int, []core.Node) {
	t.Helper()
	cnt := &methodCounter{h: httpapi.NewServer(memoryNodes(names...), opts)}
	srv := serve(t, cnt)
	cs := clients(t, srv, newHTTPClient(t), memoryNodes(names...))
	c, err := core.New(core.Config{Nodes: cs})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if res, err := c.Create(t.Context(), core.GroupID(fmt.Sprint(i))); res.Outcome != core.Done {
			t.Fatalf("create %d: %v (%v)", i, res.Outcome, err)
		}
	}
	cnt.take()
	requests := 0
	for i := range n {
		res, err := c.Delete(t.Context(), core.GroupID(fmt.Sprint(i)))
		if res.Outcome != core.Done {
			t.Fatalf("delete %d: %v (%v)", i, res.Outcome, err)
		}
		requests += res.Requests
	}
	seen := cnt.take()
	for _, cl := range cs {
		if count, err := cl.Count(t.Context()); err != nil || count != 0 {
			t.Fatalf("%s holds %d records (%v) after the deletes, want none", cl.Name(), count, err)
		}
	}
	return seen, requests, cs
}

// TestDeleteOverHTTPSendsNoRead: against a rops server a delete of a
// present id sends one DELETE per node and no GET; the Clients learn from
// the answers that the nodes serve it.
func TestDeleteOverHTTPSendsNoRead(t *testing.T) {
	const n = 20
	seen, requests, cs := deleteOverHTTP(t, httpapi.ServerOptions{}, n)
	if got, want := seen, map[string]int{"DELETE": 3 * n}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the server saw %v for %d deletes, want %v", got, n, want)
	}
	if got, want := requests, 3*n; got != want {
		t.Errorf("the results count %d requests, want %d", got, want)
	}
	for _, cl := range cs {
		if !cl.(*httpapi.Client).Removes() {
			t.Errorf("%s: Removes()=false against a rops server", cl.Name())
		}
	}
}

// TestDeleteOverHTTPOriginalReadsFirst: against the original's protocol
// (serve --original), which announces nothing, a delete still reads every
// node first, then deletes conditionally on what it read, and works.
func TestDeleteOverHTTPOriginalReadsFirst(t *testing.T) {
	const n = 20
	seen, requests, cs := deleteOverHTTP(t, httpapi.ServerOptions{Original: true}, n)
	if got, want := seen, map[string]int{"GET": 3 * n, "DELETE": 3 * n}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the server saw %v for %d deletes, want %v", got, n, want)
	}
	if got, want := requests, 6*n; got != want {
		t.Errorf("the results count %d requests, want %d", got, want)
	}
	for _, cl := range cs {
		if cl.(*httpapi.Client).Removes() {
			t.Errorf("%s: Removes()=true against the original's protocol", cl.Name())
		}
	}
}

// TestRemoveAnnounced: a rops node that keeps tombstones says on every
// answer that it serves older_than deletes; one that keeps none, and the
// original's imitation, do not, and refuse one with 501 or ignore it.
func TestRemoveAnnounced(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     httpapi.ServerOptions
		nodes    []core.Node
		announce bool
		status   int // of DELETE /v1/group?older_than= of a held id
	}{
		{"rops", httpapi.ServerOptions{}, memoryNodes(names...), true, http.StatusOK},
		{"no tombstones", httpapi.ServerOptions{}, noTombstoneNodes(names...), false, http.StatusNotImplemented},
		{"original", httpapi.ServerOptions{Original: true}, memoryNodes(names...), false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, httpapi.NewServer(tc.nodes, tc.opts))
			cl := mustClient(t, srv, "node01", newHTTPClient(t))
			if err := cl.Create(t.Context(), "5", "1700000000.000001"); err != nil {
				t.Fatal(err)
			}
			if got := cl.Removes(); got != tc.announce {
				t.Errorf("Removes()=%v, want %v", got, tc.announce)
			}
			_, err := cl.Remove(t.Context(), "5", "1700000000.000002")
			status := http.StatusOK
			if s, ok := httpapi.HTTPStatus(err); ok {
				status = s
			}
			if status != tc.status {
				t.Errorf("Remove: %v (status %d), want status %d", err, status, tc.status)
			}
		})
	}
}

// noTombstoneNodes returns a node without faults over a memory store that
// keeps no tombstones per name.
func noTombstoneNodes(names ...string) []core.Node {
	ns := make([]core.Node, len(names))
	for i, name := range names {
		ns[i] = faults.New(name, memory.NewWithOptions(memory.Options{MaxTombstones: -1}), faults.Options{})
	}
	return ns
}

// TestDeleteOverHTTPWithFaults runs creates and deletes without a read
// through a rops server whose nodes fail at random (500 and 408 before or
// after the write, resets, a proxy's answers), and checks the nodes against
// the outcomes with core.Checker: a lost answer to a Remove is learned
// again from the node's record of it.
func TestDeleteOverHTTPWithFaults(t *testing.T) {
	const seed, n = 7, 40
	f := faults.Faults{ErrorRate: 0.2, AmbiguousRate: 0.1, ResetRate: 0.05, GatewayRate: 0.05}
	ns := make([]core.Node, len(names))
	for i, name := range names {
		ns[i] = faults.New(name, memory.New(), faults.Options{Faults: f, Seed: seed + uint64(i)})
	}
	srv := serve(t, httpapi.NewServer(ns, httpapi.ServerOptions{}))
	cs := clients(t, srv, newHTTPClient(t), ns)
	c, err := core.New(core.Config{Nodes: cs, Journal: memory.NewJournal(),
		NewBackoff: func() core.Backoff { return core.Exponential(0, 0, 20, nil) }})
	if err != nil {
		t.Fatal(err)
	}
	chk := core.NewChecker()
	removed := 0
	for _, op := range []core.Op{core.OpCreate, core.OpDelete} {
		for i := range n {
			id := core.GroupID(fmt.Sprint(i))
			var res core.Result
			if op == core.OpCreate {
				res, _ = c.Create(t.Context(), id)
			} else {
				res, _ = c.Delete(t.Context(), id)
				removed += res.Requests
			}
			chk.Record(res)
		}
	}
	results, err := c.Recover(t.Context(), 0)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	var still []core.GroupID
	for _, res := range results {
		if res.Outcome == core.Pending {
			still = append(still, res.ID)
		}
	}
	chk.Resolve(still)
	v := chk.Verify(len(cs), func(id core.GroupID) int {
		h, err := c.Holders(t.Context(), id)
		if err != nil {
			t.Fatalf("Holders(%s): %v", id, err)
		}
		return h
	}, nil)
	if !v.OK() {
		t.Fatalf("seed %d: lost %v, unexpected %v, divergent %v", seed, v.Lost, v.Unexpected, v.Divergent)
	}
	t.Logf("%d deletes cost %d requests", n, removed)
}
