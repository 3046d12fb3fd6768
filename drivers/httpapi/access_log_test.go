package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

// textHandlers are the handlers of slog's text format that the access log
// is tested with: slog's own, and TextHandler, to which the access log
// writes its lines without a slog.Record.
var textHandlers = []struct {
	name string
	new  func(io.Writer, *slog.HandlerOptions) slog.Handler
}{
	{"slog", func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, o) }},
	{"TextHandler", func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return httpapi.NewTextHandler(w, o) }},
}

func TestAccessLog(t *testing.T) {
	for _, h := range textHandlers {
		t.Run(h.name, func(t *testing.T) { testAccessLog(t, h.new) })
	}
}

func testAccessLog(t *testing.T, newHandler func(io.Writer, *slog.HandlerOptions) slog.Handler) {
	var log bytes.Buffer
	s := httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{AccessLog: slog.New(newHandler(&log, nil)), Clock: clock, Tokens: core.NewTokenSource(clock)})
	for _, r := range []struct {
		method, target, remote, ua, referer string
	}{
		{"POST", "/v1/group", "192.0.2.1:1234", "rops/1", ""},
		{"GET", "/v1/group/9?x=1", "[::1]:80", `curl "evil"` + "\n", "http://example.com/"},
		{"GET", "/nope", "192.0.2.1:1234", "", ""},
		{"POST", "/v1/batch", "192.0.2.1:1234", "rops/1", ""},
	} {
		body := `{"groupId": "9"}`
		if r.target == "/v1/batch" {
			body = `{"items": [{"op": "create", "groupId": "7", "timestamp": "1.5"}, {"op": "delete", "groupId": "8", "timestamp": "1.5"}]}`
		}
		req := httptest.NewRequest(r.method, r.target, strings.NewReader(body))
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
	// The request line is the message; values are quoted and escaped as
	// needed, so that the user agent cannot break its line.
	want := `time=2023-11-14T22:13:20.000Z level=INFO msg="POST /v1/group HTTP/1.1" remote=192.0.2.1 status=201 bytes=8 referer="" user_agent=rops/1 duration=0s
time=2023-11-14T22:13:20.000Z level=INFO msg="GET /v1/group/9?x=1 HTTP/1.1" remote=::1 status=200 bytes=51 referer=http://example.com/ user_agent="curl \"evil\"\n" duration=0s
time=2023-11-14T22:13:20.000Z level=INFO msg="GET /nope HTTP/1.1" remote=192.0.2.1 status=404 bytes=158 referer="" user_agent="" duration=0s
time=2023-11-14T22:13:20.000Z level=INFO msg="POST /v1/batch HTTP/1.1" remote=192.0.2.1 status=200 bytes=164 referer="" user_agent=rops/1 duration=0s items=2
`
	if got := log.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
}

// TestAccessLogRemote: the remote field is the client's host without its
// port, IPv6 included, and an address without a port (as a proxy's
// middleware or a unix socket leaves it) is logged whole.
func TestAccessLogRemote(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::1]:8080", "::1"},
		{"[fe80::1%eth0]:80", "fe80::1%eth0"},
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"@", "@"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			var log bytes.Buffer
			s := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{AccessLog: slog.New(slog.NewJSONHandler(&log, nil))})
			req := httptest.NewRequest(http.MethodGet, "/nope", nil)
			req.RemoteAddr = tc.addr
			s.ServeHTTP(httptest.NewRecorder(), req)
			var rec struct{ Remote string }
			if err := json.Unmarshal(log.Bytes(), &rec); err != nil {
				t.Fatalf("log line %q: %v", log.String(), err)
			}
			if got, want := rec.Remote, tc.want; got != want {
				t.Fatalf("remote=%q, want %q", got, want)
			}
		})
	}
}

// pings sends n GET /v1/ping through hc to the server at url, one after
// the other.
func pings(t *testing.T, hc *http.Client, url string, n int) {
	for range n {
		resp, err := hc.Get(url + "/v1/ping")
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	}
}

// TestAccessLogConcurrent checks lines from concurrent requests over a real
// server stay whole, in the JSON format with every field. The requests are
// pings, which a log at DEBUG shows.
func TestAccessLogConcurrent(t *testing.T) {
	var log bytes.Buffer
	debug := slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := serve(t, httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{AccessLog: debug}))
	hc := newHTTPClient(t)
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { pings(t, hc, srv.URL, each) })
	}
	wg.Wait()
	srv.Close() // every handler has returned, and logged
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if got, want := len(lines), workers*each; got != want {
		t.Fatalf("%d log lines, want %d", got, want)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["time"])); err != nil {
			t.Fatalf("log line %q: time: %v", l, err)
		}
		delete(rec, "time")
		// slog writes a duration in JSON as its nanoseconds.
		if d, ok := rec["duration"].(float64); !ok || d < 0 {
			t.Fatalf("log line %q: duration is not a count of nanoseconds", l)
		}
		delete(rec, "duration")
		want := map[string]any{"level": "DEBUG", "msg": "GET /v1/ping HTTP/1.1", "remote": "127.0.0.1", "status": 200.0,
			"bytes": 5.0, "referer": "", "user_agent": "Go-http-client/1.1"}
		if !maps.Equal(rec, want) {
			t.Fatalf("log line %q is not as expected: want %v", l, want)
		}
	}
}

