package httpapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// heldToken is the token of the records every node of the golden fixture
// holds: ids 1, 5 and 7.
const heldToken = "1633806680.426599"

// request is one request of a golden case. Headers are "Key: value" lines.
type request struct {
	method, path string
	header       []string
	body         string
}

// get, post and del build the requests of the tables; hdr are "Key: value".
func get(path string, hdr ...string) request { return request{method: "GET", path: path, header: hdr} }

func post(body string, hdr ...string) request {
	return request{method: "POST", path: "/v1/group", header: hdr, body: body}
}

func del(body string, hdr ...string) request {
	return request{method: "DELETE", path: "/v1/group", header: hdr, body: body}
}

// delOlder is a delete without a read: DELETE /v1/group?older_than=before.
func delOlder(before, body string, hdr ...string) request {
	return request{method: "DELETE", path: "/v1/group?older_than=" + before, header: hdr, body: body}
}

// goldenCase is a server and the requests sent to it in turn; the
// exchanges are compared with testdata/golden/<name>.txt.
type goldenCase struct {
	name    string
	reqs    []request
	nodes   []string      // the server's nodes (default: names)
	admin   bool          // serve /admin/faults
	faults  faults.Faults // node01's faults
	seed    uint64        // node01's seed
	maxBody int64
	// noTombstones serves stores that keep none, as the original's were.
	noTombstones bool
}

const n1, n2 = "Node: node01", "Node: node02"

// Fences of the golden cases, in increasing order.
const fence1, fence2, fence3 = "1700000002.000001", "1700000002.000002", "1700000002.000003"

