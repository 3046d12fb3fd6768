package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// faultyServer serves node01 with faults f over a memory store, on clock,
// and returns the store, the node and the server. The node is closed when
// the test ends; handled receives a value each time a request's handler
// has returned, log included.
func faultyServer(t *testing.T, f faults.Faults, clock core.Clock, opts httpapi.ServerOptions) (*memory.Store, *faults.Node, string, <-chan struct{}) {
	t.Helper()
	store := memory.New()
	node := faults.New("node01", store, faults.Options{Faults: f, Seed: 3, Clock: clock})
	server := httpapi.NewServer([]core.Node{node}, opts)
	handled := make(chan struct{}, 100)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { handled <- struct{}{} }()
		server.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { node.Close() })
	return store, node, srv.URL, handled
}

// TestResetIsTCPReset checks that a reset fault resets the connection: the
// client reads no byte of an answer but an RST, and the store holds the
// record all the same.
func TestResetIsTCPReset(t *testing.T) {
	var log bytes.Buffer
	store, _, url, handled := faultyServer(t, faults.Faults{ResetRate: 1}, clock, httpapi.ServerOptions{AccessLog: slog.New(slog.NewTextHandler(&log, nil)), Clock: clock})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"groupId": "5"}`
	req := fmt.Sprintf("POST /v1/group HTTP/1.1\r\nHost: rops\r\nNode: node01\r\nTimestamp: 1.000001\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(conn)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the answer: %v, want %v", err, syscall.ECONNRESET)
	}
	if len(answer) != 0 {
		t.Fatalf("the client read %q before the reset, want nothing", answer)
	}
	rec, err := store.Get(t.Context(), "5")
	if got, want := rec, (core.Record{ID: "5", Token: "1.000001"}); err != nil || got != want {
		t.Fatalf("store.Get(5)=%+v, %v; want %+v: the request is applied before the reset", got, err, want)
	}
	<-handled
	if got, want := log.String(), `msg="POST /v1/group HTTP/1.1" remote=127.0.0.1 status=444 bytes=0 `; !strings.Contains(got, want) {
		t.Fatalf("access log %q, want it to show %s", got, want)
	}
}

// TestResetClient checks what the Client makes of a reset: an ambiguous
// error, for create, delete and get.
func TestResetClient(t *testing.T) {
	store, _, url, _ := faultyServer(t, faults.Faults{ResetRate: 1}, clock, httpapi.ServerOptions{})
	c, err := httpapi.NewClient(url, "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	check := func(call string, err error) {
		t.Helper()
		if !core.IsAmbiguous(err) {
			t.Fatalf("%s over a reset connection: err=%v, want an ambiguous error", call, err)
		}
	}
	check("Create", c.Create(t.Context(), "5", "1.000001"))
	if _, err := store.Get(t.Context(), "5"); err != nil {
		t.Fatalf("store.Get(5)=%v: the reset create was not applied", err)
	}
	_, err = c.Get(t.Context(), "5")
	check("Get", err)
	check("Delete", c.Delete(t.Context(), "5", "1.000001"))
	if _, err := store.Get(t.Context(), "5"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("store.Get(5)=%v, want ErrNotFound: the reset delete was not applied", err)
	}
}

// TestGatewayAnswer checks that a gateway fault answers as nginx in front
// of the node would: 502, 503 or 504 with its HTML page and none of a rops
// node's headers, having passed the request on half of the time.
func TestGatewayAnswer(t *testing.T) {
	store, _, url, _ := faultyServer(t, faults.Faults{GatewayRate: 1}, clock, httpapi.ServerOptions{})
	hc := newHTTPClient(t)
	statuses := map[int]int{}
	forwarded := 0
	const n = 60
	for i := range n {
		gid := fmt.Sprint(i)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/v1/group", strings.NewReader(`{"groupId": "`+gid+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Node", "node01")
		req.Header.Set("Timestamp", "1.000001")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		statuses[resp.StatusCode]++
		title := fmt.Sprintf("<title>%d %s</title>", resp.StatusCode, faults.GatewayText(resp.StatusCode))
		if !bytes.Contains(body, []byte(title)) || !bytes.Contains(body, []byte("<center>nginx</center>")) {
			t.Fatalf("POST %s: body %q, want nginx's page with %s", gid, body, title)
		}
		if got, want := resp.Header.Get("Content-Type"), "text/html"; got != want {
			t.Fatalf("POST %s: Content-Type %q, want %q", gid, got, want)
		}
		for k := range resp.Header {
			if !slices.Contains([]string{"Content-Type", "Content-Length", "Date"}, k) {
				t.Fatalf("POST %s: the proxy's answer has header %s: %q; a proxy's answer must not look like a rops node's", gid, k, resp.Header[k])
			}
		}
		if _, err := store.Get(t.Context(), core.GroupID(gid)); err == nil {
			forwarded++
		}
	}
	if len(statuses) != 3 || statuses[502] == 0 || statuses[503] == 0 || statuses[504] == 0 {
		t.Fatalf("statuses %v, want 502, 503 and 504", statuses)
	}
	if forwarded == 0 || forwarded == n {
		t.Fatalf("%d of %d requests were passed on, want some but not all", forwarded, n)
	}
}

// TestGatewayClient checks that the Client takes a proxy's answer, even a
// 503, for an ambiguous one: the proxy may have passed the request on.
func TestGatewayClient(t *testing.T) {
	_, _, url, _ := faultyServer(t, faults.Faults{GatewayRate: 1}, clock, httpapi.ServerOptions{})
	c, err := httpapi.NewClient(url, "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := range 30 {
		err := c.Create(t.Context(), core.GroupID(fmt.Sprint(i)), "1.000001")
		status, _ := httpapi.HTTPStatus(err)
		if status < 502 || status > 504 {
			t.Fatalf("Create(%d)=%v; want a 502, 503 or 504", i, err)
		}
		if !core.IsAmbiguous(err) || !core.IsRetryable(err) {
			t.Fatalf("Create(%d)=%v (code %s); want an ambiguous, retryable error", i, err, core.ErrorCode(err))
		}
		seen[status] = true
	}
	if !seen[503] {
		t.Fatal("no 503 among 30 gateway answers: the test does not show what it should")
	}
}

