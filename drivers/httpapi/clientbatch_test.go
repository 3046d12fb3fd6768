package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

// gateTransport passes requests on to base, except that it can hold the
// next one until released, and fail POST /batch requests.
type gateTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	hold chan struct{} // the next request waits for it to close, if not nil
	in   chan struct{} // closed when the held request arrived
	// failBatch, if not nil, fails every POST /batch; wrote says whether
	// the request's bytes left first.
	failBatch func() (wrote bool, err error)
}

// holdNext makes the next request wait until release, and returns a
// channel closed once it arrived.
func (g *gateTransport) holdNext() (arrived <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold, g.in = make(chan struct{}), make(chan struct{})
	hold := g.hold
	return g.in, func() { close(hold) }
}

func (g *gateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	hold, in := g.hold, g.in
	g.hold, g.in = nil, nil
	fail := g.failBatch
	g.mu.Unlock()
	if hold != nil {
		close(in)
		<-hold
	}
	if fail != nil && r.URL.Path == "/v1/batch" {
		wrote, err := fail()
		if wrote {
			httptrace.ContextClientTrace(r.Context()).WroteHeaders()
		}
		return nil, err
	}
	return g.base.RoundTrip(r)
}

// batchClient returns a Client of node at srv through a gateTransport, and
// has it learn the server's capabilities.
func batchClient(t *testing.T, srv http.Handler, node string, opts httpapi.ClientOptions) (*httpapi.Client, *gateTransport) {
	t.Helper()
	s := serve(t, srv)
	hc := newHTTPClient(t)
	g := &gateTransport{base: hc.Transport}
	opts.HTTP = &http.Client{Transport: g, CheckRedirect: hc.CheckRedirect}
	c, err := httpapi.NewClient(s.URL+"/v1", node, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c, g
}

// gather runs calls on c at once, while a create of id "blocker" holds the
// one batch in flight, so that they all wait for the next batch; once they
// do, it lets the blocker go and returns their errors. prepare, if not
// nil, runs while the calls wait.
func gather(t *testing.T, c *httpapi.Client, g *gateTransport, prepare func(), calls ...func() error) []error {
	t.Helper()
	arrived, release := g.holdNext()
	blocker := make(chan error, 1)
	go func() { blocker <- c.Create(t.Context(), "blocker", "1700000000.000001") }()
	<-arrived
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, f := range calls {
		wg.Go(func() { errs[i] = f() })
	}
	for httpapi.Pending(c) != len(calls) {
		runtime.Gosched()
	}
	if prepare != nil {
		prepare()
	}
	release()
	if err := <-blocker; err != nil {
		t.Fatalf("blocker: %v", err)
	}
	wg.Wait()
	return errs
}

// TestClientGathers: calls that come while a batch is in flight go
// together in the next one: 50 creates in one round trip.
func TestClientGathers(t *testing.T) {
	c, g := batchClient(t, httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{}), "node01", httpapi.ClientOptions{Batch: true})
	var calls []func() error
	for i := range 50 {
		calls = append(calls, func() error { return c.Create(t.Context(), core.GroupID(fmt.Sprint(i)), "1700000000.000001") })
	}
	for i, err := range gather(t, c, g, nil, calls...) {
		if err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	if n, err := c.Count(t.Context()); err != nil || n != 51 {
		t.Errorf("Count=%d (%v), want 51", n, err)
	}
	// Ping, the blocker, one batch, Count.
	if got, want := c.Stats(), (httpapi.ClientStats{Items: 51, RoundTrips: 4, Batches: 1}); got != want {
		t.Errorf("Stats()=%+v, want %+v", got, want)
	}
}

// TestClientBatchOutcomes: each call of one batch gets its own item's
// error, as its single request would: applied, fenced by a tombstone,
// stale under a lower fence, a remove of a newer record; and every call to
// a node that is down is unavailable.
func TestClientBatchOutcomes(t *testing.T) {
	ns := memoryNodes("node01", "node02")
	c, g := batchClient(t, httpapi.NewServer(ns, httpapi.ServerOptions{}), "node01", httpapi.ClientOptions{Batch: true})
	const tok, lo, hi = "1700000001.000001", "1700000001", "1700000003"
	ctx := t.Context()
	// A tombstone of "fenced", a fence above lo on "stale", a record "held" of tok.
	for _, err := range []error{
		c.Create(ctx, "fenced", tok), c.Delete(ctx, "fenced", tok),
		c.Create(core.WithFence(ctx, hi), "stale", tok),
		c.Create(ctx, "held", "1700000005"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var removed core.Token
	errs := gather(t, c, g, nil,
		func() error { return c.Create(ctx, "new", tok) },
		func() error { return c.Create(ctx, "fenced", tok) },
		func() error { return c.Delete(core.WithFence(ctx, lo), "stale", tok) },
		func() error {
			var err error
			removed, err = c.Remove(ctx, "held", "1700000004")
			return err
		},
	)
	for i, want := range []core.Code{"", core.EFenced, core.EStale, core.EExists} {
		if got := core.ErrorCode(errs[i]); got != want {
			t.Errorf("call %d: %v, want code %q", i, errs[i], want)
		}
	}
	if e, ok := errors.AsType[*core.Error](errs[2]); !ok || e.Fence != hi {
		t.Errorf("stale: %#v, want the node's fence %s", errs[2], hi)
	}
	if removed != "1700000005" {
		t.Errorf("remove: held %q, want 1700000005", removed)
	}
	if got := c.Stats().Batches; got != 1 {
		t.Errorf("%d batches, want 1", got)
	}

	down, g2 := batchClient(t, httpapi.NewServer(ns, httpapi.ServerOptions{}), "node02", httpapi.ClientOptions{Batch: true})
	if err := ns[1].(*faults.Node).SetFaults(faults.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	g2.base = &okBlocker{g2.base}
	errs = gather(t, down, g2, nil,
		func() error { return down.Create(ctx, "a", tok) },
		func() error { return down.Delete(ctx, "b", tok) },
	)
	for i, err := range errs {
		if got := core.ErrorCode(err); got != core.EUnavailable {
			t.Errorf("down, call %d: %v, want EUnavailable", i, err)
		}
	}
}

// okBlocker answers the create of "blocker" 201 itself, as a rops node
// that serves batches, for a node that is down, and passes every other
// request on.
type okBlocker struct{ base http.RoundTripper }

func (o *okBlocker) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/group" && r.Method == http.MethodPost {
		b, _ := r.GetBody()
		buf := make([]byte, 64)
		n, _ := b.Read(buf)
		if string(buf[:n]) == `{"groupId": "blocker"}` {
			w := &http.Response{StatusCode: 201, Header: http.Header{"Content-Type": {"text/plain"}, "Rops-Protocol": {"2"}, "Rops-Batch": {"256"}}, Body: io.NopCloser(strings.NewReader("CREATED\n")), Request: r}
			return w, nil
		}
	}
	return o.base.RoundTrip(r)
}

// TestClientBatchTransportFailure: a batch that got no answer makes every
// call ambiguous (ETransient) if any byte of it may have left, and
// certainly not applied (EUnavailable) if its connection was refused
// before any did, as transportError decides for a single request.
func TestClientBatchTransportFailure(t *testing.T) {
	for _, tc := range []struct {
		wrote bool
		err   error
		want  core.Code
	}{
		{true, errors.New("connection reset by peer"), core.ETransient},
		{true, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, core.ETransient},
		{false, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, core.EUnavailable},
	} {
		t.Run(fmt.Sprint("wrote=", tc.wrote, ",", tc.err), func(t *testing.T) {
			c, g := batchClient(t, httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{}), "node01", httpapi.ClientOptions{Batch: true})
			errs := gather(t, c, g, func() {
				g.mu.Lock()
				g.failBatch = func() (bool, error) { return tc.wrote, tc.err }
				g.mu.Unlock()
			},
				func() error { return c.Create(t.Context(), "1", "1700000000.000001") },
				func() error { return c.Delete(t.Context(), "2", "1700000000.000001") },
				func() error { _, err := c.Remove(t.Context(), "3", "1700000000.000001"); return err },
			)
			for i, err := range errs {
				if got := core.ErrorCode(err); got != tc.want {
					t.Errorf("call %d: %v, want %s", i, err, tc.want)
				}
			}
		})
	}
}

// TestClientBatchAbandoned: a caller whose context ends while its call
// waits for a batch returns EUnavailable, not sent; one whose call is on
// the way returns ETransient, as a single request with no answer.
func TestClientBatchAbandoned(t *testing.T) {
	c, g := batchClient(t, httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{}), "node01", httpapi.ClientOptions{Batch: true})
	waiting, cancelWaiting := context.WithCancel(t.Context())
	onWay, cancelOnWay := context.WithCancel(t.Context())
	var waitingErr error
	arrived, release := g.holdNext()
	blocker := make(chan error, 1)
	go func() { blocker <- c.Create(t.Context(), "blocker", "1700000000.000001") }()
	<-arrived
	done := make(chan error, 1)
	go func() { done <- c.Create(onWay, "1", "1700000000.000001") }()
	for httpapi.Pending(c) != 1 {
		runtime.Gosched()
	}
	go func() {
		waitingErr = c.Create(waiting, "2", "1700000000.000001")
		done <- waitingErr
	}()
	for httpapi.Pending(c) != 2 {
		runtime.Gosched()
	}
	cancelWaiting()
	if err := <-done; core.ErrorCode(err) != core.EUnavailable {
		t.Errorf("abandoned while waiting: %v, want EUnavailable", err)
	}
	// The call "1" goes alone: hold its request and abandon it.
	arrived, releaseOnWay := g.holdNext()
	release()
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	<-arrived
	cancelOnWay()
	if err := <-done; core.ErrorCode(err) != core.ETransient {
		t.Errorf("abandoned on the way: %v, want ETransient", err)
	}
	releaseOnWay()
}

