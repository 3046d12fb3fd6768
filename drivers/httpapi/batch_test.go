package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// item is one item of a POST /batch body.
type item struct {
	Op        string `json:"op"`
	Node      string `json:"node,omitempty"`
	GroupID   string `json:"groupId"`
	Timestamp string `json:"timestamp,omitempty"`
	OlderThan string `json:"older_than,omitempty"`
	Fence     string `json:"fence,omitempty"`
}

// result is one result of a POST /batch answer, or a single answer put in
// the same terms.
type result struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body"`
}

// postBatch sends items to h in one POST /batch and returns the results.
func postBatch(t *testing.T, h http.Handler, items []item) []result {
	t.Helper()
	b, err := json.Marshal(map[string]any{"items": items})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/batch", strings.NewReader(string(b))))
	if w.Code != http.StatusOK {
		t.Fatalf("POST /v1/batch: %d %s", w.Code, w.Body)
	}
	var got struct{ Results []result }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("POST /v1/batch: %v in %s", err, w.Body)
	}
	if len(got.Results) != len(items) {
		t.Fatalf("POST /v1/batch: %d results for %d items", len(got.Results), len(items))
	}
	return got.Results
}

// single sends it to h as its own request and returns the answer as a
// batch result would hold it: a reset connection is status 0.
func single(t *testing.T, h http.Handler, it item) (res result) {
	t.Helper()
	method, target := http.MethodPost, "/v1/group"
	if it.Op != "create" {
		method = http.MethodDelete
	}
	if it.OlderThan != "" {
		target += "?older_than=" + url.QueryEscape(it.OlderThan)
	}
	r := httptest.NewRequest(method, target, strings.NewReader(`{"groupId": "`+it.GroupID+`"}`))
	for k, v := range map[string]string{"Node": it.Node, "Timestamp": it.Timestamp, "Rops-Fence": it.Fence} {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	defer func() {
		// A reset connection aborts a recorder's handler.
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			res = result{}
		}
	}()
	h.ServeHTTP(w, r)
	res = result{Status: w.Code, Body: w.Body.String()}
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		return res
	}
	for _, k := range []string{"Rops-Removed", "Rops-Held", "Rops-Fence", "Rops-Applied", "Retry-After"} {
		if v := w.Header().Get(k); v != "" {
			if res.Headers == nil {
				res.Headers = map[string]string{}
			}
			res.Headers[k] = v
		}
	}
	return res
}

// TestBatchAnswersAsSingle: each item of a batch gets the answer its
// single request gets from a server in the same state: a create applied,
// one fenced by a tombstone, one stale under a lower fence, one on a node
// that is down, a delete, a remove and a refused one.
func TestBatchAnswersAsSingle(t *testing.T) {
	const (
		t1, t2   = "1700000001.000001", "1700000002.000002"
		lo, hi   = "1700000001", "1700000003"
		removeAt = "1700000009"
	)
	items := []item{
		{Op: "create", Node: "node01", GroupID: "5", Timestamp: t1, Fence: hi},
		{Op: "create", Node: "node01", GroupID: "5", Timestamp: t2, Fence: lo},
		{Op: "create", Node: "node01", GroupID: "6", Timestamp: t1},
		{Op: "delete", Node: "node01", GroupID: "6", Timestamp: t1},
		{Op: "create", Node: "node01", GroupID: "6", Timestamp: t1},
		{Op: "create", Node: "node02", GroupID: "7", Timestamp: t1},
		{Op: "create", Node: "node01", GroupID: "8", Timestamp: t1},
		{Op: "remove", Node: "node01", GroupID: "8", OlderThan: removeAt},
		{Op: "remove", Node: "node01", GroupID: "5", OlderThan: lo},
		{Op: "delete", Node: "node01", GroupID: "9", Timestamp: t1},
		{Op: "create", Node: "node09", GroupID: "9"},
		{Op: "create", Node: "node01", GroupID: "9", Timestamp: "soon"},
	}
	newServer := func() http.Handler {
		ns := memoryNodes("node01", "node02")
		if err := ns[1].(*faults.Node).SetFaults(faults.Faults{Down: true}); err != nil {
			t.Fatal(err)
		}
		return httpapi.NewServer(ns, httpapi.ServerOptions{})
	}
	batch, one := newServer(), newServer()
	got := postBatch(t, batch, items)
	var statuses []int
	for i, it := range items {
		want := single(t, one, it)
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("item %d %+v: got %+v, want %+v as a single request", i, it, got[i], want)
		}
		statuses = append(statuses, got[i].Status)
	}
	if want := []int{201, 409, 201, 200, 409, 503, 201, 200, 409, 404, 406, 406}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	for i, k := range map[int]string{1: "Rops-Fence", 5: "Rops-Applied", 7: "Rops-Removed", 8: "Rops-Held"} {
		if got[i].Headers[k] == "" {
			t.Errorf("item %d: no %s in %+v", i, k, got[i])
		}
	}
}

