package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/storetest"
)

// filled returns a node named node01 over a memory store holding n records
// g00000.. with tokens 1.000001...
func filled(tb testing.TB, n int) core.Node {
	tb.Helper()
	node := faults.New("node01", memory.New(), faults.Options{})
	for i := range n {
		if err := node.Create(context.Background(), core.GroupID(fmt.Sprintf("g%05d", i)), core.Token(fmt.Sprintf("1.%06d", i+1))); err != nil {
			tb.Fatal(err)
		}
	}
	return node
}

// counting counts the requests h serves.
type counting struct {
	h http.Handler
	n atomic.Int64
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.h.ServeHTTP(w, r)
}

// scanAll returns what c.Scan delivers after after.
func scanAll(t *testing.T, c *httpapi.Client, after core.GroupID) ([]core.Record, error) {
	t.Helper()
	var got []core.Record
	err := c.Scan(t.Context(), after, func(rec core.Record) bool {
		got = append(got, rec)
		return true
	})
	return got, err
}

// wantRecords checks that got is g<from>..g<to-1> as filled made them.
func wantRecords(t *testing.T, got []core.Record, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("%d records, want %d", len(got), to-from)
	}
	for i, rec := range got {
		want := core.Record{ID: core.GroupID(fmt.Sprintf("g%05d", from+i)), Token: core.Token(fmt.Sprintf("1.%06d", from+i+1))}
		if rec != want {
			t.Fatalf("record %d is %v, want %v", i, rec, want)
		}
	}
}

// TestScanOneRequest: a Client scans a node of many records in one request,
// whose answer the server writes as it reads.
func TestScanOneRequest(t *testing.T) {
	const n = 2500 // several of the server's flushes
	h := &counting{h: httpapi.NewServer([]core.Node{filled(t, n)}, httpapi.ServerOptions{})}
	c := mustClient(t, serve(t, h), "node01", newHTTPClient(t))
	got, err := scanAll(t, c, "")
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, got, 0, n)
	if got, want := h.n.Load(), int64(1); got != want {
		t.Errorf("%d requests, want %d", got, want)
	}
	// After an id, and stopped early.
	got, err = scanAll(t, c, "g01999")
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, got, 2000, n)
	k := 0
	if err := c.Scan(t.Context(), "", func(core.Record) bool { k++; return k < 10 }); err != nil || k != 10 {
		t.Fatalf("a Scan stopped after 10: %d records, %v", k, err)
	}
	// The connection is reused after a stream stopped early: the next
	// answer is not mixed with the rest of the last.
	got, err = scanAll(t, c, "g02490")
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, got, 2491, n)
}

// TestScanBadger: the same over a badger store, which streams from one
// snapshot.
func TestScanBadger(t *testing.T) {
	s, err := badger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	node := faults.New("node01", s, faults.Options{})
	for i := range 1200 {
		if err := node.Create(t.Context(), core.GroupID(fmt.Sprintf("g%05d", i)), core.Token(fmt.Sprintf("1.%06d", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	c := mustClient(t, serve(t, httpapi.NewServer([]core.Node{node}, httpapi.ServerOptions{})), "node01", newHTTPClient(t))
	got, err := scanAll(t, c, "g00099")
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, got, 100, 1200)
}

// TestScanFollowsPages: a server that does not know stream= (an older rops)
// answers pages; the Client follows their "next".
func TestScanFollowsPages(t *testing.T) {
	const n = 25
	srv := httpapi.NewServer([]core.Node{filled(t, n)}, httpapi.ServerOptions{})
	h := &counting{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		q.Del("stream")
		q.Set("limit", "4")
		r.URL.RawQuery = q.Encode()
		srv.ServeHTTP(w, r)
	})}
	c := mustClient(t, serve(t, h), "node01", newHTTPClient(t))
	got, err := scanAll(t, c, "")
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, got, 0, n)
	if got, want := h.n.Load(), int64(7); got != want {
		t.Errorf("%d requests, want %d (6 full pages of 4, then one of 1)", got, want)
	}
}