var goldenCases = []goldenCase{
	{name: "ping", reqs: []request{get("/ping"), get("/ping/"), get("/v1/ping"), get("/v1/ping/")}},
	{name: "ping-wrong-method", reqs: []request{{method: "POST", path: "/v1/ping/"}}},
	{name: "stats", reqs: []request{get("/stats"), get("/v1/stats")}},
	{name: "stats-inconsistent", reqs: []request{post(`{"groupId": "9"}`, n1), get("/v1/stats")}},
	{name: "get-found", reqs: []request{get("/v1/group/5", n1), get("/group/5", n2)}},
	{name: "get-missing", reqs: []request{get("/v1/group/6", n1)}},
	{name: "get-escaped-ids", reqs: []request{
		post(`{"groupId": "."}`, n1), get("/v1/group/%2E", n1), get("/v1/group/.", n1),
		post(`{"groupId": ".."}`, n1), get("/v1/group/%2E%2E", n1), get("/v1/group/..", n1),
		post(`{"groupId": "?"}`, n1), get("/v1/group/%3F", n1),
		post(`{"groupId": "%"}`, n1), get("/v1/group/%25", n1),
		post(`{"groupId": "#"}`, n1), get("/v1/group/%23", n1),
		post(`{"groupId": "%2F"}`, n1), get("/v1/group/%252F", n1),
		post(`{"groupId": "\u00e9"}`, n1), get("/v1/group/%C3%A9", n1),
	}},
	{name: "get-invalid-id", reqs: []request{
		get("/v1/group/a%2Fb", n1), get("/v1/group/a/b", n1), get("/v1/group/", n1), get("/v1/group/a%20b", n1),
	}},
	{name: "get-missing-node", reqs: []request{get("/v1/group/5")}},
	{name: "post-created", reqs: []request{
		post(`{"groupId": "9"}`, n1, "Timestamp: 1700000001.000001"), get("/v1/group/9", n1),
	}},
	{name: "post-no-timestamp", reqs: []request{post(`{"groupId": "9"}`, n1), get("/v1/group/9", n1)}},
	{name: "post-replay", reqs: []request{post(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken)}},
	{name: "post-exists", reqs: []request{
		post(`{"groupId": "5"}`, n1, "Timestamp: 1700000001.000001"), post(`{"groupId": "5"}`, n1),
	}},
	{name: "post-number-id", reqs: []request{
		post(`{"groupId": 12}`, n1, "Timestamp: 1700000001.000001"), get("/v1/group/12", n1),
		post(`{"groupId": -1.5e3}`, n1, "Timestamp: 1700000001.000001"), get("/v1/group/-1.5e3", n1),
	}},
	{name: "post-missing-node", reqs: []request{post(`{"groupId": "9"}`)}},
	{name: "post-unknown-node", reqs: []request{post(`{"groupId": "9"}`, "Node: node09")}},
	{name: "post-single-node-default", nodes: []string{"node01"}, reqs: []request{
		post(`{"groupId": "9"}`), get("/v1/group/9"), get("/v1/stats"), post(`{"groupId": "9"}`, "Node: node02"),
	}},
	{name: "post-missing-body", reqs: []request{post("", n1), post(" \n", n1), post("null", n1)}},
	{name: "post-no-groupid", reqs: []request{
		post(`{"id": "5"}`, n1), post(`{"groupid": "5"}`, n1), post(`{"groupId": null}`, n1), post(`{}`, n1),
	}},
	{name: "post-invalid-id", reqs: []request{
		post(`{"groupId": "a b"}`, n1), post(`{"groupId": ""}`, n1), post(`{"groupId": "a/b"}`, n1),
		post(`{"groupId": true}`, n1), post(`{"groupId": ["5"]}`, n1),
		post(`{"groupId": "`+strings.Repeat("x", 129)+`"}`, n1),
	}},
	{name: "post-bad-json", reqs: []request{
		post(`{"groupId": `, n1), post(`[1]`, n1), post(`"5"`, n1), post(`{"groupId": "5"} x`, n1),
		post("{\"groupId\": \"\xff\"}", n1),
	}},
	{name: "post-too-large", maxBody: 32, reqs: []request{
		post(`{"groupId": "`+strings.Repeat("x", 20)+`"}`, n1),
		post(`{"groupId": "`+strings.Repeat("x", 17)+`"}`, n1),
	}},
	{name: "post-long-timestamp", reqs: []request{
		post(`{"groupId": "9"}`, n1, "Timestamp: "+strings.Repeat("1", httpapi.MaxTokenLen+1)),
	}},
	// The timestamp is a finite non-negative decimal, as the original's
	// clients send it (seconds.micros).
	{name: "post-bad-timestamp", reqs: []request{
		post(`{"groupId": "9"}`, n1, "Timestamp: nan"), post(`{"groupId": "9"}`, n1, "Timestamp: inf"),
		post(`{"groupId": "9"}`, n1, "Timestamp: -1"), post(`{"groupId": "9"}`, n1, "Timestamp: 1e400"),
		post(`{"groupId": "9"}`, n1, "Timestamp: hello world"), del(`{"groupId": "5"}`, n1, "Timestamp: +1.5"),
		post(`{"groupId": "9"}`, n1, "Timestamp: 1."), post(`{"groupId": "9"}`, n1, "Timestamp: 0x10"),
		get("/v1/stats"), post(`{"groupId": "9"}`, n1, "Timestamp: 1633786070"), get("/v1/group/9", n1),
	}},
	// A lone UTF-16 surrogate is no character: encoding/json would make
	// every one U+FFFD, one id.
	{name: "post-lone-surrogate", reqs: []request{
		post(`{"groupId": "\ud800"}`, n1), post(`{"groupId": "\udfff"}`, n1), post(`{"groupId": "a\ud800b"}`, n1),
		post(`{"groupId": "\ud800\ud800\udc00"}`, n1), post(`{"groupId": "\ud83d\u0041"}`, n1),
		del(`{"groupId": "\udc00"}`, n1), get("/v1/group/%ED%A0%80", n1), get("/v1/stats"),
		post(`{"groupId": "\ud83d\ude00"}`, n1, "Timestamp: 1700000001.000001"), get("/v1/group/%F0%9F%98%80", n1),
	}},
	{name: "delete-ok", reqs: []request{del(`{"groupId": "5"}`, n1), get("/v1/group/5", n1), get("/v1/stats")}},
	{name: "delete-missing", reqs: []request{del(`{"groupId": "6"}`, n1)}},
	{name: "delete-conditional", reqs: []request{
		del(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken), get("/v1/group/5", n1),
	}},
	// A create after a delete with its timestamp is a late one: refused,
	// whether the delete found the record or not; another timestamp is
	// another operation.
	{name: "post-fenced", reqs: []request{
		del(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken), post(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken),
		get("/v1/group/5", n1), post(`{"groupId": "5"}`, n1, "Timestamp: 1700000001.000001"),
	}},
	{name: "post-fenced-missing", reqs: []request{
		del(`{"groupId": "9"}`, n1, "Timestamp: 1700000001.000001"), post(`{"groupId": "9"}`, n1, "Timestamp: 1700000001.000001"),
		post(`{"groupId": "9"}`, n2, "Timestamp: 1700000001.000001"),
	}},
	{name: "post-no-tombstones", noTombstones: true, reqs: []request{
		del(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken), post(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken),
	}},
	// A delete without a read answers what it removed, and a copy of it
	// the same, touching nothing: not the undo's record (its own
	// timestamp), not a newer one.
	{name: "delete-older-than", reqs: []request{
		delOlder("1700000001.000001", `{"groupId": "5"}`, n1), delOlder("1700000001.000001", `{"groupId": "5"}`, n1),
		post(`{"groupId": "5"}`, n1, "Timestamp: 1700000001.000001"),
		delOlder("1700000001.000001", `{"groupId": "5"}`, n1), get("/v1/group/5", n1),
		delOlder(heldToken, `{"groupId": "5"}`, n1),
		delOlder("1700000001.000001", `{"groupId": "6"}`, n1),
	}},
	{name: "delete-older-than-invalid", reqs: []request{
		delOlder("x", `{"groupId": "5"}`, n1), delOlder("1700000001.000001", `{"groupId": "5"}`, n1, "Timestamp: "+heldToken),
		{method: "DELETE", path: "/v1/group?older_than=1&older_than=2", header: []string{n1}, body: `{"groupId": "5"}`},
	}},
	{name: "delete-wrong-token", reqs: []request{
		del(`{"groupId": "5"}`, n1, "Timestamp: 1700000001.000001"), get("/v1/group/5", n1),
	}},
	// A request under a fence older than one a later holder of the id
	// sent (here a GET) is refused, touching nothing, and the answer names
	// the node's fence; one without a fence, or on another id or node, or
	// under a greater fence, goes on.
	{name: "fence-stale", reqs: []request{
		get("/v1/group/5", n1, "Rops-Fence: "+fence2),
		post(`{"groupId": "5"}`, n1, "Timestamp: 1700000001.000001", "Rops-Fence: "+fence1),
		del(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken, "Rops-Fence: "+fence1),
		delOlder("1700000001.000001", `{"groupId": "5"}`, n1, "Rops-Fence: "+fence1),
		get("/v1/group/5", n1, "Rops-Fence: "+fence1),
		get("/v1/group/5", n1),
		get("/v1/group/5", n2, "Rops-Fence: "+fence1),
		post(`{"groupId": "9"}`, n1, "Timestamp: 1700000001.000001", "Rops-Fence: "+fence1),
		del(`{"groupId": "5"}`, n1, "Timestamp: "+heldToken, "Rops-Fence: "+fence3),
	}},
	// A fence is a timestamp, as the timestamp header is; only the routes
	// of one group record read it.
	{name: "fence-invalid", reqs: []request{
		post(`{"groupId": "9"}`, n1, "Rops-Fence: soon"), post(`{"groupId": "9"}`, n1, "Rops-Fence: -1"),
		post(`{"groupId": "9"}`, n1, "Rops-Fence: 1e9"),
		post(`{"groupId": "9"}`, n1, "Rops-Fence: "+strings.Repeat("1", httpapi.MaxTokenLen+1)),
		post(`{"groupId": "9"}`, n1, "Rops-Fence: "+fence1, "Rops-Fence: "+fence2),
		get("/v1/group/5", n1, "Rops-Fence: nan"), del(`{"groupId": "5"}`, n1, "Rops-Fence: 0x10"),
		get("/v1/stats", "Rops-Fence: soon"), get("/v1/group/9", n1), get("/v1/group/5", n1),
	}},
	{name: "groups-paging", reqs: []request{
		get("/v1/groups?limit=2", n1), get("/v1/groups?after=5&limit=2", n1), get("/groups", n1),
		get("/v1/groups?after=7", n1), get("/v1/groups?after=0&limit=3", n1),
	}},
	{name: "groups-bad-limit", reqs: []request{
		get("/v1/groups?limit=0", n1), get("/v1/groups?limit=x", n1), get("/v1/groups?limit=10001", n1),
		get("/v1/groups?after=a%20b", n1), get("/v1/groups"),
	}},
	{name: "unknown-route", reqs: []request{get("/v1/nope"), get("/v2/ping"), get("/v1"), get("/"), get("/v1/group/5/x", n1)}},
	{name: "wrong-method", reqs: []request{
		{method: "PUT", path: "/v1/group", header: []string{n1}, body: `{"groupId": "5"}`},
		{method: "POST", path: "/v1/group/5", header: []string{n1}},
		{method: "DELETE", path: "/v1/stats"},
		{method: "PATCH", path: "/v1/groups"},
	}},
	{name: "admin-off", reqs: []request{
		get("/v1/admin/faults"), {method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"down": true}}`},
	}},
	{name: "admin-get", admin: true, faults: faults.Faults{ErrorRate: 0.2, Latency: faults.Duration(15e6)}, reqs: []request{
		get("/v1/admin/faults"), get("/admin/faults"),
	}},
	{name: "admin-put", admin: true, faults: faults.Faults{ErrorRate: 0.2}, reqs: []request{
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"ambiguous_rate": 0.1, "latency": "1ms"}, "node03": {"down": true}}`},
		get("/v1/group/5", "Node: node03"),
	}},
	{name: "admin-put-invalid", admin: true, reqs: []request{
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"error_rate": 0.5}, "node02": {"error_rate": 2}}`},
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"error_rate": 0.5}, "node09": {"down": true}}`},
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"eror_rate": 0.5}}`},
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"latency": "soon"}}`},
		{method: "PUT", path: "/v1/admin/faults", body: `[]`},
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": `},
		{method: "DELETE", path: "/v1/admin/faults"},
		get("/v1/admin/faults"),
	}},
	// Fault values are bounded: a typo (1000h for 1000ms) is refused.
	{name: "admin-put-out-of-bounds", admin: true, reqs: []request{
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"latency": "1000h"}}`},
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"jitter": "2h"}}`},
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"late_rate": 0.1, "late_delay": "1h"}}`},
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"hang_rate": 1e400}}`},
		{method: "PUT", path: "/v1/admin/faults", body: `{"node01": {"latency": "-1s"}}`},
		get("/v1/admin/faults"),
	}},
	// Seeds 2 and 0 make node01's first GET of id 5 fail with 500 and
	// 408: each call draws its fault from the seed, method, id and count.
	{name: "fault-500", faults: faults.Faults{ErrorRate: 1}, seed: 2, reqs: []request{
		get("/v1/group/5", n1), get("/v1/groups", n1), get("/v1/stats"),
	}},
	{name: "fault-408", faults: faults.Faults{ErrorRate: 1}, seed: 0, reqs: []request{get("/v1/group/5", n1)}},
	{name: "down", faults: faults.Faults{Down: true}, reqs: []request{
		get("/v1/group/5", n1), post(`{"groupId": "9"}`, n1), get("/v1/groups", n1), get("/v1/stats"), get("/v1/ping"),
	}},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := goldenServer(t, tc)
			var b strings.Builder
			for i, req := range tc.reqs {
				if i > 0 {
					b.WriteString("\n")
				}
				exchange(t, srv, req, &b)
			}
			checkGolden(t, filepath.Join("testdata", "golden", tc.name+".txt"), b.String())
		})
	}
}