// TestClientNoBatches: against the original's imitation, and without
// ClientOptions.Batch (the default), every call is a request of its own.
func TestClientNoBatches(t *testing.T) {
	for name, tc := range map[string]struct {
		srv  httpapi.ServerOptions
		opts httpapi.ClientOptions
	}{
		"original": {httpapi.ServerOptions{Original: true}, httpapi.ClientOptions{Batch: true}},
		"default":  {httpapi.ServerOptions{}, httpapi.ClientOptions{}},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := batchClient(t, httpapi.NewServer(memoryNodes("node01"), tc.srv), "node01", tc.opts)
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					if err := c.Create(t.Context(), core.GroupID(fmt.Sprint(i)), "1700000000.000001"); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got, want := c.Stats(), (httpapi.ClientStats{Items: 20, RoundTrips: 21}); got != want {
				t.Errorf("Stats()=%+v, want %+v", got, want)
			}
		})
	}
}

// TestClientBatchOneHangs: in a batch where one item hangs at the node,
// the others get their own answers before their deadline, because the
// client asks the server to wait for no item past most of it; only the
// hung call is ambiguous.
func TestClientBatchOneHangs(t *testing.T) {
	srv, store := hangServer(t, "hang")
	c, g := batchClient(t, srv, "node01", httpapi.ClientOptions{Batch: true})
	const tok = "1700000001.000001"
	call := func(id core.GroupID) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			return c.Create(ctx, id, tok)
		}
	}
	errs := gather(t, c, g, nil, call("a"), call("hang"), call("b"))
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("the calls beside the hung one: %v, %v; want both applied and answered", errs[0], errs[2])
	}
	if core.ErrorCode(errs[1]) != core.ETransient {
		t.Errorf("the hung call: %v, want ETransient (no answer: it may have been applied)", errs[1])
	}
	if got := listAll(t, store); len(got) != 3 {
		t.Errorf("the store holds %v, want blocker, a and b", got)
	}
}

