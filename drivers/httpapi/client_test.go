package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// answerWith returns a handler that answers every request with status, a
// JSON error body of message (or body as it is, if message is empty) and
// the header lines given as "Key: value".
func answerWith(status int, message, body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for _, kv := range hdr {
			k, v, _ := strings.Cut(kv, ": ")
			w.Header().Set(k, v)
		}
		if message != "" {
			w.Header().Set("Content-Type", "application/json")
			body = fmt.Sprintf(`{"message": %q, "status": %d}`, message, status)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// reset answers by closing the connection: no status, no body.
func reset(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

// Calls of a Client, for the classification table.
var (
	create = func(ctx context.Context, c *httpapi.Client) error { return c.Create(ctx, "5", "1.000001") }
	remove = func(ctx context.Context, c *httpapi.Client) error { return c.Delete(ctx, "5", "") }
	read   = func(ctx context.Context, c *httpapi.Client) error { _, err := c.Get(ctx, "5"); return err }
	list   = func(ctx context.Context, c *httpapi.Client) error { _, err := c.List(ctx, "", 10); return err }
	count  = func(ctx context.Context, c *httpapi.Client) error { _, err := c.Count(ctx); return err }
	ping   = func(ctx context.Context, c *httpapi.Client) error { return c.Ping(ctx) }
)

// TestClientClassifies checks the class, status and Retry-After of the
// error of every kind of answer a server may give.
func TestClientClassifies(t *testing.T) {
	notFound := "No group record found with id '5'"
	fenced := "Fenced: this group record was deleted with this timestamp; a create with it is refused."
	stale := "Stale: a later holder of this group record's lock sent a greater fence; the request is refused."
	const staleFence = "1700000002.000002"
	html404 := "<!DOCTYPE html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>"
	for _, tc := range []struct {
		name       string
		handler    http.HandlerFunc
		call       func(context.Context, *httpapi.Client) error
		wantCode   core.Code // "" for success
		wantStatus int
		wantAfter  time.Duration
		wantMsg    string // a part of the message
	}{
		{"create 201", answerWith(201, "", "CREATED\n"), create, "", 0, 0, ""},
		{"create 200 CREATED", answerWith(200, "", "CREATED"), create, "", 0, 0, ""},
		{"create 201 JSON CREATED", answerWith(201, "", `"CREATED"`), create, "", 0, 0, ""},
		// A success whose body is not the call's answer comes from
		// something that is not a node: a write may have been passed on.
		{"create 200 HTML", answerWith(200, "", "<html><body>Welcome to the hotel network</body></html>\n"), create, core.ETransient, 200, 0,
			`the answer is 200 OK with "<html><body>Welcome to the hotel network</body></html>", not CREATED`},
		{"create 200 OK", answerWith(200, "", "OK\n"), create, core.ETransient, 200, 0, `with "OK", not CREATED`},
		{"create 204", answerWith(204, "", ""), create, core.ETransient, 204, 0, "204 No Content with no body, not CREATED"},
		{"delete 200 HTML", answerWith(200, "", "<html></html>"), remove, core.ETransient, 200, 0, "not OK"},
		{"ping 200 HTML", answerWith(200, "", "<html></html>"), ping, core.ERejected, 200, 0, "not PONG"},
		// A node's words are quoted, escaped and cut to 200 bytes.
		{"create 500 long message", answerWith(500, "", `{"message": "\u001b[31m`+strings.Repeat("x", 300)+`", "status": 500}`), create, core.ETransient, 500, 0,
			`"\x1b[31m` + strings.Repeat("x", 195) + `"...`},
		{"create 502 page", answerWith(502, "", "<html>\r\n\x1b]0;pwned\x07"+strings.Repeat("y", 16<<10)), create, core.ETransient, 502, 0,
			`502 Bad Gateway: "<html>\r\n\x1b]0;pwned\a` + strings.Repeat("y", 182) + `"...`},
		{"create 400 exists", answerWith(400, "Perhaps the object exists.", ""), create, core.EExists, 400, 0, "Perhaps the object exists."},
		{"create 400 other", answerWith(400, "", "Bad Request"), create, core.ERejected, 400, 0, "400 Bad Request: Bad Request"},
		{"delete 400", answerWith(400, "Perhaps the object exists.", ""), remove, core.ERejected, 400, 0, "Perhaps"},
		{"delete 200", answerWith(200, "", "OK\n"), remove, "", 0, 0, ""},
		{"delete 404", answerWith(404, notFound, ""), remove, core.ENotFound, 404, 0, notFound},
		{"get 404", answerWith(404, notFound, ""), read, core.ENotFound, 404, 0, notFound},
		{"get 404 of a wrong URL", answerWith(404, "", html404), read, core.ERejected, 404, 0, `404 Not Found: "<!DOCTYPE html>\n<title>`},
		{"get 404 of no route", answerWith(404, "no route /v2/group/5", ""), read, core.ERejected, 404, 0, "no route"},
		{"get 200 not a record", answerWith(200, "", "<html>"), read, core.ERejected, 0, 0, "the answer is not a group record"},
		{"list 404 of the original", answerWith(404, "", html404), list, core.EUnsupported, 404, 0, "404 Not Found"},
		{"list 501", answerWith(501, "not implemented", ""), list, core.EUnsupported, 501, 0, "not implemented"},
		{"create 405", answerWith(405, "method not allowed", "", "Allow: GET"), create, core.ERejected, 405, 0, "method not allowed"},
		{"create 406", answerWith(406, "missing 'node' header", ""), create, core.ERejected, 406, 0, "missing 'node' header"},
		{"create 413", answerWith(413, "too large", ""), create, core.ERejected, 413, 0, "too large"},
		{"create 418", answerWith(418, "", ""), create, core.ERejected, 418, 0, "418 I'm a teapot"},
		{"create 302", answerWith(302, "", "", "Location: https://elsewhere/v1/group"), create, core.ERejected, 302, 0, `"https://elsewhere/v1/group"`},
		{"create 408", answerWith(408, "Timeout due to Random Behavior", ""), create, core.ETransient, 408, 0, "Timeout due to Random Behavior"},
		{"create 429 Retry-After", answerWith(429, "slow down", "", "Retry-After: 3"), create, core.ETransient, 429, 3 * time.Second, "slow down"},
		{"create 500", answerWith(500, "InternalServerError due to Random Behavior", ""), create, core.ETransient, 500, 0, "Random Behavior"},
		{"get 500", answerWith(500, "InternalServerError due to Random Behavior", ""), read, core.ETransient, 500, 0, "Random Behavior"},
		{"create 502", answerWith(502, "", "Bad Gateway"), create, core.ETransient, 502, 0, "502 Bad Gateway"},
		{"create 503 of a down node", answerWith(503, "node01 is down", "", "Retry-After: 1", "Rops-Applied: false"), create, core.EUnavailable, 503, time.Second, "node01 is down"},
		{"create 503 unmarked", answerWith(503, "node01 is down", "", "Retry-After: 1"), create, core.ETransient, 503, time.Second, "node01 is down"},
		{"create 503 of a proxy", answerWith(503, "", "upstream connect error or disconnect/reset before headers"), create, core.ETransient, 503, 0, "503 Service Unavailable: upstream connect error"},
		{"create 503 marked otherwise", answerWith(503, "", "", "Rops-Applied: true"), create, core.ETransient, 503, 0, "503 Service Unavailable"},
		{"get 503 of a down node", answerWith(503, "node01 is down", "", "Rops-Applied: false"), read, core.EUnavailable, 503, 0, "node01 is down"},
		{"create 409 fenced", answerWith(409, fenced, ""), create, core.EFenced, 409, 0, fenced},
		{"create 409 other", answerWith(409, "Conflict", ""), create, core.ERejected, 409, 0, "Conflict"},
		{"delete 409 fenced", answerWith(409, fenced, ""), remove, core.ERejected, 409, 0, fenced},
		// A stale request is refused on any call, and the node's fence
		// comes back in the error (checked below).
		{"create 409 stale", answerWith(409, stale, "", "Rops-Fence: "+staleFence), create, core.EStale, 409, 0, stale},
		{"delete 409 stale", answerWith(409, stale, "", "Rops-Fence: "+staleFence), remove, core.EStale, 409, 0, stale},
		{"get 409 stale", answerWith(409, stale, "", "Rops-Fence: "+staleFence), read, core.EStale, 409, 0, stale},
		{"create 504", answerWith(504, "", ""), create, core.ETransient, 504, 0, "504 Gateway Timeout"},
		{"create 599", answerWith(599, "", ""), create, core.ETransient, 599, 0, "599"},
		{"create reset", reset, create, core.ETransient, 0, 0, "node01: POST /group: "},
		{"get reset", reset, read, core.ETransient, 0, 0, "node01: GET /group/5: "},
		{"count 200", answerWith(200, "", `[true, {"node01": 4}]`), count, "", 0, 0, ""},
		{"count of another node", answerWith(200, "", `[true, {"node02": 4}]`), count, core.ERejected, 0, 0, "does not serve node01"},
		{"count not stats", answerWith(200, "", `{}`), count, core.ERejected, 0, 0, "the answer is not stats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.handler)
			c, err := httpapi.NewClient(srv.URL, "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(t.Context(), c)
			if got, want := core.ErrorCode(err), tc.wantCode; got != want {
				t.Fatalf("code of %v=%q, want %q", err, got, want)
			}
			if err == nil {
				return
			}
			var e *core.Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T is not a *core.Error", err)
			}
			// The status is the transport's, kept as the cause for the
			// request log; core sees only what it means.
			if got, _ := httpapi.HTTPStatus(err); got != tc.wantStatus {
				t.Errorf("HTTPStatus=%d, want %d", got, tc.wantStatus)
			}
			if s, ok := errors.AsType[*httpapi.StatusError](err); tc.wantStatus != 0 && (!ok || s.Status != tc.wantStatus) {
				t.Errorf("no *httpapi.StatusError %d in the chain: %#v", tc.wantStatus, e)
			}
			if got, want := e.Overloaded, tc.wantStatus == http.StatusTooManyRequests; got != want {
				t.Errorf("Overloaded=%v, want %v", got, want)
			}
			if got, want := e.RetryAfter, tc.wantAfter; got != want {
				t.Errorf("RetryAfter=%v, want %v", got, want)
			}
			if got, want := err.Error(), tc.wantMsg; !strings.Contains(got, want) {
				t.Errorf("message %q does not contain %q", got, want)
			}
			if e.Code == core.EStale && e.Fence != staleFence {
				t.Errorf("Fence=%q, want the node's, %q", e.Fence, staleFence)
			}
		})
	}
}

// TestClientRefused dials a port nobody listens on: nothing of the request
// was written, so it was certainly not applied (EUnavailable).
func TestClientRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := httpapi.NewClient("http://"+addr+"/v1", "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Create(t.Context(), "5", "1.000001")
	if got, want := core.ErrorCode(err), core.EUnavailable; got != want {
		t.Fatalf("code of %v=%q, want %q", err, got, want)
	}
	want := "node01 at http://" + addr + "/v1: connection refused: is the server running? Start one with rops serve"
	if got := err.Error(); got != want {
		t.Fatalf("err=%q, want %q", got, want)
	}
}

// TestClientContext: a request whose context ends before any byte of it
// was written (while dialing) is certainly not applied, EUnavailable; one
// that ends after it was sent may have been applied, ETransient.
func TestClientContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body, so that the server sees the client go away.
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	t.Run("before-sent", func(t *testing.T) {
		// The dial waits until the test ends: the transport dials apart
		// from the request, whose cancellation it does not see.
		dialing, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		hc := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				close(dialing)
				select {
				case <-ctx.Done():
				case <-release:
				}
				return nil, errors.New("dial abandoned by the test")
			},
		}}
		c := mustClient(t, srv, "node01", hc)
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-dialing; cancel() }()
		err := c.Create(ctx, "5", "1.000001")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Create cancelled while dialing: err=%v, want %v", err, context.Canceled)
		}
		if got, want := core.ErrorCode(err), core.EUnavailable; got != want {
			t.Fatalf("code of %v=%q, want %q: nothing was sent", err, got, want)
		}
	})
	t.Run("after-sent", func(t *testing.T) {
		c := mustClient(t, srv, "node01", newHTTPClient(t))
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-arrived; cancel() }()
		err := c.Create(ctx, "5", "1.000001")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Create cancelled once sent: err=%v, want %v", err, context.Canceled)
		}
		if got, want := core.ErrorCode(err), core.ETransient; got != want {
			t.Fatalf("code of %v=%q, want %q: the request may have been applied", err, got, want)
		}
	})
}