// goldenServer returns the server of tc: every node holds ids 1, 5 and 7.
func goldenServer(t *testing.T, tc goldenCase) *httpapi.Server {
	t.Helper()
	ns := tc.nodes
	if ns == nil {
		ns = names
	}
	nodeList := make([]core.Node, len(ns))
	for i, name := range ns {
		store := memory.New()
		if tc.noTombstones {
			store = memory.NewWithOptions(memory.Options{MaxTombstones: -1})
		}
		for _, id := range []core.GroupID{"1", "5", "7"} {
			if err := store.Create(t.Context(), id, heldToken); err != nil {
				t.Fatal(err)
			}
		}
		opts := faults.Options{Clock: clock}
		if i == 0 {
			opts.Faults, opts.Seed = tc.faults, tc.seed
		}
		nodeList[i] = faults.New(name, store, opts)
	}
	return httpapi.NewServer(nodeList, httpapi.ServerOptions{
		Admin: tc.admin, MaxBody: tc.maxBody, Tokens: core.NewTokenSource(clock), Clock: clock,
	})
}

// exchange sends req to h and writes both to b, then checks the answer
// has the shape every answer must have.
func exchange(t *testing.T, h http.Handler, req request, b *strings.Builder) {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, req.path, body)
	fmt.Fprintf(b, ">>> %s %s\n", req.method, req.path)
	for _, kv := range req.header {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Add(k, v)
		fmt.Fprintf(b, "%s\n", kv)
	}
	if req.body != "" {
		fmt.Fprintf(b, "\n%s\n", req.body)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Fprintf(b, "<<< %d\n", w.Code)
	// Rops-Removes and Rops-Protocol are left out: they are on every
	// answer of a rops node (TestRemoveAnnounced and
	// TestServerProtocolHeader check them).
	for _, k := range []string{"Content-Type", "Allow", "Retry-After", "Rops-Tombstones", "Rops-Applied", "Rops-Removed", "Rops-Held", "Rops-Fence"} {
		if v := w.Header().Get(k); v != "" {
			fmt.Fprintf(b, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintf(b, "\n%s", w.Body.String())
	checkAnswer(t, w.Code, w.Header(), w.Body.Bytes())
}

// checkAnswer fails t unless an answer is a documented success body or the
// JSON error {"message": "...", "status": N} with N the status.
func checkAnswer(t *testing.T, status int, h http.Header, body []byte) {
	t.Helper()
	if !bytes.HasSuffix(body, []byte("\n")) {
		t.Errorf("%d answer %q does not end in a newline", status, body)
	}
	if status >= 300 {
		var e struct {
			Message string `json:"message"`
			Status  int    `json:"status"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Message == "" || e.Status != status {
			t.Errorf("%d answer %q is not a JSON error with that status (%v)", status, body, err)
		}
		if got, want := h.Get("Content-Type"), "application/json"; got != want {
			t.Errorf("%d answer: Content-Type=%q, want %q", status, got, want)
		}
		return
	}
	switch string(body) {
	case "PONG\n", "CREATED\n", "OK\n":
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%d answer %q is neither a text success nor JSON: %v", status, body, err)
		return
	}
	if !isSuccessJSON(v) {
		t.Errorf("%d answer %q is not a documented success body", status, body)
	}
}

// isSuccessJSON reports whether v is a record, a page of records, stats or
// the admin's faults.
func isSuccessJSON(v any) bool {
	switch v := v.(type) {
	case []any: // [consistent, {node: count}]
		if len(v) != 2 {
			return false
		}
		_, ok := v[0].(bool)
		counts, ok2 := v[1].(map[string]any)
		for _, c := range counts {
			if _, isNum := c.(float64); !isNum {
				return false
			}
		}
		return ok && ok2
	case map[string]any:
		if isRecord(v) {
			return true
		}
		if groups, ok := v["groups"].([]any); ok && len(v) == 2 {
			for _, g := range groups {
				if r, ok := g.(map[string]any); !ok || !isRecord(r) {
					return false
				}
			}
			next, isStr := v["next"].(string)
			return v["next"] == nil || isStr && next != ""
		}
		for _, f := range v { // the admin's faults of each node
			if f, ok := f.(map[string]any); !ok || f["error_rate"] == nil {
				return false
			}
		}
		return true
	}
	return false
}

func isRecord(m map[string]any) bool {
	id, ok := m["groupId"].(string)
	_, ok2 := m["timestamp"].(string)
	return ok && ok2 && id != "" && len(m) == 2
}

// checkGolden compares got with the file at path, or rewrites the file
// with -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o666); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("answers differ from %s (run go test -update to accept them):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
