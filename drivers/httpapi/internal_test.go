package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/reliable-ops/rops/core"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, v string
		want    time.Duration
	}{
		{"none", "", 0},
		{"seconds", "3", 3 * time.Second},
		{"spaces", " 7 ", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"huge", "99999999999999", maxRetryAfter},
		{"date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"past date", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := parseRetryAfter(tc.v, now), tc.want; got != want {
				t.Fatalf("parseRetryAfter(%q)=%v, want %v", tc.v, got, want)
			}
		})
	}
}

// referenceDecode decodes a group request with encoding/json alone, as the
// spec reads: a JSON object whose groupId is a string or a number's text,
// and a string without the escape of a lone UTF-16 surrogate (README's
// input rules: 406, where encoding/json would read U+FFFD).
func referenceDecode(body []byte) (core.GroupID, bool) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return "", false
	}
	var s string
	switch v := m["groupId"].(type) {
	case string:
		// encoding/json reads a lone surrogate as U+FFFD: a string with
		// more of them than its JSON spells out had one.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			return "", false
		}
		if strings.Count(v, "\uFFFD") > spelledReplacements(raw["groupId"]) {
			return "", false
		}
		s = v
	case json.Number:
		s = v.String()
	default:
		return "", false
	}
	id, err := core.ParseGroupID(s)
	return id, err == nil
}

// spelledReplacements counts the U+FFFD that the JSON string raw spells
// out: as the character itself, or as its escape \ufffd in any case.
func spelledReplacements(raw []byte) int {
	n := bytes.Count(raw, []byte("\uFFFD"))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+6 <= len(raw) && raw[i+1] == 'u' && strings.EqualFold(string(raw[i+2:i+6]), "fffd") {
			n++
		}
		i++ // a backslash escapes the one character after it
	}
	return n
}

// FuzzDecodeGroupRequest checks the body decoder, fast path included,
// against encoding/json: both accept the same bodies and read the same id,
// and a refusal is a 400 or 406 with a message.
func FuzzDecodeGroupRequest(f *testing.F) {
	for _, s := range []string{
		`{"groupId": "5"}`, `{"groupId":"5"}`, ` { "groupId" : "a-b" } `, `{"groupId": 5}`, `{"groupId": -1.5e3}`,
		`{"groupId": "\u00e9"}`, `{"groupId": "a\"b"}`, `{"groupId": "a b"}`, `{"groupId": ""}`,
		`{"groupId": "5", "groupId": "6"}`, `{"groupid": "5"}`, `{"groupId": null}`, `{"groupId": true}`,
		`{"groupId": "5"} x`, `{"groupId": "5"`, `[]`, `null`, ``, "{\"groupId\": \"\xff\"}", `{"x": 1, "groupId": "7"}`,
		`{"groupId": "\ud800"}`, `{"groupId": "\ud83d\ude00"}`, `{"groupId": "\ufffd"}`, "{\"groupId\": \"\uFFFD\\\\ud800\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		id, herr := decodeGroupRequest(body)
		want, ok := referenceDecode(body)
		if herr != nil {
			if ok {
				t.Fatalf("decodeGroupRequest(%q) refused (%v); encoding/json reads id %q", body, herr, want)
			}
			if herr.status != http.StatusBadRequest && herr.status != http.StatusNotAcceptable || herr.message == "" {
				t.Fatalf("decodeGroupRequest(%q): refusal %d %q, want 400 or 406 with a message", body, herr.status, herr.message)
			}
			return
		}
		if !ok {
			t.Fatalf("decodeGroupRequest(%q)=%q; encoding/json refuses it", body, id)
		}
		if id != want {
			t.Fatalf("decodeGroupRequest(%q)=%q, encoding/json reads %q", body, id, want)
		}
	})
}

// FuzzAppendJSONString checks the hand-written JSON string encoder against
// encoding/json: the same string comes back.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "5", `a"b\c`, "\x00\x1f\x7f", "é日本", "\xff\xfe", "\u2028\u2029", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Fatalf("appendJSONString(%q)=%s: not JSON: %v", s, appendJSONString(nil, s), err)
		}
		ref, _ := json.Marshal(s)
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("appendJSONString(%q) decodes to %q, encoding/json's to %q", s, got, want)
		}
	})
}

func TestEscapeID(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{".", "%2E"}, {"..", "%2E%2E"}, {"...", "..."}, {"?", "%3F"}, {"%", "%25"}, {"#", "%23"}, {"é", "%C3%A9"}, {"a+b", "a+b"},
	} {
		if got := escapeID(tc.id); got != tc.want {
			t.Errorf("escapeID(%q)=%q, want %q", tc.id, got, tc.want)
		}
	}
}

