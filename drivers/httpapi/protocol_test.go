package httpapi_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// nginxPage is the body of a proxy's answer of status, as nginx writes it.
func nginxPage(status int) string {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	return "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

// TestClientCapabilitiesPinned: what a node said it can do holds until the
// node itself says otherwise. A rops answer (Rops-Protocol, or a protocol-1
// server's Rops-Tombstones) says all, less as well as more; a success
// without any rops header is the answer of a server that announces nothing
// (the original behind the URL) and says "nothing"; any other answer
// without them (a proxy's 502, 503 or 504 page, a rate limiter's 429, an
// error, a redirect) may not be the node's and changes nothing. The Client
// used to take every answer for the node's word, so one proxy page turned
// fencing and deletes without a read off.
func TestClientCapabilitiesPinned(t *testing.T) {
	const full = "Rops-Protocol: 2\nRops-Tombstones: 10m0s\nRops-Removes: older_than"
	var (
		mu  sync.Mutex
		now http.HandlerFunc
	)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := now
		mu.Unlock()
		h(w, r)
	}))
	c := mustClient(t, srv, "node01", newHTTPClient(t))
	hdr := func(lines string) []string {
		if lines == "" {
			return nil
		}
		return strings.Split(lines, "\n")
	}
	for i, step := range []struct {
		what            string
		handler         http.HandlerFunc
		fences, removes bool
		protocol        int
	}{
		{"a proxy's 502 before any answer", answerWith(502, "", nginxPage(502)), false, false, 0},
		{"a rops node's 201", answerWith(201, "", "CREATED\n", hdr(full)...), true, true, 2},
		{"a proxy's 502", answerWith(502, "", nginxPage(502)), true, true, 2},
		{"a proxy's 503", answerWith(503, "", nginxPage(503)), true, true, 2},
		{"a proxy's 504", answerWith(504, "", nginxPage(504)), true, true, 2},
		{"a rate limiter's 429", answerWith(429, "", "Too Many Requests", "Retry-After: 1"), true, true, 2},
		{"a 500 of the original's words", answerWith(500, "InternalServerError due to Random Behavior", ""), true, true, 2},
		{"a redirect", answerWith(302, "", "", "Location: https://elsewhere/v1/group"), true, true, 2},
		{"a garbled version on a 502", answerWith(502, "", nginxPage(502), "Rops-Protocol: two"), true, true, 2},
		{"a rops node's 500", answerWith(500, "InternalServerError due to Random Behavior", "", hdr(full)...), true, true, 2},
		// The node says less: it is believed.
		{"a rops node's 201 without older_than", answerWith(201, "", "CREATED\n", "Rops-Protocol: 2", "Rops-Tombstones: 10m0s"), true, false, 2},
		{"a rops node's 201 again", answerWith(201, "", "CREATED\n", hdr(full)...), true, true, 2},
		{"a later protocol's 201", answerWith(201, "", "CREATED\n", hdr(strings.Replace(full, "2", "3", 1))...), true, true, 3},
		// The original put behind the URL: its success is its own word.
		{"a 201 with no rops header", answerWith(201, "", "CREATED\n"), false, false, 0},
		{"a protocol-1 node's 500", answerWith(500, "InternalServerError due to Random Behavior", "", "Rops-Tombstones: 10m0s", "Rops-Removes: older_than"), true, true, 1},
		{"a proxy's 502 after protocol 1", answerWith(502, "", nginxPage(502)), true, true, 1},
		{"a rops node's 201 over a store without tombstones", answerWith(201, "", "CREATED\n", "Rops-Protocol: 2"), false, false, 2},
		{"a proxy's 502 after that", answerWith(502, "", nginxPage(502)), false, false, 2},
	} {
		mu.Lock()
		now = step.handler
		mu.Unlock()
		_ = c.Create(t.Context(), "5", "1.000001")
		if got, want := c.Fences(), step.fences; got != want {
			t.Errorf("step %d, after %s: Fences()=%v, want %v", i, step.what, got, want)
		}
		if got, want := c.Removes(), step.removes; got != want {
			t.Errorf("step %d, after %s: Removes()=%v, want %v", i, step.what, got, want)
		}
		if got, want := c.Protocol(), step.protocol; got != want {
			t.Errorf("step %d, after %s: Protocol()=%d, want %d", i, step.what, got, want)
		}
	}
}

