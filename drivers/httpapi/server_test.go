package httpapi_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

// TestRawPaths sends request lines as they are, over a real connection:
// net/http's server must pass dot segments and escapes to the handler
// untouched, as no ServeMux cleans them.
func TestRawPaths(t *testing.T) {
	ns := memoryNodes("node01")
	for _, id := range []string{".", "..", "%", "?"} {
		if err := ns[0].Create(t.Context(), core.GroupID(id), "1.000001"); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve(t, httpapi.NewServer(ns, httpapi.ServerOptions{}))
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, tc := range []struct {
		target string
		want   int
		body   string
	}{
		{"/v1/group/.", 200, `"groupId": "."`},
		{"/v1/group/..", 200, `"groupId": ".."`},
		{"/v1/group/%2e%2E", 200, `"groupId": ".."`},
		{"/v1/group/%25", 200, `"groupId": "%"`},
		{"/v1/group/%3F", 200, `"groupId": "?"`},
		{"/v1/group/x/../x", 406, `'/' at byte 1`},
		{"/v1//ping", 404, "no route /v1//ping"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			if _, err := io.WriteString(conn, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := resp.StatusCode, tc.want; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Fatalf("body=%q, want it to contain %q", body, tc.body)
			}
		})
	}
}

// TestSlowBodyTimesOut sends the headers of a POST announcing a body of
// 1000 bytes, then 10 of them: the server answers 408 with a JSON error and
// closes the connection once ServerOptions.BodyTimeout has passed, rather
// than hold it for as long as the client likes.
func TestSlowBodyTimesOut(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv := serve(t, httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{BodyTimeout: timeout}))
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /v1/group HTTP/1.1\r\nHost: x\r\nNode: node01\r\nContent-Length: 1000\r\n\r\n{\"groupId\""); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's own bound
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer after %v: %v", time.Since(start), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusRequestTimeout; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	if !strings.Contains(string(body), `"message": "the body did not arrive in time: 10 of 1000 bytes came`) {
		t.Fatalf("body=%q, want a JSON error saying the body was late", body)
	}
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes more, want the connection closed", n)
	}
	if elapsed := time.Since(start); elapsed < timeout || elapsed > timeout+2*time.Second {
		t.Fatalf("answered after %v, want just after %v", elapsed, timeout)
	}
}

// TestSlowBodyOfAnyRoute: a route that does not read the body still does
// not wait for it for good (net/http drains it after the answer).
func TestSlowBodyOfAnyRoute(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv := serve(t, httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{BodyTimeout: timeout}))
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the connection is still open after %v: %v", time.Since(start), err)
	}
}

// blockingNode is a node whose List waits until release is closed, telling
// entered each time one starts.
type blockingNode struct {
	core.Node
	entered chan struct{}
	release chan struct{}
}

func (n blockingNode) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	n.entered <- struct{}{}
	<-n.release
	return n.Node.List(ctx, after, limit)
}

// TestStatsAtOnceAreBounded: beyond ServerOptions.MaxStats GET /stats
// running at once, and MaxLists GET /groups, a request answers 503 with
// Retry-After at once instead of holding memory for the pages it would
// read; once the others end, it is served again.
func TestStatsAtOnceAreBounded(t *testing.T) {
	for _, path := range []string{"/v1/stats", "/v1/groups"} {
		t.Run(path, func(t *testing.T) {
			n := blockingNode{Node: memoryNodes("node01")[0], entered: make(chan struct{}, 10), release: make(chan struct{})}
			srv := serve(t, httpapi.NewServer([]core.Node{n}, httpapi.ServerOptions{MaxStats: 2, MaxLists: 2}))
			hc := newHTTPClient(t)
			get := func() (*http.Response, string) {
				resp, err := hc.Get(srv.URL + path)
				if err != nil {
					t.Error(err)
					return nil, ""
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, string(b)
			}
			done := make(chan int, 2)
			for range 2 {
				go func() {
					if resp, _ := get(); resp != nil {
						done <- resp.StatusCode
					}
				}()
				<-n.entered
			}
			resp, body := get()
			if resp == nil {
				return
			}
			if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if got, want := resp.Header.Get("Retry-After"), "1"; got != want {
				t.Fatalf("Retry-After=%q, want %q", got, want)
			}
			if !strings.Contains(body, "busy: 2 GET "+strings.TrimPrefix(path, "/v1")+" requests are running") {
				t.Fatalf("body=%q, want it to say the server is busy", body)
			}
			close(n.release)
			for range 2 {
				if got, want := <-done, http.StatusOK; got != want {
					t.Fatalf("a request in flight answered %d, want %d", got, want)
				}
			}
			if resp, body := get(); resp == nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("after the others: %v %s, want 200", resp, body)
			}
		})
	}
}

// TestMalformedRequestsGetJSON sends requests that are malformed in ways
// net/http passes on to the handler: each gets a JSON error. (What net/http
// refuses itself, such as a request without Host, a bad escape in the path
// or two Content-Lengths, it answers with its own text "400 Bad Request"
// before any handler runs.)
func TestMalformedRequestsGetJSON(t *testing.T) {
	srv := serve(t, httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{}))
	for _, tc := range []struct {
		name, req string
		want      int
		message   string
	}{
		{"bad chunk", "POST /v1/group HTTP/1.1\r\nHost: x\r\nNode: node01\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
			400, "cannot read the body: invalid byte in chunk length"},
		{"unknown method", "FOO /v1/group HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method FOO is not allowed"},
		{"two timestamps", "POST /v1/group HTTP/1.1\r\nHost: x\r\nNode: node01\r\nTimestamp: 1\r\nTimestamp: 2\r\nContent-Length: 16\r\n\r\n{\"groupId\": \"5\"}",
			406, "the timestamp header is given 2 times"},
		{"two nodes", "DELETE /v1/group HTTP/1.1\r\nHost: x\r\nNode: node01\r\nNode: node02\r\nContent-Length: 16\r\n\r\n{\"groupId\": \"5\"}",
			406, "the 'node' header is given 2 times"},
		{"huge body announced", "POST /v1/group HTTP/1.1\r\nHost: x\r\nNode: node01\r\nExpect: 100-continue\r\nContent-Length: 100000000\r\n\r\n",
			413, "the body is over the limit of 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got, want := resp.StatusCode, tc.want; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if !strings.Contains(string(body), tc.message) {
				t.Fatalf("body=%q, want it to say %q", body, tc.message)
			}
			checkAnswer(t, resp.StatusCode, resp.Header, body)
		})
	}
}