// TestHang serves a node that never answers: the client's deadline must
// end the call with a transient error, and the server's handler must
// return then rather than hang on.
func TestHang(t *testing.T) {
	n := faults.New("node01", memory.New(), faults.Options{Faults: faults.Faults{HangRate: 1}})
	server := httpapi.NewServer([]core.Node{n}, httpapi.ServerOptions{})
	returned := make(chan struct{}, 1)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		server.ServeHTTP(w, r)
	}))
	c := mustClient(t, srv, "node01", newHTTPClient(t))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := c.Create(ctx, "5", "1.000001")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Create of a hung node: err=%v, want %v", err, context.DeadlineExceeded)
	}
	if got, want := core.ErrorCode(err), core.ETransient; got != want {
		t.Fatalf("code of %v=%q, want %q", err, got, want)
	}
	<-returned // the handler returned once the client went away
}

// TestOriginalServer runs a coordinator against an imitation of the
// original Flask app: GET answers without a timestamp, there is no GET
// /groups, and stats come from /stats alone.
func TestOriginalServer(t *testing.T) {
	counts := `[true, {"node01": 1, "node02": 1, "node03": 1}]`
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST":
			_, _ = io.WriteString(w, "CREATED\n")
		case r.Method == "DELETE":
			_, _ = io.WriteString(w, "OK\n")
		case r.URL.Path == "/v1/ping":
			_, _ = io.WriteString(w, "PONG\n")
		case r.URL.Path == "/v1/stats":
			answerWith(200, "", counts)(w, r)
		case r.URL.Path == "/v1/group/5":
			answerWith(200, "", `{"groupId":"5"}`)(w, r)
		case strings.HasPrefix(r.URL.Path, "/v1/group/"):
			answerWith(404, "No group record found with id '"+strings.TrimPrefix(r.URL.Path, "/v1/group/")+"'", "")(w, r)
		default:
			answerWith(404, "", "<!DOCTYPE HTML>\n<title>404 Not Found</title>")(w, r)
		}
	}))
	cs := clients(t, srv, newHTTPClient(t), memoryNodes(names...))
	rec, err := cs[0].Get(t.Context(), "5")
	if err != nil {
		t.Fatalf("Get(5): %v", err)
	}
	if got, want := rec, (core.Record{ID: "5"}); got != want {
		t.Fatalf("Get(5)=%+v, want %+v", got, want)
	}
	if _, err := cs[0].Get(t.Context(), "6"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Get(6): err=%v, want %v", err, core.ErrNotFound)
	}
	if core.Fences(cs[0]) {
		t.Fatalf("Fences()=true against the original server, want false")
	}
	coord, err := core.New(core.Config{Nodes: cs})
	if err != nil {
		t.Fatal(err)
	}
	st, err := coord.Stats(t.Context(), core.StatsOptions{})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if !st.CountsOnly || !st.Consistent || len(st.Nodes) != 3 || st.Nodes[2].Count != 1 {
		t.Fatalf("Stats=%+v, want consistent counts only, 1 on each of 3 nodes", st)
	}
}