// TestScanNotStreamingNode: a server whose node cannot stream answers
// stream=1 with pages of MaxListLimit records, which the Client follows.
func TestScanNotStreamingNode(t *testing.T) {
	const n = httpapi.MaxListLimit + 5
	node := struct{ core.Node }{filled(t, n)} // no Scan
	h := &counting{h: httpapi.NewServer([]core.Node{node}, httpapi.ServerOptions{})}
	c := mustClient(t, serve(t, h), "node01", newHTTPClient(t))
	got, err := scanAll(t, c, "")
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, got, 0, n)
	if got, want := h.n.Load(), int64(2); got != want {
		t.Errorf("%d requests, want %d", got, want)
	}
}

// TestScanBrokenAnswer: an answer that breaks off, however it does, fails
// the Scan with a transient error that names the last record received; it
// never ends as if the records were all there.
func TestScanBrokenAnswer(t *testing.T) {
	const head = `{"groups": [{"groupId": "a", "timestamp": "1"}, {"groupId": "b", "timestamp": "2"}`
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{{
		name: "connection cut mid-answer",
		h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, head)
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		},
		want: `the listing broke off after id "b"`,
	}, {
		name: "answer ends early",
		h: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, head)
		},
		want: `the listing broke off after id "b": unexpected EOF`,
	}, {
		name: "answer ends after the records",
		h: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, head+`], "next": nu`)
		},
		want: `after id "b": unexpected EOF`,
	}, {
		name: "content length not reached",
		h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			_, _ = io.WriteString(w, head+`], "next": null}`)
		},
		want: `after id "b": unexpected EOF`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustClient(t, serve(t, tc.h), "node01", newHTTPClient(t))
			got, err := scanAll(t, c, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want one saying %q", err, tc.want)
			}
			if got, want := core.ErrorCode(err), core.ETransient; got != want {
				t.Errorf("code=%v, want %v", got, want)
			}
			if len(got) > 2 {
				t.Errorf("records=%v, want at most a and b", got)
			}
		})
	}
}

// failingScan is a node whose Scan fails after after records.
type failingScan struct {
	core.Node
	after int
	err   error
}

func (n failingScan) Scan(ctx context.Context, after core.GroupID, fn func(core.Record) bool) error {
	k := 0
	err := n.Node.(core.Scanner).Scan(ctx, after, func(rec core.Record) bool {
		if k == n.after {
			return false
		}
		k++
		return fn(rec)
	})
	if err != nil {
		return err
	}
	return n.err
}

// TestServerScanFails: a store that fails before any record is answered
// with an error status; one that fails mid-way cuts the answer off, which
// fails the client's Scan and Stats rather than giving a short count.
func TestServerScanFails(t *testing.T) {
	internal := core.Errorf(core.EInternal, "badger: the disk is on fire")
	t.Run("before any record", func(t *testing.T) {
		node := failingScan{Node: filled(t, 10), after: 0, err: internal}
		c := mustClient(t, serve(t, httpapi.NewServer([]core.Node{node}, httpapi.ServerOptions{})), "node01", newHTTPClient(t))
		_, err := scanAll(t, c, "")
		if status, _ := httpapi.HTTPStatus(err); status != http.StatusInternalServerError || !strings.Contains(err.Error(), "the disk is on fire") {
			t.Fatalf("err=%v, want a 500 saying why", err)
		}
	})
	t.Run("mid-way", func(t *testing.T) {
		node := failingScan{Node: filled(t, 3000), after: 2000, err: internal}
		srv := serve(t, httpapi.NewServer([]core.Node{node}, httpapi.ServerOptions{}))
		c := mustClient(t, srv, "node01", newHTTPClient(t))
		got, err := scanAll(t, c, "")
		if err == nil || !strings.Contains(err.Error(), "the listing broke off after id") {
			t.Fatalf("err=%v after %d records, want the broken stream", err, len(got))
		}
		st, err := newCoordinator(t, []core.Node{c}).Stats(t.Context(), core.StatsOptions{})
		if err == nil || !strings.Contains(err.Error(), "cannot list the records of node01") {
			t.Fatalf("Stats=%+v, %v; want it to fail", st, err)
		}
	})
}