// TestClientCapabilitiesSurviveGateway is issue 17's case through a real
// Server: a node announces tombstones and deletes without a read, then
// every answer for a while is a proxy's 502, 503 or 504 page (a gateway
// fault). The Client still fences and removes, so the next operation's
// undo trusts the tombstones instead of waiting out the request lifetime.
func TestClientCapabilitiesSurviveGateway(t *testing.T) {
	_, node, url, _ := faultyServer(t, faults.Faults{}, clock, httpapi.ServerOptions{})
	c, err := httpapi.NewClient(url, "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), "5", "1.000001"); err != nil {
		t.Fatal(err)
	}
	if !c.Fences() || !c.Removes() {
		t.Fatalf("Fences()=%v, Removes()=%v after a rops node's answer, want both true", c.Fences(), c.Removes())
	}
	if got, want := c.Protocol(), 2; got != want {
		t.Errorf("Protocol()=%d after a rops node's answer, want %d", got, want)
	}
	if err := node.SetFaults(faults.Faults{GatewayRate: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		err := c.Create(t.Context(), core.GroupID(fmt.Sprint(i+6)), "1.000001")
		if status, _ := httpapi.HTTPStatus(err); status < 502 || status > 504 {
			t.Fatalf("Create=%v, want a proxy's 502, 503 or 504", err)
		}
		if !c.Fences() || !c.Removes() {
			t.Fatalf("after a proxy's %v: Fences()=%v, Removes()=%v, want both still true", err, c.Fences(), c.Removes())
		}
	}
}

// TestServerProtocolHeader: every answer of a rops Server carries
// Rops-Protocol: 2, whatever the route, method, node and status (errors,
// unknown routes, probes, the admin's and the metrics' routes included);
// the original's imitation sends none (TestOriginalGolden checks every
// Rops- header), and nor does a proxy's page (TestGatewayAnswer).
func TestServerProtocolHeader(t *testing.T) {
	fencing := faults.New("node01", memory.New(), faults.Options{})
	plain := faults.New("node02", memory.NewWithOptions(memory.Options{MaxTombstones: -1}), faults.Options{})
	down := faults.New("node03", memory.New(), faults.Options{Faults: faults.Faults{Down: true}})
	srv := serve(t, httpapi.NewServer([]core.Node{fencing, plain, down}, httpapi.ServerOptions{Admin: true, Metrics: true, MaxBody: 64}))
	off := serve(t, httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{}))
	hc := newHTTPClient(t)
	for _, tc := range []struct {
		url                string
		method, path, node string
		fence, body        string
		status             int
	}{
		{srv.URL, "GET", "/ping", "", "", "", 200},
		{srv.URL, "HEAD", "/v1/ping", "", "", "", 200},
		{srv.URL, "POST", "/v1/ping", "", "", "", 405},
		{srv.URL, "GET", "/v1/stats", "", "", "", 503},
		{srv.URL, "GET", "/healthz", "", "", "", 200},
		{srv.URL, "GET", "/readyz", "", "", "", 503},
		{srv.URL, "GET", "/metrics", "", "", "", 200},
		{srv.URL, "GET", "/v1/admin/faults", "", "", "", 200},
		{srv.URL, "PUT", "/v1/admin/faults", "", "", `[]`, 400},
		{off.URL, "GET", "/v1/admin/faults", "", "", "", 404},
		{off.URL, "GET", "/metrics", "", "", "", 404},
		{srv.URL, "GET", "/v1/nope", "node01", "", "", 404},
		{srv.URL, "GET", "/v1/group/5", "node01", "", "", 404},
		{srv.URL, "GET", "/v1/group/5", "node02", "", "", 404},
		{srv.URL, "GET", "/v1/group/5", "node03", "", "", 503},
		{srv.URL, "GET", "/v1/group/5", "node09", "", "", 406},
		{srv.URL, "GET", "/v1/group/5", "", "", "", 406},
		{srv.URL, "POST", "/v1/group", "node01", "", `{"groupId": "5"}`, 201},
		{srv.URL, "POST", "/v1/group", "node01", "", `{"groupId": "5"}`, 400},
		{srv.URL, "POST", "/v1/group", "node01", "", `{"groupId": `, 400},
		{srv.URL, "POST", "/v1/group", "node01", "", `{"groupId": "` + strings.Repeat("x", 100) + `"}`, 413},
		{srv.URL, "POST", "/v1/group", "node01", "soon", `{"groupId": "6"}`, 400},
		{srv.URL, "GET", "/v1/group/5", "node01", "1700000002.000002", "", 200},
		{srv.URL, "DELETE", "/v1/group", "node01", "1700000002.000001", `{"groupId": "5"}`, 409},
		{srv.URL, "DELETE", "/v1/group?older_than=9999999999", "node01", "", `{"groupId": "5"}`, 200},
		{srv.URL, "DELETE", "/v1/group?older_than=9999999999", "node02", "", `{"groupId": "5"}`, 501},
		{srv.URL, "PUT", "/v1/group", "node01", "", "", 405},
		{srv.URL, "GET", "/v1/groups", "node01", "", "", 200},
		{srv.URL, "GET", "/v1/groups?limit=x", "node01", "", "", 406},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, tc.url+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.node != "" {
			req.Header.Set("Node", tc.node)
		}
		if tc.fence != "" {
			req.Header.Set("Rops-Fence", tc.fence)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s for %q: %d, want %d (the case does not test what it says)", tc.method, tc.path, tc.node, resp.StatusCode, tc.status)
		}
		if got, want := resp.Header.Values("Rops-Protocol"), []string{"2"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s %s for %q: %d with Rops-Protocol %q, want %q", tc.method, tc.path, tc.node, resp.StatusCode, got, want)
		}
	}
}