// TestClientIDs sends the ids that URLs treat specially through a real
// server and back: create, get, list and delete.
func TestClientIDs(t *testing.T) {
	srv := serve(t, httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{}))
	c := mustClient(t, srv, "node02", newHTTPClient(t))
	ids := []core.GroupID{".", "..", "...", "?", "?a=b", "%", "%2F", "%2E%2E", "#", "#x", "a;b", "&", "+", "\\", "é", "日本", `"`, "~"}
	for _, id := range ids {
		if err := id.Validate(); err != nil {
			t.Fatalf("test id %q: %v", id, err)
		}
		if err := c.Create(t.Context(), id, "1.000001"); err != nil {
			t.Fatalf("Create(%q): %v", id, err)
		}
		rec, err := c.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get(%q): %v", id, err)
		}
		if got, want := rec, (core.Record{ID: id, Token: "1.000001"}); got != want {
			t.Fatalf("Get(%q)=%+v, want %+v", id, got, want)
		}
	}
	page, err := c.List(t.Context(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(page), len(ids); got != want {
		t.Fatalf("List returned %d records, want %d", got, want)
	}
	for _, id := range ids {
		if err := c.Delete(t.Context(), id, "1.000001"); err != nil {
			t.Fatalf("Delete(%q): %v", id, err)
		}
		if _, err := c.Get(t.Context(), id); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("Get(%q) after Delete: err=%v, want %v", id, err, core.ErrNotFound)
		}
	}
}

