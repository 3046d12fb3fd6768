package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

// FuzzServer sends arbitrary requests to a server without faults, whose
// nodes fence: it must never panic nor answer 5xx, every answer must be a
// documented success or the JSON error shape and carry Rops-Protocol, and
// a stale request's 409 must name the node's fence. The server is shared by
// the inputs, so a fence one input sent can make another's stale.
func FuzzServer(f *testing.F) {
	for _, s := range [][6]string{
		{"GET", "/v1/ping", "", "", "", ""},
		{"GET", "/v1/stats", "", "", "", ""},
		{"GET", "/v1/group/5", "node01", "", "", ""},
		{"GET", "/v1/group/%2E%2E", "node02", "", "", ""},
		{"POST", "/v1/group", "node01", "1700000000.000001", `{"groupId": "5"}`, ""},
		{"POST", "/group", "node01", "", `{"groupId": 5}`, ""},
		{"POST", "/v1/group", "node09", "", `{"groupId": "5"}`, ""},
		{"DELETE", "/v1/group", "node01", "1700000000.000001", `{"groupId": "5"}`, ""},
		{"DELETE", "/v1/group", "", "", `{"groupId": `, ""},
		{"DELETE", "/v1/group?older_than=1700000000.000002", "node01", "", `{"groupId": "5"}`, ""},
		{"DELETE", "/group?older_than=1e9&older_than=", "node02", "1", `{"groupId": "5"}`, ""},
		{"GET", "/v1/groups?after=4&limit=2", "node03", "", "", ""},
		{"GET", "/v1/groups?limit=-1", "node03", "", "", ""},
		{"PUT", "/v1/admin/faults", "", "", `{"node01": {"down": true}}`, ""},
		{"PATCH", "/v1/nope", "", "", "", ""},
		{"GET", "/v1/group/5", "node01", "", "", "1700000002.000002"},
		{"POST", "/v1/group", "node01", "1700000000.000001", `{"groupId": "5"}`, "1700000002.000001"},
		{"DELETE", "/v1/group?older_than=1700000000.000002", "node01", "", `{"groupId": "5"}`, "1700000002"},
		{"POST", "/v1/group", "node01", "", `{"groupId": "6"}`, "1e9"},
		{"GET", "/v1/group/6", "node02", "", "", "-1.5"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	srv := httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{})
	f.Fuzz(func(t *testing.T, method, target, node, timestamp, body, fence string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" || !isToken(method) {
			t.Skip("not a request a server would pass on")
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method, r.URL, r.RequestURI = method, u, target
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		for k, v := range map[string]string{"Node": node, "Timestamp": timestamp, "Rops-Fence": fence} {
			if v = strings.TrimSpace(v); v != "" && isHeaderValue(v) {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, target, w.Code, w.Body)
		}
		checkAnswer(t, w.Code, w.Header(), w.Body.Bytes())
		if got := w.Header().Values("Rops-Protocol"); len(got) != 1 || got[0] != "2" {
			t.Fatalf("%s %s: %d with Rops-Protocol %q, want \"2\"", method, target, w.Code, got)
		}
		if w.Code == http.StatusConflict && strings.Contains(w.Body.String(), "Stale") {
			sent := core.Token(r.Header.Get("Rops-Fence"))
			if got := core.Token(w.Header().Get("Rops-Fence")); core.CompareTokens(got, sent) <= 0 {
				t.Fatalf("%s %s under fence %q: stale, with Rops-Fence %q: want the node's fence, above the request's", method, target, sent, got)
			}
		}
	})
}

// isToken reports whether s is an HTTP token, as a method must be.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// isHeaderValue reports whether a server would pass s on as a header value.
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzBatch sends arbitrary POST /batch bodies to a server without faults,
// whose nodes fence: it must never panic nor answer 5xx; a refused batch is
// the JSON error shape, and an accepted one has a result per item, each a
// documented answer of a single request, never a 5xx, or no answer (status
// 0) if the batch's wait ended first.
func FuzzBatch(f *testing.F) {
	for _, s := range []string{
		`{"items": [{"op": "create", "node": "node01", "groupId": "5", "timestamp": "1700000000.000001"}]}`,
		`{"items": [{"op": "create", "node": "node01", "groupId": 5, "fence": "1700000002"}, {"op": "delete", "node": "node01", "groupId": "5", "timestamp": "1700000000.000001", "fence": "1700000001"}]}`,
		`{"items": [{"op": "remove", "node": "node02", "groupId": "5", "older_than": "1700000000.000002"}]}`,
		`{"items": [{"op": "create", "node": "node09", "groupId": "\ud800"}, {"op": "delete", "groupId": null}]}`,
		`{"items": [{"op": "create", "node": "node01", "groupId": "5", "timestamp": "nan"}]}`,
		`{"items": [{"op": "create", "node": "node01", "groupId": "5"}, {"op": "delete", "node": "node01", "groupId": "6"}], "wait": "1.5s"}`,
		`{"items": [{"op": "create", "node": "node01", "groupId": "5"}], "wait": "1ns"}`,
		`{"items": [{"op": "create", "groupId": "5"}], "wait": "-1s"}`,
		`{"items": [{"op": "create", "groupId": "5"}], "wait": 2}`,
		`{"items": []}`,
		`{"items": `,
		`[]`,
	} {
		f.Add(s)
	}
	srv := httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{})
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/batch", strings.NewReader(body)))
		if w.Code != http.StatusOK {
			if w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("%q: %d %s, want 200, 400 or 413", body, w.Code, w.Body)
			}
			checkAnswer(t, w.Code, w.Header(), w.Body.Bytes())
			return
		}
		var in struct {
			Items []json.RawMessage
			Wait  string
		}
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatalf("%q: accepted, but it is not a JSON object of items: %v", body, err)
		}
		var out struct {
			Results []struct {
				Status  int               `json:"status"`
				Headers map[string]string `json:"headers"`
				Body    string            `json:"body"`
			} `json:"results"`
		}
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil || len(out.Results) != len(in.Items) {
			t.Fatalf("%q: answer %s: %v, %d results for %d items", body, w.Body, err, len(out.Results), len(in.Items))
		}
		for i, r := range out.Results {
			if r.Status == 0 && in.Wait != "" && r.Body == "" && r.Headers == nil {
				// Not answered within the batch's wait.
				continue
			}
			if r.Status < 200 || r.Status >= 500 {
				t.Fatalf("%q: item %d answered %d %q", body, i, r.Status, r.Body)
			}
			h := http.Header{}
			if r.Status >= 300 {
				h.Set("Content-Type", "application/json")
			}
			checkAnswer(t, r.Status, h, []byte(r.Body))
		}
	})
}
