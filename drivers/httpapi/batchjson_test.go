package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
)

// batchBodies are POST /batch bodies for the fast path's tests: the plain
// ones a Client sends, and valid ones that leave the fast path.
var batchBodies = []string{
	`{"wait":"1.8s","items":[{"op":"create","node":"node01","groupId":"5","timestamp":"1700000000.000001","older_than":"","fence":""}]}`,
	`{"items": [{"op": "remove", "node": "node02", "groupId": "5", "older_than": "1700000000.000002", "fence": "1700000001"}, {"op": "delete", "groupId": "6"}]}`,
	` { "items" : [ ] } `,
	`{}`,
	`{"items": [{"op": "create", "groupId": 5}]}`,
	`{"items": [{"op": "create", "groupId": "\u0035"}]}`,
	`{"items": [{"OP": "create", "groupId": "5"}]}`,
	`{"items": [{"op": "create", "op": "delete", "groupId": "5"}]}`,
	`{"items": [{"op": "create", "groupId": "5"}], "wait": null}`,
	`{"items": [{"op": "crÃ©ate", "groupId": "5"}]}`,
	`{"items": [{"op": "create", "groupId": "5"}]} {}`,
	`{"items": [{"op": "create", "groupId": "5", "extra": 1}]}`,
}

// batchAnswers are POST /batch answers for the fast path's tests.
var batchAnswers = []string{
	`{"results":[{"status":201,"body":"{\"groupId\":\"5\",\"timestamp\":\"1700000000.000001\"}"},{"status":409,"headers":{"Rops-Applied":"false","Retry-After":"1"},"body":"{\"error\": \"a\\nb\\\\c\/d\\te\"}\n"},{"status":0,"body":""}]}`,
	`{"results": []}`,
	`{"results":[{"status":201,"body":"\u00e9"}]}`,
	`{"results":[{"status":-1,"body":""}]}`,
	`{"results":[{"status":1e2,"body":""}]}`,
	`{"results":[{"status":0201,"body":""}]}`,
	`{"results":[{"status":201,"headers":null,"body":""}]}`,
	`{"results":[{"status":201,"body":"x","extra":true}]}`,
	`{"results":[{"status":201,"body":"\x"}]}`,
}

// TestScanBatchPlain: the bodies a Client sends take the fast path.
func TestScanBatchPlain(t *testing.T) {
	for _, body := range batchBodies[:4] {
		if _, _, ok := scanBatch([]byte(body)); !ok {
			t.Errorf("%s: not taken by the fast path", body)
		}
	}
	if _, ok := scanResults([]byte(batchAnswers[0])); !ok {
		t.Errorf("%s: not taken by the fast path", batchAnswers[0])
	}
}

// FuzzBatchFastPath: where the fast path takes a body or an answer, it
// decodes it exactly as encoding/json does, and encoding/json takes it too.
func FuzzBatchFastPath(f *testing.F) {
	for _, s := range batchBodies {
		f.Add(s)
	}
	for _, s := range batchAnswers {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if items, wait, ok := scanBatch([]byte(s)); ok {
			var b struct {
				Items []batchItem `json:"items"`
				Wait  string      `json:"wait"`
			}
			d := json.NewDecoder(bytes.NewReader([]byte(s)))
			d.DisallowUnknownFields()
			if err := d.Decode(&b); err != nil || d.More() {
				t.Fatalf("%q: the fast path took it, encoding/json refused it: %v (more: %v)", s, err, d.More())
			}
			if len(items) != len(b.Items) || wait != b.Wait || len(items) > 0 && !reflect.DeepEqual(items, b.Items) {
				t.Fatalf("%q: fast path %+v %q, encoding/json %+v %q", s, items, wait, b.Items, b.Wait)
			}
		}
		if results, ok := scanResults([]byte(s)); ok {
			var ans struct {
				Results []batchResult `json:"results"`
			}
			if err := json.Unmarshal([]byte(s), &ans); err != nil {
				t.Fatalf("%q: the fast path took it, encoding/json refused it: %v", s, err)
			}
			if len(results) != len(ans.Results) || len(results) > 0 && !reflect.DeepEqual(results, ans.Results) {
				t.Fatalf("%q: fast path %+v, encoding/json %+v", s, results, ans.Results)
			}
		}
	})
}