// TestClientListLargeLimit asks for more than a server pages at once: the
// client must fill the limit from several pages, since a short page means
// the end.
func TestClientListLargeLimit(t *testing.T) {
	store := memory.New()
	const n = httpapi.MaxListLimit + 5
	for i := range n {
		if err := store.Create(t.Context(), core.GroupID(fmt.Sprintf("%06d", i)), "1.000001"); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve(t, httpapi.NewServer([]core.Node{faults.New("node01", store, faults.Options{})}, httpapi.ServerOptions{}))
	c := mustClient(t, srv, "node01", newHTTPClient(t))
	page, err := c.List(t.Context(), "", n+1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(page), n; got != want {
		t.Fatalf("len(List)=%d, want %d", got, want)
	}
	if got, want := page[n-1].ID, core.GroupID(fmt.Sprintf("%06d", n-1)); got != want {
		t.Fatalf("last id=%q, want %q", got, want)
	}
}

// TestClientPing pings a server.
func TestClientPing(t *testing.T) {
	srv := serve(t, httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{}))
	if err := mustClient(t, srv, "node01", newHTTPClient(t)).Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestNewClientInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, url, node, want string
	}{
		{"no scheme", "127.0.0.1:8080", "node01", "give an http:// or https:// URL"},
		{"ftp", "ftp://127.0.0.1/v1", "node01", "give an http:// or https:// URL"},
		{"no host", "http:///v1", "node01", "no host"},
		{"user", "http://u:secret@127.0.0.1/v1", "node01", "rops sends no credentials"},
		{"query", "http://127.0.0.1/v1?node=node01", "node01", "remove the query"},
		{"empty node", "http://127.0.0.1/v1", "", "invalid node name"},
		{"node with space", "http://127.0.0.1/v1", "node 1", "invalid node name"},
		{"port too large", "http://127.0.0.1:99999/v1", "node01", "port 99999 is out of range: give 1 to 65535"},
		{"port 0", "http://127.0.0.1:0/v1", "node01", "port 0 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := httpapi.NewClient(tc.url, tc.node, httpapi.ClientOptions{})
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("code of %v=%q, want %q", err, got, want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("err=%q shows the password", err)
			}
		})
	}
}

