package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

const (
	adminToken = "s3cret-admin-Token_1"
	writeToken = "s3cret-write-Token_2"
)

// guarded serves ns on 127.0.0.1 with every check of serve on: the admin API with
// adminToken, writes with writeToken if write, the Host check, and an
// access log into log.
func guarded(t *testing.T, ns []core.Node, write bool, log io.Writer) string {
	t.Helper()
	opts := httpapi.ServerOptions{Admin: true, AdminToken: adminToken, HostCheck: &httpapi.HostCheck{Listen: "127.0.0.1:0"}}
	if write {
		opts.WriteToken = writeToken
	}
	if log != nil {
		opts.AccessLog = slog.New(slog.NewTextHandler(log, nil))
	}
	h := httpapi.NewServer(ns, opts)
	srv := serve(t, h)
	return srv.URL
}

// send sends method url with body and headers (name, value pairs; "Host"
// sets the Host) and returns the status, the answer's WWW-Authenticate
// and its body.
func send(t *testing.T, method, url, body string, headers ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
		} else {
			req.Header.Add(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// faultsOf returns node's faults as the node holds them.
func faultsOf(t *testing.T, n core.Node) faults.Faults {
	t.Helper()
	f, ok := faults.Faulty(n)
	if !ok {
		t.Fatalf("%s is not faulty", n.Name())
	}
	return f.Faults()
}

// holds reports whether n holds id.
func holdsID(t *testing.T, n core.Node, id core.GroupID) bool {
	t.Helper()
	_, err := n.Get(context.Background(), id)
	switch core.ErrorCode(err) {
	case "":
		return true
	case core.ENotFound:
		return false
	}
	t.Fatalf("Get %s: %v", id, err)
	return false
}

const putDown = `{"node01": {"down": true}}`

// TestAdminTokenRefusals: the admin API refuses a request without the
// token, with a wrong one or with one in the query, and changes nothing;
// with the token it works.
func TestAdminTokenRefusals(t *testing.T) {
	ns := memoryNodes(names...)
	var log bytes.Buffer
	url := guarded(t, ns, false, &log)
	for _, tc := range []struct {
		name, path string
		headers    []string
		status     int
		auth       string
		msg        string
	}{
		{"none", "/admin/faults", nil, 401, `Bearer realm="rops"`, "the admin API wants a token: send Authorization: Bearer <token>"},
		{"wrong", "/admin/faults", []string{"Authorization", "Bearer " + adminToken + "x"}, 401, `Bearer realm="rops", error="invalid_token"`, "wrong token for the admin API"},
		{"prefix", "/admin/faults", []string{"Authorization", "Bearer " + adminToken[:5]}, 401, `Bearer realm="rops", error="invalid_token"`, "wrong token"},
		{"basic", "/admin/faults", []string{"Authorization", "Basic " + adminToken}, 401, `Bearer realm="rops"`, "wants a token"},
		{"twice", "/admin/faults", []string{"Authorization", "Bearer " + adminToken, "Authorization", "Bearer " + adminToken}, 401, `Bearer realm="rops"`, "wants a token"},
		{"query", "/admin/faults?token=" + adminToken, nil, 400, "", "a token in the URL is refused"},
		{"query-access", "/v1/admin/faults?access_token=" + adminToken, nil, 400, "", "send it in the Authorization header"},
		{"query-and-header", "/admin/faults?token=" + adminToken, []string{"Authorization", "Bearer " + adminToken}, 400, "", "a token in the URL is refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"GET", "PUT"} {
				status, auth, body := send(t, method, url+tc.path, putDown, tc.headers...)
				if status != tc.status || auth != tc.auth || !strings.Contains(body, tc.msg) {
					t.Errorf("%s: %d %q %s, want %d %q and %q", method, status, auth, body, tc.status, tc.auth, tc.msg)
				}
				if strings.Contains(body, `"node01"`) {
					t.Errorf("%s: the refusal shows the faults: %s", method, body)
				}
			}
			if f := faultsOf(t, ns[0]); f.Down {
				t.Fatal("a refused PUT set node01 down")
			}
		})
	}
	status, _, body := send(t, "PUT", url+"/v1/admin/faults", putDown, "Authorization", "bearer  "+adminToken)
	if status != 200 || !faultsOf(t, ns[0]).Down {
		t.Fatalf("PUT with the token: %d %s, down %v", status, body, faultsOf(t, ns[0]).Down)
	}
	if strings.Contains(log.String(), adminToken[:12]) {
		t.Errorf("the access log holds the token:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "status=401") || !strings.Contains(log.String(), "token=REDACTED") {
		t.Errorf("the access log lacks the refusals:\n%s", log.String())
	}
}

// TestAdminTokenNotOnOtherRoutes: the reads and, without a write token,
// the writes want no token; the admin token is not a write token.
func TestAdminTokenNotOnOtherRoutes(t *testing.T) {
	ns := memoryNodes(names...)
	url := guarded(t, ns, false, nil)
	if status, _, body := send(t, "POST", url+"/v1/group", `{"groupId": "a"}`, "node", "node01"); status != 201 {
		t.Fatalf("POST without a write token configured: %d %s", status, body)
	}
	if status, _, body := send(t, "GET", url+"/v1/group/a", "", "node", "node01"); status != 200 {
		t.Fatalf("GET: %d %s", status, body)
	}
}

// TestWriteToken: with a write token, a write without it, or with the
// admin token, is refused and stores nothing; reads stay open.
func TestWriteToken(t *testing.T) {
	ns := memoryNodes(names...)
	url := guarded(t, ns, true, nil)
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
	}{
		{"create", "POST", "/v1/group", `{"groupId": "a"}`, []string{"node", "node01"}},
		{"create-admin-token", "POST", "/v1/group", `{"groupId": "a"}`, []string{"node", "node01", "Authorization", "Bearer " + adminToken}},
		{"batch", "POST", "/v1/batch", `{"items": [{"op": "create", "node": "node01", "groupId": "a"}]}`, nil},
	} {
		status, auth, body := send(t, tc.method, url+tc.path, tc.body, tc.headers...)
		if status != 401 || !strings.HasPrefix(auth, "Bearer") || !strings.Contains(body, "a write") || !strings.Contains(body, "--write-token-file or ROPS_WRITE_TOKEN") {
			t.Errorf("%s: %d %q %s, want 401 naming the write token", tc.name, status, auth, body)
		}
	}
	if holdsID(t, ns[0], "a") {
		t.Fatal("a refused write created a")
	}
	if status, _, body := send(t, "POST", url+"/v1/group", `{"groupId": "a"}`, "node", "node01", "Authorization", "Bearer "+writeToken); status != 201 {
		t.Fatalf("POST with the write token: %d %s", status, body)
	}
	if status, _, body := send(t, "DELETE", url+"/v1/group", `{"groupId": "a"}`, "node", "node01"); status != 401 {
		t.Fatalf("DELETE without the write token: %d %s", status, body)
	}
	if !holdsID(t, ns[0], "a") {
		t.Fatal("a refused DELETE removed a")
	}
	if status, _, body := send(t, "GET", url+"/v1/group/a", "", "node", "node01"); status != 200 {
		t.Fatalf("GET without a token: %d %s", status, body)
	}
}