// TestBatchFaultsPerItem: over nodes with every kind of answer-level fault
// and one seed, each item of a batch draws its own fault as its single
// request does: the results equal the single answers of a server whose
// nodes have the same seed.
func TestBatchFaultsPerItem(t *testing.T) {
	f := faults.Faults{ErrorRate: 0.15, AmbiguousRate: 0.15, ResetRate: 0.1, GatewayRate: 0.15}
	var stores []*memory.Store
	newServer := func() http.Handler {
		st := memory.New()
		stores = append(stores, st)
		n := faults.New("node01", st, faults.Options{Faults: f, Seed: 42})
		t.Cleanup(func() { _ = n.Close() })
		return httpapi.NewServer([]core.Node{n}, httpapi.ServerOptions{})
	}
	var items []item
	for i := range 120 {
		op := []string{"create", "delete", "create"}[i%3]
		items = append(items, item{Op: op, Node: "node01", GroupID: fmt.Sprint(i / 2), Timestamp: "1700000001.000001"})
	}
	batch, one := newServer(), newServer()
	got := postBatch(t, batch, items)
	seen := map[int]bool{}
	for i, it := range items {
		if want := single(t, one, it); !reflect.DeepEqual(got[i], want) {
			t.Errorf("item %d %+v: got %+v, want %+v as a single request", i, it, got[i], want)
		}
		seen[got[i].Status] = true
	}
	for _, s := range []int{0, 201, 408, 500, 502} {
		if !seen[s] {
			t.Errorf("no item answered %d: the seed draws too few faults (%v)", s, seen)
		}
	}
	// What the batch applied is what the single requests applied, read
	// from the stores themselves, not from the answers.
	batched, alone := listAll(t, stores[0]), listAll(t, stores[1])
	if len(batched) == 0 || !reflect.DeepEqual(batched, alone) {
		t.Errorf("the batch's store holds %v, the single requests' %v", batched, alone)
	}
}

// listAll returns every record st holds.
func listAll(t *testing.T, st *memory.Store) []core.Record {
	t.Helper()
	recs, err := st.List(t.Context(), "", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestBatchRefused: a batch that is not one answers 400 with a message
// saying why, and the original's imitation has no such route.
func TestBatchRefused(t *testing.T) {
	srv := httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{})
	many := `{"items": [` + strings.Repeat(`{"op": "create", "groupId": "5"},`, httpapi.MaxBatchItems) + `{"op": "create", "groupId": "5"}]}`
	for name, tc := range map[string]struct{ body, want string }{
		"not json":      {`{"items": `, "must be a JSON object"},
		"no items":      {`{"items": []}`, "no items"},
		"unknown field": {`{"items": [{"op": "create", "groupId": "5", "ttl": 1}]}`, "unknown field"},
		"unknown op":    {`{"items": [{"op": "get", "groupId": "5"}]}`, "item 0: op"},
		"no id":         {`{"items": [{"op": "create"}]}`, "item 0: no groupId"},
		"remove":        {`{"items": [{"op": "remove", "groupId": "5"}]}`, "needs older_than"},
		"too many":      {many, "at most"},
		"two values":    {`{"items": [{"op": "create", "groupId": "5"}]} {}`, "more than one"},
	} {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/batch", strings.NewReader(tc.body)))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want 400 saying %q", name, w.Code, w.Body, tc.want)
		}
	}
	orig := httpapi.NewServer(memoryNodes(names...), httpapi.ServerOptions{Original: true})
	w := httptest.NewRecorder()
	orig.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/batch", strings.NewReader(`{"items": [{"op": "create", "groupId": "5"}]}`)))
	if w.Code != http.StatusNotFound || w.Header().Get("Rops-Batch") != "" {
		t.Errorf("original: %d with Rops-Batch %q, want 404 and none", w.Code, w.Header().Get("Rops-Batch"))
	}
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/ping", nil))
	if got, want := w.Header().Get("Rops-Batch"), fmt.Sprint(httpapi.MaxBatchItems); got != want {
		t.Errorf("Rops-Batch=%q, want %q", got, want)
	}
}
