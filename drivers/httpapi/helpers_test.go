package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// names are the default cluster's node names.
var names = []string{"node01", "node02", "node03"}

// fixedClock stands still at a fixed time and sleeps no time.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func (fixedClock) Sleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

// clock is the tests' fixed time: tokens it makes start at 1700000000.000000.
var clock = fixedClock{time.Unix(1700000000, 0).UTC()}

// memoryNodes returns a faulty node over a new memory store per name, with
// no faults.
func memoryNodes(names ...string) []core.Node {
	ns := make([]core.Node, len(names))
	for i, name := range names {
		ns[i] = faults.New(name, memory.New(), faults.Options{})
	}
	return ns
}

// serve serves h on 127.0.0.1 until the test ends.
func serve(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}

// newHTTPClient returns a pool for one test, whose idle connections close
// when the test ends.
func newHTTPClient(tb testing.TB) *http.Client {
	tb.Helper()
	hc := httpapi.NewHTTPClient(16)
	tb.Cleanup(hc.CloseIdleConnections)
	return hc
}

// mustClient returns a Client of node at srv's /v1.
func mustClient(tb testing.TB, srv *httptest.Server, node string, hc *http.Client) *httpapi.Client {
	tb.Helper()
	c, err := httpapi.NewClient(srv.URL+"/v1", node, httpapi.ClientOptions{HTTP: hc})
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	return c
}

// clients returns a Client for each of ns, all at srv and sharing hc.
func clients(tb testing.TB, srv *httptest.Server, hc *http.Client, ns []core.Node) []core.Node {
	tb.Helper()
	cs := make([]core.Node, len(ns))
	for i, n := range ns {
		cs[i] = mustClient(tb, srv, n.Name(), hc)
	}
	return cs
}