// TestWriteTokenClient: a Client over an http.Client of WithBearer sends
// the write token, and one without it is refused.
func TestWriteTokenClient(t *testing.T) {
	ns := memoryNodes(names...)
	url := guarded(t, ns, true, nil)
	ctx := context.Background()
	bare, err := httpapi.NewClient(url+"/v1", "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := bare.Create(ctx, "a", "1700000000.000001"); core.ErrorCode(err) != core.ERejected || !strings.Contains(err.Error(), "a write wants a token") {
		t.Fatalf("Create without the token: %v, want a 401, rejected", err)
	}
	// The server takes no write of that pool: the next ones are known
	// refused (not applied) without being sent, even cut off in flight;
	// reads still go.
	var log strings.Builder
	url2 := guarded(t, ns, true, &log)
	refused, err := httpapi.NewClient(url2+"/v1", "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := refused.Delete(ctx, "a", "1700000000.000001"); core.ErrorCode(err) != core.ERejected {
			t.Fatalf("Delete without the token: %v, want rejected", err)
		}
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := refused.Create(ended, "b", "1700000000.000001"); core.ErrorCode(err) != core.ERejected {
		t.Fatalf("Create cut off, to a server that refuses the pool's writes: %v, want rejected (not applied)", err)
	}
	if _, err := refused.Get(ctx, "a"); core.ErrorCode(err) != core.ENotFound {
		t.Fatalf("Get without the write token: %v, want not found (reads need no token)", err)
	}
	if n := strings.Count(log.String(), `msg="DELETE /v1/group`); n != 1 {
		t.Errorf("%d DELETEs reached the server, want 1: the refusal is kept\n%s", n, log.String())
	}
	c, err := httpapi.NewClient(url+"/v1", "node01", httpapi.ClientOptions{HTTP: httpapi.WithBearer(newHTTPClient(t), writeToken)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, "a", "1700000000.000001"); err != nil {
		t.Fatalf("Create with the token: %v", err)
	}
}

// TestHostCheck: a request whose Host is not the server's is refused,
// reads too, and changes nothing; loopback names, the listen address and
// the allowed names pass.
func TestHostCheck(t *testing.T) {
	ns := memoryNodes(names...)
	url := guarded(t, ns, false, nil)
	for _, host := range []string{"attacker.example", "attacker.example:80", "localhost.attacker.example", "127.0.0.1.nip.io", "10.1.2.3", "node01.app.internal.com.attacker.example"} {
		status, _, body := send(t, "POST", url+"/v1/group", `{"groupId": "a"}`, "Host", host, "node", "node01")
		if status != 403 || !strings.Contains(body, "is not a name of this server") || !strings.Contains(body, "--allowed-host") {
			t.Errorf("POST with Host %s: %d %s, want 403", host, status, body)
		}
		if status, _, _ := send(t, "PUT", url+"/admin/faults", putDown, "Host", host, "Authorization", "Bearer "+adminToken); status != 403 {
			t.Errorf("PUT /admin/faults with Host %s: %d, want 403", host, status)
		}
		if status, _, _ := send(t, "GET", url+"/stats", "", "Host", host); status != 403 {
			t.Errorf("GET /stats with Host %s: %d, want 403", host, status)
		}
	}
	if holdsID(t, ns[0], "a") || faultsOf(t, ns[0]).Down {
		t.Fatal("a request with a foreign Host changed the nodes")
	}
	for _, host := range []string{"localhost:1", "LOCALHOST.", "127.0.0.1", "127.9.9.9:80", "[::1]:8080", "node01.app.internal.com:8080", "node12.app.internal.com"} {
		if status, _, body := send(t, "GET", url+"/ping", "", "Host", host); status != 200 {
			t.Errorf("GET /ping with Host %s: %d %s", host, status, body)
		}
	}
}

// TestHostPolicy: the listen address and --allowed-host decide the names.
func TestHostPolicy(t *testing.T) {
	for _, tc := range []struct {
		listen  string
		allowed []string
		ok, no  []string
	}{
		{"127.0.0.1:8080", nil, []string{"127.0.0.1:8080", "localhost"}, []string{"10.0.0.5:8080", "rops:8080"}},
		{"10.0.0.5:8080", nil, []string{"10.0.0.5:8080", "127.0.0.1:8080"}, []string{"10.0.0.6:8080", "rops"}},
		{"0.0.0.0:8080", nil, []string{"10.0.0.6:8080", "[fe80::1]:80", "localhost"}, []string{"rops:8080", "evil.example"}},
		{"[::]:8080", []string{"rops", "Node01.Per-Node.Internal.Com."}, []string{"192.168.1.1", "rops:8080", "node01.per-node.internal.com:8080"}, []string{"node02.per-node.internal.com"}},
		{":8080", []string{"*"}, []string{"anything.example"}, nil},
		{"myhost:8080", nil, []string{"MYHOST:8080"}, []string{"10.0.0.1", "otherhost"}},
	} {
		h := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{HostCheck: &httpapi.HostCheck{Listen: tc.listen, Allowed: tc.allowed}})
		url := serve(t, h).URL
		for _, host := range tc.ok {
			if status, _, body := send(t, "GET", url+"/ping", "", "Host", host); status != 200 {
				t.Errorf("listen %s allowed %v: Host %s: %d %s, want 200", tc.listen, tc.allowed, host, status, body)
			}
		}
		for _, host := range tc.no {
			if status, _, _ := send(t, "GET", url+"/ping", "", "Host", host); status != 403 {
				t.Errorf("listen %s allowed %v: Host %s: %d, want 403", tc.listen, tc.allowed, host, status)
			}
		}
	}
}

