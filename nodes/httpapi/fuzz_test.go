package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/nodes/httpapi"
)

// FuzzServer sends arbitrary requests to a server without faults: it must
// never panic nor answer 5xx, and every answer must be a documented success
// or the JSON error shape.
func FuzzServer(f *testing.F) {
	for _, s := range [][5]string{
		{"GET", "/v1/ping", "", "", ""},
		{"GET", "/v1/stats", "", "", ""},
		{"GET", "/v1/group/5", "node01", "", ""},
		{"GET", "/v1/group/%2E%2E", "node02", "", ""},
		{"POST", "/v1/group", "node01", "1700000000.000001", `{"groupId": "5"}`},
		{"POST", "/group", "node01", "", `{"groupId": 5}`},
		{"POST", "/v1/group", "node09", "", `{"groupId": "5"}`},
		{"DELETE", "/v1/group", "node01", "1700000000.000001", `{"groupId": "5"}`},
		{"DELETE", "/v1/group", "", "", `{"groupId": `},
		{"DELETE", "/v1/group?older_than=1700000000.000002", "node01", "", `{"groupId": "5"}`},
		{"DELETE", "/group?older_than=1e9&older_than=", "node02", "1", `{"groupId": "5"}`},
		{"GET", "/v1/groups?after=4&limit=2", "node03", "", ""},
		{"GET", "/v1/groups?limit=-1", "node03", "", ""},
		{"PUT", "/v1/admin/faults", "", "", `{"node01": {"down": true}}`},
		{"PATCH", "/v1/nope", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	srv := httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{})
	f.Fuzz(func(t *testing.T, method, target, node, timestamp, body string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" || !isToken(method) {
			t.Skip("not a request a server would pass on")
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method, r.URL, r.RequestURI = method, u, target
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		for k, v := range map[string]string{"Node": node, "Timestamp": timestamp} {
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
