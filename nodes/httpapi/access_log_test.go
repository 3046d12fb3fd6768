package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/httpapi"
)

func TestAccessLog(t *testing.T) {
	var log bytes.Buffer
	s := httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{AccessLog: &log, Clock: clock, Tokens: core.NewTokenSource(clock)})
	for _, r := range []struct {
		method, target, remote, ua, referer string
	}{
		{"POST", "/v1/group", "192.0.2.1:1234", "rops/1", ""},
		{"GET", "/v1/group/9?x=1", "[::1]:80", `curl "evil"` + "\n", "http://example.com/"},
		{"GET", "/nope", "192.0.2.1:1234", "", ""},
	} {
		req := httptest.NewRequest(r.method, r.target, strings.NewReader(`{"groupId": "9"}`))
		req.RemoteAddr = r.remote
		req.Header.Set("Node", "node01")
		if r.ua != "" {
			req.Header.Set("User-Agent", r.ua)
		}
		if r.referer != "" {
			req.Header.Set("Referer", r.referer)
		}
		s.ServeHTTP(httptest.NewRecorder(), req)
	}
	want := `192.0.2.1 - - [14/Nov/2023:22:13:20 +0000] "POST /v1/group HTTP/1.1" 201 8 "-" "rops/1"
::1 - - [14/Nov/2023:22:13:20 +0000] "GET /v1/group/9?x=1 HTTP/1.1" 200 51 "http://example.com/" "curl \x22evil\x22\x0a"
192.0.2.1 - - [14/Nov/2023:22:13:20 +0000] "GET /nope HTTP/1.1" 404 150 "-" "-"
`
	if got := log.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
}

// TestAccessLogConcurrent checks lines from concurrent requests over a real
// server stay whole.
func TestAccessLogConcurrent(t *testing.T) {
	var log bytes.Buffer
	srv := serve(t, httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{AccessLog: &log}))
	hc := newHTTPClient(t)
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				resp, err := hc.Get(srv.URL + "/v1/ping")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	srv.Close() // every handler has returned, and logged
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if got, want := len(lines), workers*each; got != want {
		t.Fatalf("%d log lines, want %d", got, want)
	}
	line := regexp.MustCompile(`^127\.0\.0\.1 - - \[[^\]]+\] "GET /v1/ping HTTP/1\.1" 200 5 "-" "Go-http-client/1\.1"$`)
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Fatalf("log line %q is not as expected", l)
		}
	}
}

// TestAccessLogOff checks a server without a log answers the same.
func TestAccessLogOff(t *testing.T) {
	s := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{})
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ping", nil))
	if got, want := w.Body.String(), "PONG\n"; got != want {
		t.Fatalf("body=%q, want %q", got, want)
	}
}