// TestClientRequests checks what goes on the wire for each call: the
// original connector's requests, plus the new ones.
func TestClientRequests(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var hdr []string
		for _, k := range []string{"Node", "Timestamp", "Rops-Fence", "Content-Type", "User-Agent", "Idempotency-Key"} {
			if v, ok := r.Header[k]; ok {
				hdr = append(hdr, k+"="+strings.Join(v, ","))
			}
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s %s %s %s", r.Method, r.RequestURI, strings.Join(hdr, " "), body))
		switch {
		case r.Method == "POST":
			_, _ = io.WriteString(w, "CREATED\n")
		case r.Method == "DELETE":
			_, _ = io.WriteString(w, "OK\n")
		case r.URL.Path == "/v1/ping":
			_, _ = io.WriteString(w, "PONG\n")
		case r.URL.Path == "/v1/stats":
			_, _ = io.WriteString(w, `[true, {"node01": 0}]`)
		case strings.HasPrefix(r.URL.Path, "/v1/groups"):
			_, _ = io.WriteString(w, `{"groups": [], "next": null}`)
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/group/"):
			_, _ = io.WriteString(w, `{"groupId": "x", "timestamp": "1.000001"}`)
		}
	}))
	c, err := httpapi.NewClient(srv.URL+"/v1/", "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t), UserAgent: "test/1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// Requests of one group record carry the fence of the operation they
	// are made for; the others, and requests made for none, carry none.
	fenced := core.WithFence(ctx, "1633806680.426601")
	for _, call := range []func() error{
		func() error { return c.Create(ctx, "5", "1633806680.426599") },
		func() error { return c.Create(ctx, `a"b`, "1633806680.426599") },
		func() error { return c.Delete(ctx, "5", "") },
		func() error { return c.Delete(ctx, "5", "1633806680.426599") },
		func() error { _, err := c.Get(ctx, "a?b"); return err },
		func() error { _, err := c.Get(ctx, ".."); return err },
		func() error { _, err := c.List(ctx, "a&b", 0); return err },
		func() error { _, err := c.Count(ctx); return err },
		func() error { return c.Ping(ctx) },
		func() error { return c.Create(fenced, "5", "1633806680.426599") },
		func() error { return c.Delete(fenced, "5", "1633806680.426599") },
		func() error { _, err := c.Remove(fenced, "5", "1633806680.426600"); return err },
		func() error { _, err := c.Get(fenced, "5"); return err },
		func() error { _, err := c.List(fenced, "", 0); return err },
		func() error { _, err := c.Count(fenced); return err },
		func() error { return c.Ping(fenced) },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`POST /v1/group Node=node01 Timestamp=1633806680.426599 Content-Type=application/json User-Agent=test/1 {"groupId": "5"}`,
		`POST /v1/group Node=node01 Timestamp=1633806680.426599 Content-Type=application/json User-Agent=test/1 {"groupId": "a\"b"}`,
		`DELETE /v1/group Node=node01 Content-Type=application/json User-Agent=test/1 {"groupId": "5"}`,
		`DELETE /v1/group Node=node01 Timestamp=1633806680.426599 Content-Type=application/json User-Agent=test/1 {"groupId": "5"}`,
		`GET /v1/group/a%3Fb Node=node01 User-Agent=test/1 `,
		`GET /v1/group/%2E%2E Node=node01 User-Agent=test/1 `,
		`GET /v1/groups?after=a%26b&limit=1000 Node=node01 User-Agent=test/1 `,
		`GET /v1/stats Node=node01 User-Agent=test/1 `,
		`GET /v1/ping Node=node01 User-Agent=test/1 `,
		`POST /v1/group Node=node01 Timestamp=1633806680.426599 Rops-Fence=1633806680.426601 Content-Type=application/json User-Agent=test/1 {"groupId": "5"}`,
		`DELETE /v1/group Node=node01 Timestamp=1633806680.426599 Rops-Fence=1633806680.426601 Content-Type=application/json User-Agent=test/1 {"groupId": "5"}`,
		`DELETE /v1/group?older_than=1633806680.426600 Node=node01 Rops-Fence=1633806680.426601 Content-Type=application/json User-Agent=test/1 {"groupId": "5"}`,
		`GET /v1/group/5 Node=node01 Rops-Fence=1633806680.426601 User-Agent=test/1 `,
		`GET /v1/groups?after=&limit=1000 Node=node01 User-Agent=test/1 `,
		`GET /v1/stats Node=node01 User-Agent=test/1 `,
		`GET /v1/ping Node=node01 User-Agent=test/1 `,
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// dropAfterApply serves h, except that the request that the nth call to
// the handler sees (counting from 1) is applied and then, instead of an
// answer, the listener closes and then the connection: the node died after
// it committed the write and before it answered, and cannot be dialled
// again. It returns the server's URL and the remote addresses of the
// requests, in order, to show which connection each came on.
func dropAfterApply(t *testing.T, h http.Handler, nth int) (string, func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		addrs []string
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		addrs = append(addrs, r.RemoteAddr)
		n := len(addrs)
		mu.Unlock()
		if n != nth {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r) // applied; the answer is lost
		_ = ln.Close()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		_ = conn.Close()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/v1", func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(addrs)
	}
}

// TestRegressionResendAfterCommit is issue 7's first scenario at the
// client: a node commits a POST that came on a kept-alive connection and
// dies before it answers. The client must not resend it, and must not call
// the outcome "certainly not applied" (EUnavailable): it was applied. It
// used to set Idempotency-Key, so the transport resent the POST on a new
// connection, whose refused dial made the error EUnavailable.
func TestRegressionResendAfterCommit(t *testing.T) {
	store := memory.New()
	server := httpapi.NewServer([]core.Node{faults.New("node01", store, faults.Options{})}, httpapi.ServerOptions{})
	url, addrs := dropAfterApply(t, server, 2)
	c, err := httpapi.NewClient(url, "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()); err != nil { // opens the connection the POST reuses
		t.Fatalf("Ping: %v", err)
	}
	err = c.Create(t.Context(), "5", "1.000001")
	if got, want := core.ErrorCode(err), core.ETransient; got != want {
		t.Fatalf("code of %v=%q, want %q", err, got, want)
	}
	if got := addrs(); len(got) != 2 || got[0] != got[1] {
		t.Fatalf("requests came from %v, want a ping and a POST on one connection", got)
	}
	if _, err := store.Get(t.Context(), "5"); err != nil {
		t.Fatalf("Get(5) from the store: %v, want the record the POST wrote", err)
	}
}

// TestClientRefusedAfterWrite: the transport resends a GET (a request it
// may replay) when its kept-alive connection closes with no answer, and the
// resend's dial is refused. The request was written once, so the outcome
// is ETransient, not EUnavailable: a refused dial is "not applied" only if
// no attempt wrote a byte.
func TestClientRefusedAfterWrite(t *testing.T) {
	server := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{})
	url, addrs := dropAfterApply(t, server, 2)
	c, err := httpapi.NewClient(url, "node01", httpapi.ClientOptions{HTTP: newHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	_, err = c.Get(t.Context(), "5")
	if got, want := core.ErrorCode(err), core.ETransient; got != want {
		t.Fatalf("code of %v=%q, want %q", err, got, want)
	}
	if got := addrs(); len(got) != 2 || got[0] != got[1] {
		t.Fatalf("requests came from %v, want a ping and a GET on one connection", got)
	}
}

// TestClientFences checks that a Client fences while its node says it
// keeps tombstones, and says for how long: a rops server's answers do,
// whatever their status (here a server of protocol 1, which sent no
// Rops-Protocol); a bad value says it keeps none; an answer without the
// header, such as a proxy's 500, says nothing, and what the node said
// holds (TestClientCapabilitiesPinned has the other answers).
func TestClientFences(t *testing.T) {
	ttl := "10m0s"
	var mu sync.Mutex
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		v := ttl
		mu.Unlock()
		if v != "" {
			w.Header().Set("Rops-Tombstones", v)
		}
		answerWith(500, "InternalServerError due to Random Behavior", "")(w, r)
	}))
	c := mustClient(t, srv, "node01", newHTTPClient(t))
	if c.Fences() {
		t.Fatalf("Fences()=true before any answer, want false")
	}
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"10m0s", 10 * time.Minute},
		{"", 10 * time.Minute},
		{"1h", time.Hour},
		{"soon", 0},
		{"-1m", 0},
	} {
		mu.Lock()
		ttl = tc.header
		mu.Unlock()
		if err := c.Create(t.Context(), "5", "1.000001"); !errors.Is(err, core.ErrTransient) {
			t.Fatalf("Create: err=%v, want %v", err, core.ErrTransient)
		}
		if got, want := c.TombstoneTTL(), tc.want; got != want {
			t.Errorf("after Rops-Tombstones %q: TombstoneTTL()=%v, want %v", tc.header, got, want)
		}
		if got, want := c.Fences(), tc.want > 0; got != want {
			t.Errorf("after Rops-Tombstones %q: Fences()=%v, want %v", tc.header, got, want)
		}
	}
}