// BenchmarkBatchJSON decodes a body of 128 creates and an answer of 128
// results, by the fast path and by encoding/json.
func BenchmarkBatchJSON(b *testing.B) {
	items := make([]batchItem, 128)
	results := make([]batchResult, 128)
	for i := range items {
		items[i] = batchItem{Op: "create", Node: "node01", GroupID: json.RawMessage(`"` + string(rune('a'+i%26)) + `12345"`), Timestamp: "1700000000.000001"}
		results[i] = batchResult{Status: 201, Body: `{"groupId":"a12345","timestamp":"1700000000.000001"}` + "\n"}
	}
	body, _ := json.Marshal(struct {
		Wait  string      `json:"wait"`
		Items []batchItem `json:"items"`
	}{"1.8s", items})
	answer, _ := json.Marshal(struct {
		Results []batchResult `json:"results"`
	}{results})
	b.Run("body/fast", func(b *testing.B) {
		for b.Loop() {
			if _, _, ok := scanBatch(body); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("body/encoding-json", func(b *testing.B) {
		for b.Loop() {
			var v struct {
				Items []batchItem `json:"items"`
				Wait  string      `json:"wait"`
			}
			d := json.NewDecoder(bytes.NewReader(body))
			d.DisallowUnknownFields()
			if err := d.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("results/fast", func(b *testing.B) {
		for b.Loop() {
			if _, ok := scanResults(answer); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("results/encoding-json", func(b *testing.B) {
		for b.Loop() {
			var v struct {
				Results []batchResult `json:"results"`
			}
			if err := json.Unmarshal(answer, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzAppendBatchBody: a body appendBatchBody writes decodes, by
// decodeBatch, into the items its calls stand for: a create, and a delete
// or a remove (kind).
func FuzzAppendBatchBody(f *testing.F) {
	f.Add("5", "1700000000.000001", "", false)
	f.Add("a\"b\\c\x00é\xff", "1700000000.000002", "1700000001", true)
	f.Add("<&>\u2028", "1700000000.000003", "1700000002", false)
	f.Fuzz(func(t *testing.T, id, token, fence string, remove bool) {
		if id == "" || token == "" || !validItemValue(token) || !validItemValue(fence) {
			return // the coordinator sends no empty id or token, and tokens that are header values
		}
		cls := []*call{
			{o: opCreate, id: core.GroupID(id), token: core.Token(token), fence: core.Token(fence)},
			{o: opDelete, remove: remove, id: core.GroupID(id + "x"), token: core.Token(token)},
		}
		body := appendBatchBody(nil, "1.8s", cls)
		items, wait, herr := decodeBatch(body)
		if herr != nil {
			t.Fatalf("%s: refused: %s", body, herr.message)
		}
		if wait != 1800*time.Millisecond || len(items) != len(cls) {
			t.Fatalf("%s: wait %v, %d items, want 1.8s and %d", body, wait, len(items), len(cls))
		}
		for i, cl := range cls {
			it := items[i]
			var gotID, wantID string
			if err := json.Unmarshal(it.GroupID, &gotID); err != nil {
				t.Fatalf("%s: item %d: groupId %s: %v", body, i, it.GroupID, err)
			}
			ref, _ := json.Marshal(string(cl.id)) // invalid UTF-8 becomes U+FFFD, as encoding/json has it
			_ = json.Unmarshal(ref, &wantID)
			wantOp, gotToken := "create", it.Timestamp
			switch {
			case cl.remove:
				wantOp, gotToken = "remove", it.OlderThan
			case cl.o == opDelete:
				wantOp = "delete"
			}
			if gotID != wantID || it.Op != wantOp || gotToken != string(cl.token) || it.Fence != string(cl.fence) {
				t.Fatalf("%s: item %d decodes to %+v (id %q), want the call %+v", body, i, it, gotID, *cl)
			}
		}
	})
}

// FuzzAppendResults: the answer appendResults writes decodes, by
// encoding/json and by the Client's decodeResults, into the results it was
// given (strings as encoding/json has them: invalid UTF-8 becomes U+FFFD).
func FuzzAppendResults(f *testing.F) {
	f.Add(uint16(201), "1700000000.000001", "CREATED\n")
	f.Add(uint16(409), "a\"b\\c\x00é\xff", `{"error": "<&>"}`)
	f.Fuzz(func(t *testing.T, status uint16, held, body string) {
		results := []batchResult{
			{Status: int(status), Body: body},
			{Status: 409, Headers: map[string]string{headerHeld: held, "Retry-After": "1"}, Body: body},
			{},
		}
		out := appendResults(nil, results)
		norm := func(s string) string {
			b, _ := json.Marshal(s)
			var v string
			_ = json.Unmarshal(b, &v)
			return v
		}
		want := []batchResult{
			{Status: int(status), Body: norm(body)},
			{Status: 409, Headers: map[string]string{headerHeld: norm(held), "Retry-After": "1"}, Body: norm(body)},
			{},
		}
		var ans struct {
			Results []batchResult `json:"results"`
		}
		if err := json.Unmarshal(out, &ans); err != nil || !reflect.DeepEqual(ans.Results, want) {
			t.Fatalf("%s: encoding/json decodes %+v (%v), want %+v", out, ans.Results, err, want)
		}
		if got, err := decodeResults(out); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: decodeResults gives %+v (%v), want %+v", out, got, err, want)
		}
	})
}