// TestTombstonesFullOverHTTP: a store whose tombstones are full refuses a
// delete that would leave one more with EUnavailable and the wait until
// one expires. Over HTTP that is a 503 marked not applied, with the
// store's words and Retry-After, so the Client's error asks for the wait
// too (a breaker does not take the node for down, core/breaker), instead of
// the "node01 is down" of a node that is.
func TestTombstonesFullOverHTTP(t *testing.T) {
	n := faults.New("node01", memory.NewWithOptions(memory.Options{MaxTombstones: 1}), faults.Options{})
	srv := serve(t, httpapi.NewServer([]core.Node{n}, httpapi.ServerOptions{}))
	c := mustClient(t, srv, "node01", newHTTPClient(t))
	if err := c.Delete(t.Context(), "5", "1700000001.000001"); core.ErrorCode(err) != core.ENotFound {
		t.Fatalf("Delete(5)=%v, want ErrNotFound, leaving the one tombstone there is room for", err)
	}
	err := c.Delete(t.Context(), "6", "1700000001.000001")
	e, ok := errors.AsType[*core.Error](err)
	if !ok || e.Code != core.EUnavailable || e.RetryAfter < time.Second || !strings.Contains(e.Message, "tombstones full") {
		t.Fatalf("Delete(6)=%#v, want EUnavailable with the store's message and a RetryAfter of a second or more", err)
	}
	if status, _ := httpapi.HTTPStatus(err); status != http.StatusServiceUnavailable {
		t.Fatalf("Delete(6): status %d, want 503", status)
	}
}