// TestServerTombstonesHeader checks which answers of a Server carry the
// retention of a node's tombstones: every answer for a node whose store
// keeps them, on any route, and none for a node whose store does not or
// for no node.
func TestServerTombstonesHeader(t *testing.T) {
	fencing := faults.New("node01", memory.NewWithOptions(memory.Options{TombstoneTTL: time.Hour}), faults.Options{})
	plain := faults.New("node02", memory.NewWithOptions(memory.Options{MaxTombstones: -1}), faults.Options{})
	srv := serve(t, httpapi.NewServer([]core.Node{fencing, plain}, httpapi.ServerOptions{}))
	for _, tc := range []struct {
		method, path, node, want string
	}{
		{"GET", "/v1/group/5", "node01", "1h0m0s"},
		{"GET", "/v1/ping", "node01", "1h0m0s"},
		{"GET", "/v1/stats", "node01", "1h0m0s"},
		{"PUT", "/v1/group", "node01", "1h0m0s"},
		{"GET", "/v1/nope", "node01", "1h0m0s"},
		{"GET", "/v1/group/5", "node02", ""},
		{"GET", "/v1/group/5", "node09", ""},
		{"GET", "/v1/stats", "", ""},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.node != "" {
			req.Header.Set("Node", tc.node)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Rops-Tombstones"); got != tc.want {
			t.Errorf("%s %s for %q: %d with Rops-Tombstones %q, want %q", tc.method, tc.path, tc.node, resp.StatusCode, got, tc.want)
		}
	}
}

// TestClientServerFaults classifies, through a real Server, the answers of a
// node that is down (a rops node's own 503: not applied) and of the faults
// that look like a proxy's or a crash (may have been applied), with every
// status a gateway fault draws.
func TestClientServerFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults faults.Faults
		want   core.Code
	}{
		{"down", faults.Faults{Down: true}, core.EUnavailable},
		{"gateway", faults.Faults{GatewayRate: 1}, core.ETransient},
		{"reset", faults.Faults{ResetRate: 1}, core.ETransient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := faults.New("node01", memory.New(), faults.Options{Faults: tc.faults})
			srv := serve(t, httpapi.NewServer([]core.Node{n}, httpapi.ServerOptions{}))
			c := mustClient(t, srv, "node01", newHTTPClient(t))
			for i := range 20 {
				id := core.GroupID(fmt.Sprint(i))
				err := c.Create(t.Context(), id, "1.000001")
				if got, want := core.ErrorCode(err), tc.want; got != want {
					t.Fatalf("Create(%s): code of %v=%q, want %q", id, err, got, want)
				}
			}
		})
	}
}