// newCoordinator returns a coordinator over ns that retries twice, at once.
func newCoordinator(t *testing.T, ns []core.Node) *core.Coordinator {
	t.Helper()
	c, err := core.New(core.Config{Nodes: ns, NewBackoff: func() core.Backoff { return core.Exponential(0, 0, 2, nil) }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestListStreamQuery: stream= and limit= as the server reads them.
func TestListStreamQuery(t *testing.T) {
	srv := serve(t, httpapi.NewServer([]core.Node{filled(t, 12)}, httpapi.ServerOptions{}))
	for _, tc := range []struct {
		query  string
		status int
		body   string // a substring
	}{
		{"stream=1&limit=3", 200, `{"groupId": "g00002", "timestamp": "1.000003"}], "next": "g00002"}`},
		{"stream=1&after=g00009", 200, `{"groups": [{"groupId": "g00010", "timestamp": "1.000011"}, {"groupId": "g00011", "timestamp": "1.000012"}], "next": null}`},
		{"stream=1&limit=20000", 200, `"next": null}`},
		{"stream=1&after=g00011", 200, `{"groups": [], "next": null}`},
		{"stream=2", 406, `invalid stream \"2\": give stream=1`},
		{"stream=1&limit=0", 406, `invalid limit \"0\"`},
		{"limit=20000", 406, `invalid limit \"20000\"`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/groups?"+tc.query, nil)
			req.Header.Set("node", "node01")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, b, tc.status, tc.body)
			}
		})
	}
}

