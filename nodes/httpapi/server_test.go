package httpapi_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/httpapi"
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