// TestWriteTraceKept: a write trace serves another request only once no
// hook can fire any more for its own: every connection it got has ended
// its write. One of a context that traces already is never kept, as its
// hooks call the caller's too.
func TestWriteTraceKept(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hooks func(*httptrace.ClientTrace)
		wrote bool
		kept  bool
	}{
		{"no connection", func(*httptrace.ClientTrace) {}, false, true},
		{"written", func(h *httptrace.ClientTrace) {
			h.GotConn(httptrace.GotConnInfo{})
			h.WroteHeaderField("Host", []string{"x"})
			h.WroteHeaders()
			h.WroteRequest(httptrace.WroteRequestInfo{})
		}, true, true},
		{"still writing", func(h *httptrace.ClientTrace) {
			h.GotConn(httptrace.GotConnInfo{})
			h.WroteHeaderField("Host", []string{"x"})
		}, true, false},
		{"retried, first attempt still writing", func(h *httptrace.ClientTrace) {
			h.GotConn(httptrace.GotConnInfo{})
			h.GotConn(httptrace.GotConnInfo{})
			h.WroteRequest(httptrace.WroteRequestInfo{})
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, wt := traceWrites(t.Context())
			wt.newHeader()["Node"] = []string{"node01"}
			tc.hooks(httptrace.ContextClientTrace(ctx))
			if got, want := wt.wrote.Load(), tc.wrote; got != want {
				t.Fatalf("wrote=%v, want %v", got, want)
			}
			if got, want := wt.release(), tc.kept; got != want {
				t.Fatalf("kept for another request=%v, want %v", got, want)
			}
			if tc.kept {
				_, next := traceWrites(t.Context())
				defer next.release()
				if next.wrote.Load() || next.conns.Load() != 0 || next.ends.Load() != 0 {
					t.Fatal("a trace kept for another request still holds this one's writes")
				}
				if h := next.newHeader(); len(h) != 0 {
					t.Fatalf("a trace kept for another request gives it this one's header %v", h)
				}
			}
		})
	}
	t.Run("caller traces", func(t *testing.T) {
		var theirs bool
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{WroteHeaders: func() { theirs = true }})
		ctx, wt := traceWrites(ctx)
		httptrace.ContextClientTrace(ctx).WroteHeaders()
		if !theirs || !wt.wrote.Load() {
			t.Fatalf("caller's hook called=%v, ours=%v, want both", theirs, wt.wrote.Load())
		}
		if wt.release() {
			t.Fatal("a trace chained to the caller's was kept for another request")
		}
	})
}

// TestDuplicateCopiesNoRefusal: the copy of a duplicated batch leaves out
// the items the node refused as not applied, and keeps those that may have
// been (a 500 with no word, no answer at all).
func TestDuplicateCopiesNoRefusal(t *testing.T) {
	items := []batchItem{{Op: "create", GroupID: []byte(`"a"`)}, {Op: "create", GroupID: []byte(`"b"`)}, {Op: "delete", GroupID: []byte(`"c"`)}, {Op: "create", GroupID: []byte(`"d"`)}}
	results := []batchResult{
		{Status: http.StatusServiceUnavailable, Headers: map[string]string{headerApplied: "false", "Retry-After": "3"}},
		{Status: http.StatusCreated},
		{Status: http.StatusInternalServerError},
		{Status: 0},
	}
	var got []string
	for _, it := range notRefused(items, results) {
		got = append(got, string(it.GroupID))
	}
	if want := []string{`"b"`, `"c"`, `"d"`}; !slices.Equal(got, want) {
		t.Errorf("the duplicate carries %v, want %v: not a (refused as not applied)", got, want)
	}
}

// TestNewRequestAsStandard: the request a Client builds for a create or a
// delete on the URL it parsed once is the one http.NewRequestWithContext
// makes, byte for byte, sent again too (GetBody).
func TestNewRequestAsStandard(t *testing.T) {
	for _, base := range []string{"http://127.0.0.1:8080/v1", "http://node.example/v1/", "https://h:/api", "http://[::1]:9000/v1"} {
		for _, body := range [][]byte{groupBody("5"), {}, nil} {
			c, err := NewClient(base, "node01", ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			want, err := http.NewRequestWithContext(t.Context(), http.MethodPost, c.base+"/group", rd)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.newRequest(t.Context(), http.MethodPost, "/group", body)
			if err != nil {
				t.Fatal(err)
			}
			if got.Context() != want.Context() {
				t.Errorf("%s: the request's context is not the one given", base)
			}
			if g, w := wire(t, got), wire(t, want); g != w {
				t.Errorf("%s, body %q: sent\n%q\nwant\n%q", base, body, g, w)
			}
			if (got.GetBody == nil) != (want.GetBody == nil) {
				t.Fatalf("%s, body %q: GetBody %v, want %v", base, body, got.GetBody != nil, want.GetBody != nil)
			}
			if got.GetBody != nil {
				got.Body, _ = got.GetBody()
				want.Body, _ = want.GetBody()
				if g, w := wire(t, got), wire(t, want); g != w {
					t.Errorf("%s, body %q: sent again\n%q\nwant\n%q", base, body, g, w)
				}
			}
		}
	}
}

// wire returns what r sends as a client request.
func wire(t *testing.T, r *http.Request) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