// TestTextHandlerConcurrent checks that a TextHandler's access log lines
// and slog's own records, written at once to one writer that is not safe
// for concurrent use, take turns: every line comes whole.
func TestTextHandlerConcurrent(t *testing.T) {
	var log bytes.Buffer
	l := slog.New(httpapi.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := serve(t, httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{AccessLog: l}))
	hc := newHTTPClient(t)
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { pings(t, hc, srv.URL, each) })
		wg.Go(func() {
			for range each {
				l.With("k", "v").Info("other")
			}
		})
	}
	wg.Wait()
	srv.Close() // every handler has returned, and logged
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if got, want := len(lines), 2*workers*each; got != want {
		t.Fatalf("%d log lines, want %d", got, want)
	}
	for _, line := range lines {
		_, rest, _ := strings.Cut(line, " ") // the time
		if rest != "level=INFO msg=other k=v" &&
			!strings.HasPrefix(rest, `level=DEBUG msg="GET /v1/ping HTTP/1.1" remote=127.0.0.1 status=200 bytes=5 referer="" user_agent=Go-http-client/1.1 duration=`) {
			t.Fatalf("log line %q is not whole", line)
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

// steppingClock is a clock that moves on by step each time it is read, so
// that a request's arrival and the end of its answer are step apart.
type steppingClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

func (c *steppingClock) Sleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

// TestAccessLogDuration checks the duration field, the time from the
// request's arrival to the end of its answer by the server's clock, in both
// of slog's formats: a Go duration in text, nanoseconds in JSON.
func TestAccessLogDuration(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    func(io.Writer) slog.Handler
		want string
	}{
		{"text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
			`time=2023-11-14T22:13:20.002Z level=INFO msg="POST /v1/group HTTP/1.1" remote=192.0.2.1 status=201 bytes=8 referer="" user_agent="" duration=2.5ms` + "\n"},
		{"TextHandler", func(w io.Writer) slog.Handler { return httpapi.NewTextHandler(w, nil) },
			`time=2023-11-14T22:13:20.002Z level=INFO msg="POST /v1/group HTTP/1.1" remote=192.0.2.1 status=201 bytes=8 referer="" user_agent="" duration=2.5ms` + "\n"},
		{"json", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
			`{"time":"2023-11-14T22:13:20.0025Z","level":"INFO","msg":"POST /v1/group HTTP/1.1","remote":"192.0.2.1","status":201,"bytes":8,"referer":"","user_agent":"","duration":2500000}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			c := &steppingClock{t: clock.t, step: 2500 * time.Microsecond}
			s := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{AccessLog: slog.New(tc.h(&log)), Clock: c, Tokens: core.NewTokenSource(clock)})
			req := httptest.NewRequest(http.MethodPost, "/v1/group", strings.NewReader(`{"groupId": "9"}`))
			req.RemoteAddr = "192.0.2.1:1234"
			s.ServeHTTP(httptest.NewRecorder(), req)
			if got, want := log.String(), tc.want; got != want {
				t.Fatalf("log:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestAccessLogProbes checks that the probes a health check sends every
// few seconds, GET or HEAD /ping, /healthz and /readyz, are logged at
// DEBUG, so a log at INFO leaves them out, and every other request at INFO.
func TestAccessLogProbes(t *testing.T) {
	requests := []struct {
		method, target string
		probe          bool
	}{
		{"GET", "/ping", true},
		{"GET", "/v1/ping", true},
		{"GET", "/ping/", true},
		{"HEAD", "/ping", true},
		{"GET", "/healthz", true},
		{"GET", "/v1/healthz", true},
		{"GET", "/readyz", true},
		{"GET", "/v1/readyz", true},
		{"POST", "/ping", false}, // 405: not a probe
		{"GET", "/v1/stats", false},
		{"GET", "/pingx", false},
		{"POST", "/v1/group", false},
	}
	for _, h := range textHandlers {
		for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
			t.Run(h.name+"/"+level.String(), func(t *testing.T) {
				var log bytes.Buffer
				l := slog.New(h.new(&log, &slog.HandlerOptions{Level: level}))
				s := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{AccessLog: l, Clock: clock})
				var want strings.Builder
				for _, r := range requests {
					s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.target, strings.NewReader(`{"groupId": "9"}`)))
					switch {
					case !r.probe:
						fmt.Fprintf(&want, "level=INFO msg=\"%s %s HTTP/1.1\"\n", r.method, r.target)
					case level == slog.LevelDebug:
						fmt.Fprintf(&want, "level=DEBUG msg=\"%s %s HTTP/1.1\"\n", r.method, r.target)
					}
				}
				var got strings.Builder
				for line := range strings.Lines(log.String()) {
					// Only the level and the request line: the rest is
					// TestAccessLog's.
					_, rest, _ := strings.Cut(line, " ")
					rest, _, _ = strings.Cut(rest, " remote=")
					got.WriteString(rest + "\n")
				}
				if got.String() != want.String() {
					t.Fatalf("log at %v:\n%s\nwant:\n%s", level, got.String(), want.String())
				}
			})
		}
	}
}