// gateClock is a clock whose sleeps wait until the test lets them end:
// each Sleep sends its duration on asked, then returns when release is
// closed or its context ends.
type gateClock struct {
	fixedClock
	asked   chan time.Duration
	release chan struct{}
}

func (c *gateClock) Sleep(ctx context.Context, d time.Duration) error {
	c.asked <- d
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestLateOverHTTP checks that a late request answers nothing until the
// client gives up, and is applied only after that, on the node's clock.
func TestLateOverHTTP(t *testing.T) {
	gate := &gateClock{fixedClock: clock, asked: make(chan time.Duration, 1), release: make(chan struct{})}
	store, node, url, handled := faultyServer(t, faults.Faults{LateRate: 1, LateDelay: faults.Duration(3 * time.Second)}, gate, httpapi.ServerOptions{})
	c, err := httpapi.NewClient(url, "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Create(ctx, "5", "1.000001") }()
	if got, want := <-gate.asked, 3*time.Second; got != want {
		t.Fatalf("the late apply waits %v on the node's clock, want %v", got, want)
	}
	select {
	case err := <-done:
		t.Fatalf("Create returned %v before the client gave up", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !core.IsAmbiguous(err) {
		t.Fatalf("Create=%v, want an ambiguous error for the client's end", err)
	}
	<-handled // the handler returned once the client went away
	if _, err := store.Get(t.Context(), "5"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("store.Get(5)=%v before the delay, want ErrNotFound", err)
	}
	close(gate.release)
	if err := node.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(t.Context(), "5"); err != nil {
		t.Fatalf("store.Get(5)=%v after the delay: the late create did not land", err)
	}
}

// TestLateOverHTTPFenced: a late request over HTTP carries its fence to
// the node's store when it lands, and is refused there if a later holder
// of the id has been since, as a request that really waited in a queue
// would be: the Client sends Rops-Fence, the Server puts it in the
// request's context, and the faulty node keeps it for the late apply.
func TestLateOverHTTPFenced(t *testing.T) {
	gate := &gateClock{fixedClock: clock, asked: make(chan time.Duration, 1), release: make(chan struct{})}
	store, node, url, handled := faultyServer(t, faults.Faults{LateRate: 1, LateDelay: faults.Duration(3 * time.Second)}, gate, httpapi.ServerOptions{})
	c, err := httpapi.NewClient(url, "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(core.WithFence(t.Context(), fence1))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Create(ctx, "5", "1700000001.000001") }()
	<-gate.asked
	cancel()
	if err := <-done; !core.IsAmbiguous(err) {
		t.Fatalf("Create=%v, want an ambiguous error for the client's end", err)
	}
	<-handled
	// The later holder reads the node under its own, greater fence.
	if _, err := store.Get(core.WithFence(t.Context(), fence2), "5"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("store.Get(5) under fence %s=%v, want ErrNotFound", fence2, err)
	}
	close(gate.release)
	if err := node.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rec, err := store.Get(t.Context(), "5"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("store.Get(5)=%v, %v after the delay, want ErrNotFound: the late create under fence %s landed after fence %s was seen", rec, err, fence1, fence2)
	}
}

// TestAdminNewFaults checks that PUT /admin/faults takes the new faults,
// and refuses what Faults.Validate refuses, saying why.
func TestAdminNewFaults(t *testing.T) {
	_, node, url, _ := faultyServer(t, faults.Faults{}, clock, httpapi.ServerOptions{Admin: true})
	put := func(body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, url+"/v1/admin/faults", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := newHTTPClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"node01": {"latency": "1000h"}}`, "latency is 1000h0m0s; give at most 1h0m0s"},
		{`{"node01": {"late_rate": 0.5}}`, "late_delay is 0s with late_rate 0.5"},
		{`{"node01": {"late_rate": 0.5, "late_delay": "11m"}}`, "a late write must land while the tombstone that fences it still lives"},
		{`{"node01": {"gateway_rate": 1.5}}`, "gateway_rate is 1.5; give a probability from 0 to 1"},
	} {
		status, body := put(tc.body)
		if status != http.StatusNotAcceptable || !strings.Contains(body, tc.want) {
			t.Fatalf("PUT %s: %d %s, want 406 saying %q", tc.body, status, body, tc.want)
		}
	}
	if got, want := node.Faults(), (faults.Faults{}); got != want {
		t.Fatalf("faults %v after refused PUTs, want %v", got, want)
	}
	status, body := put(`{"node01": {"late_rate": 0.2, "late_delay": "3s", "reset_rate": 0.1, "duplicate_rate": 0.3, "gateway_rate": 0.4}}`)
	if status != http.StatusOK {
		t.Fatalf("PUT: %d %s, want 200", status, body)
	}
	want := faults.Faults{LateRate: 0.2, LateDelay: faults.Duration(3 * time.Second), ResetRate: 0.1, DuplicateRate: 0.3, GatewayRate: 0.4}
	if got := node.Faults(); got != want {
		t.Fatalf("faults %v, want %v", got, want)
	}
	if !strings.Contains(body, `"late_rate":0.2,"late_delay":"3s","reset_rate":0.1,"duplicate_rate":0.3,"gateway_rate":0.4`) {
		t.Fatalf("PUT answered %s, want it to show the new faults", body)
	}
}