// TestCrossOrigin: a write or an admin PUT from another site's page is
// refused and changes nothing; one from the server's own origin, or from
// a client that sends no Origin, passes; reads stay open.
func TestCrossOrigin(t *testing.T) {
	ns := memoryNodes(names...)
	url := guarded(t, ns, false, nil)
	host := strings.TrimPrefix(url, "http://")
	auth := []string{"Authorization", "Bearer " + adminToken}
	for _, h := range [][]string{
		{"Origin", "http://attacker.example"},
		{"Origin", "null"},
		{"Origin", "http://localhost:1"},
		{"Origin", "http://" + host + ".attacker.example"},
		{"Origin", "file://" + host},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "http://" + host, "Sec-Fetch-Site", "cross-site"},
	} {
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/v1/group", `{"groupId": "a"}`},
			{"DELETE", "/v1/group", `{"groupId": "b"}`},
			{"POST", "/v1/batch", `{"items": [{"op": "create", "node": "node01", "groupId": "a"}]}`},
			{"PUT", "/admin/faults", putDown},
			{"GET", "/admin/faults", ""},
		} {
			status, _, body := send(t, r.method, url+r.path, r.body, append(append([]string{"node", "node01"}, auth...), h...)...)
			if status != 403 || !strings.Contains(body, "cross-site request refused") {
				t.Errorf("%s %s with %v: %d %s, want 403", r.method, r.path, h, status, body)
			}
		}
		if status, _, _ := send(t, "GET", url+"/v1/groups", "", append([]string{"node", "node01"}, h...)...); status != 200 {
			t.Errorf("GET /groups with %v: %d, want 200", h, status)
		}
	}
	if holdsID(t, ns[0], "a") || faultsOf(t, ns[0]).Down {
		t.Fatal("a cross-site request changed the nodes")
	}
	for _, h := range [][]string{{"Origin", "http://" + host}, {"Origin", "https://" + strings.ToUpper(host)}, {"Sec-Fetch-Site", "same-origin"}, {"Sec-Fetch-Site", "none"}} {
		if status, _, body := send(t, "PUT", url+"/admin/faults", `{"node01": {"error_rate": 0.1}}`, append(auth, h...)...); status != 200 {
			t.Errorf("PUT from the server's own origin (%v): %d %s", h, status, body)
		}
	}
}