// TestDecodeListing: the client reads any JSON of a listing's shape, as
// encoding/json would, and refuses the rest; a body cut anywhere fails.
func TestDecodeListing(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []core.Record // nil: an error
		next       core.GroupID
	}{
		{"compact", `{"groups":[{"groupId":"a","timestamp":"1"},{"groupId":"b","timestamp":"2"}],"next":"b"}`,
			[]core.Record{{ID: "a", Token: "1"}, {ID: "b", Token: "2"}}, "b"},
		{"spaced, keys reordered", " {\n \"next\" : null ,\t\"groups\" : [ { \"timestamp\" : \"1\" , \"groupId\" : \"a\" } ] } \r\n",
			[]core.Record{{ID: "a", Token: "1"}}, ""},
		{"escapes", `{"groups": [{"groupId": "a\"b\\c\u00e9\/\n", "timestamp": "1"}], "next": null}`,
			[]core.Record{{ID: "a\"b\\cé/\n", Token: "1"}}, ""},
		{"a string ending in an escaped backslash", `{"groups": [{"groupId": "a\\", "timestamp": "1"}], "next": null}`,
			[]core.Record{{ID: `a\`, Token: "1"}}, ""},
		{"unknown keys skipped", `{"v": [1, -2.5e3, true, false, null, {"x": ["y", {}]}], "groups": [{"groupId": "a", "extra": {"k": [1]}, "timestamp": null}], "next": null}`,
			[]core.Record{{ID: "a"}}, ""},
		{"no records", `{"groups": [], "next": null}`, []core.Record{}, ""},
		{"null records", `{"groups": null, "next": null}`, []core.Record{}, ""},
		{"record without groupId", `{"groups": [{"timestamp": "1"}], "next": null}`, nil, ""},
		{"empty groupId", `{"groups": [{"groupId": "", "timestamp": "1"}], "next": null}`, nil, ""},
		{"numeric groupId", `{"groups": [{"groupId": 5, "timestamp": "1"}], "next": null}`, nil, ""},
		{"trailing garbage", `{"groups": [], "next": null} x`, nil, ""},
		{"groups twice", `{"groups": [{"groupId": "a"}], "groups": [], "next": null}`, nil, ""},
		{"missing comma", `{"groups": [{"groupId": "a"} {"groupId": "b"}], "next": null}`, nil, ""},
		{"control character in a string", "{\"groups\": [{\"groupId\": \"a\x01\"}], \"next\": null}", nil, ""},
		{"not an object", `[1, 2]`, nil, ""},
		{"html", `<html>`, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := httpapi.DecodeListing(strings.NewReader(tc.body))
			if tc.want == nil {
				if err == nil {
					t.Fatalf("decoded %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("err=%v", err)
			}
			if !slices.Equal(got, tc.want) || next != tc.next {
				t.Fatalf("got %q next %q, want %q next %q", got, next, tc.want, tc.next)
			}
			for cut := range len(strings.TrimRight(tc.body, " \r\n")) {
				if got, _, err := httpapi.DecodeListing(strings.NewReader(tc.body[:cut])); err == nil {
					t.Fatalf("cut after %d bytes: decoded %v, want an error", cut, got)
				}
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing, so that a benchmark of a
// handler measures the handler.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { d.n += int64(len(b)); return len(b), nil }

// BenchmarkListStream is the server's cost of GET /groups?stream=1 over a
// node of 100,000 records in memory, per record, written as read.
func BenchmarkListStream(b *testing.B) {
	const n = 100_000
	srv := httpapi.NewServer([]core.Node{filled(b, n)}, httpapi.ServerOptions{})
	req, _ := http.NewRequest(http.MethodGet, "/v1/groups?stream=1", nil)
	req.Header.Set("node", "node01")
	b.ReportAllocs()
	for b.Loop() {
		w := &discard{h: http.Header{}}
		srv.ServeHTTP(w, req)
		if w.n < n*40 {
			b.Fatalf("%d bytes written", w.n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// listing returns the answer to GET /groups?stream=1 over n records.
func listing(b *testing.B, n int) []byte {
	b.Helper()
	srv := httpapi.NewServer([]core.Node{filled(b, n)}, httpapi.ServerOptions{})
	req, _ := http.NewRequest(http.MethodGet, "/v1/groups?stream=1", nil)
	req.Header.Set("node", "node01")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	return w.Body.Bytes()
}

// BenchmarkDecodeListing is the client's cost of reading a listing of
// 100,000 records as it arrives, against the standard library's streaming
// decoders on the same listing (stdDecoders) and encoding/json's of the
// whole answer at once (the client's before streaming).
func BenchmarkDecodeListing(b *testing.B) {
	const n = 100_000
	body := listing(b, n)
	b.Run("stream", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			recs, _, err := httpapi.DecodeListingLarge(bytes.NewReader(body))
			if err != nil || recs != n {
				b.Fatalf("%d records, %v", recs, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
	for _, bc := range stdDecoders {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				recs := 0
				_, err := bc.decode(bytes.NewReader(body), func(core.Record) bool { recs++; return true })
				if err != nil || recs != n {
					b.Fatalf("%d records, %v", recs, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var page struct {
				Groups []core.Record `json:"groups"`
			}
			if err := json.Unmarshal(body, &page); err != nil || len(page.Groups) != n {
				b.Fatalf("%d records, %v", len(page.Groups), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
}

// BenchmarkScanLoopback is a Client's Scan of 100,000 records over loopback
// HTTP, server included, against List's pages of core.DefaultPageSize.
func BenchmarkScanLoopback(b *testing.B) {
	const n = 100_000
	c := mustClient(b, serve(b, httpapi.NewServer([]core.Node{filled(b, n)}, httpapi.ServerOptions{})), "node01", newHTTPClient(b))
	storetest.BenchmarkScanList(b, c, n)
}

// FuzzDecodeListing: whatever the client decodes as a listing is JSON that
// encoding/json decodes to the same records.
func FuzzDecodeListing(f *testing.F) {
	for _, s := range []string{
		`{"groups": [{"groupId": "a", "timestamp": "1"}], "next": "a"}`,
		`{"groups":[],"next":null}`,
		`{"x": [1, {"y": null}], "groups": [{"groupId": "a\u00e9\\", "timestamp": null, "z": -1.5e3}], "next": null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		recs, next, err := httpapi.DecodeListing(strings.NewReader(body))
		if err != nil {
			return
		}
		var v struct {
			Groups []struct {
				GroupID   string  `json:"groupId"`
				Timestamp *string `json:"timestamp"`
			} `json:"groups"`
			Next *string `json:"next"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("decoded %q as %v, but encoding/json refuses it: %v", body, recs, err)
		}
		want := []core.Record{}
		for _, g := range v.Groups {
			rec := core.Record{ID: core.GroupID(g.GroupID)}
			if g.Timestamp != nil {
				rec.Token = core.Token(*g.Timestamp)
			}
			want = append(want, rec)
		}
		wantNext := core.GroupID("")
		if v.Next != nil {
			wantNext = core.GroupID(*v.Next)
		}
		if !slices.Equal(recs, want) || next != wantNext {
			t.Fatalf("decoded %q as %q next %q, encoding/json as %q next %q", body, recs, next, want, wantNext)
		}
	})
}