// TestClientBatchSize: a Client says its writes travel in batches
// (core.Batcher) only once its node has said it serves them and batches
// are on: never against the original server or with batches off.
func TestClientBatchSize(t *testing.T) {
	for name, tc := range map[string]struct {
		srv  httpapi.ServerOptions
		opts httpapi.ClientOptions
		want int
	}{
		"batches":     {httpapi.ServerOptions{}, httpapi.ClientOptions{Batch: true}, httpapi.DefaultMaxBatch},
		"max batch 7": {httpapi.ServerOptions{}, httpapi.ClientOptions{Batch: true, MaxBatch: 7}, 7},
		"original":    {httpapi.ServerOptions{Original: true}, httpapi.ClientOptions{Batch: true}, 0},
		"off":         {httpapi.ServerOptions{}, httpapi.ClientOptions{}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			srv := serve(t, httpapi.NewServer(memoryNodes("node01"), tc.srv))
			tc.opts.HTTP = newHTTPClient(t)
			c, err := httpapi.NewClient(srv.URL+"/v1", "node01", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.BatchSize(); got != 0 {
				t.Errorf("BatchSize()=%d before any answer, want 0", got)
			}
			if err := c.Create(t.Context(), "1", "1700000000.000001"); err != nil {
				t.Fatal(err)
			}
			if got := c.BatchSize(); got != tc.want {
				t.Errorf("BatchSize()=%d after an answer, want %d", got, tc.want)
			}
		})
	}
}
