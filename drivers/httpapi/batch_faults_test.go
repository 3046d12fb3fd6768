package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// batchBody is a POST /batch body of items, with wait if not "".
func batchBody(t *testing.T, wait string, items ...item) string {
	t.Helper()
	body := map[string]any{"items": items}
	if wait != "" {
		body["wait"] = wait
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// batchResults decodes the results of a POST /batch answer.
func batchResults(t *testing.T, code int, text string) []result {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("POST /v1/batch: %d %s", code, text)
	}
	var got struct{ Results []result }
	if err := json.Unmarshal([]byte(text), &got); err != nil {
		t.Fatalf("POST /v1/batch: %v in %s", err, text)
	}
	return got.Results
}

// sendBatch sends body to h as POST /batch for node01 under ctx, and
// returns the answer's status and body, or reset if the connection was
// reset with no answer.
func sendBatch(t *testing.T, ctx context.Context, h http.Handler, body string) (code int, text string, reset bool) {
	t.Helper()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/batch", strings.NewReader(body))
	r.Header.Set("Node", "node01")
	w := httptest.NewRecorder()
	defer func() {
		// A reset connection aborts a recorder's handler.
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			code, text, reset = 0, "", true
		}
	}()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String(), false
}

// call is a call that reached a recordStore.
type call struct {
	op string
	id core.GroupID
	at time.Time
}

// recordStore is a memory store that records the creates that reach it,
// and when.
type recordStore struct {
	*memory.Store
	mu    sync.Mutex
	calls []call
}

func (s *recordStore) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	s.mu.Lock()
	s.calls = append(s.calls, call{"create", id, time.Now()})
	s.mu.Unlock()
	return s.Store.Create(ctx, id, token)
}

// creates returns the ids of the creates that reached s at, in order.
func (s *recordStore) creates(at time.Time) []core.GroupID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []core.GroupID
	for _, c := range s.calls {
		if c.at.Equal(at) {
			ids = append(ids, c.id)
		}
	}
	slices.Sort(ids)
	return ids
}

// hangStore is a memory store on which a create of the group hang waits
// until its context ends: an item that hangs, among others that do not.
type hangStore struct {
	*memory.Store
	hang core.GroupID
}

func (s hangStore) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	if id == s.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Store.Create(ctx, id, token)
}

// hangServer serves node01 on a memory store on which a create of hang
// waits until its context ends, and returns the server and the store.
func hangServer(t *testing.T, hang core.GroupID) (http.Handler, *memory.Store) {
	t.Helper()
	store := memory.New()
	node := faults.New("node01", hangStore{store, hang}, faults.Options{})
	t.Cleanup(func() { _ = node.Close() })
	srv := httpapi.NewServer([]core.Node{node}, httpapi.ServerOptions{})
	t.Cleanup(srv.Close) // in a synctest bubble, its workers must end with it
	return srv, store
}

// TestBatchWaitAnswersTheOthers: a batch whose wait ends while one item
// hangs answers the others with their own results, the hung one with
// status 0 (no answer), by the end of the wait: the items run
// concurrently, not in turn.
func TestBatchWaitAnswersTheOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, store := hangServer(t, "9")
		const ts = "1700000001.000001"
		body := batchBody(t, "1.5s",
			item{Op: "create", GroupID: "5", Timestamp: ts},
			item{Op: "create", GroupID: "9", Timestamp: ts},
			item{Op: "create", GroupID: "6", Timestamp: ts},
			item{Op: "delete", GroupID: "5", Timestamp: ts},
			item{Op: "create", GroupID: "9", Timestamp: ts},
		)
		start := time.Now()
		code, text := do(t, t.Context(), srv, "POST", "/v1/batch", "node01", body)
		got := batchResults(t, code, text)
		if took, wait := time.Since(start), 1500*time.Millisecond; took > wait {
			t.Errorf("the batch answered after %v, past its wait of %v", took, wait)
		}
		var statuses []int
		for _, r := range got {
			statuses = append(statuses, r.Status)
		}
		// The second create of 9 waits for the first, as its client would.
		if want := []int{201, 0, 201, 200, 0}; !reflect.DeepEqual(statuses, want) {
			t.Fatalf("statuses %v, want %v", statuses, want)
		}
		if !reflect.DeepEqual(got[1], result{}) {
			t.Errorf("the hung item's result is %+v, want none", got[1])
		}
		if recs := listAll(t, store); !reflect.DeepEqual(recs, []core.Record{{ID: "6", Token: ts}}) {
			t.Errorf("the store holds %v, want 6 alone: 5 created, then deleted", recs)
		}
	})
}

// TestBatchWaitRefused: a wait that is not a duration from 0 to
// MaxBatchWait is refused with 400 naming it; other unknown fields still
// are too.
func TestBatchWaitRefused(t *testing.T) {
	srv := httpapi.NewServer(memoryNodes("node01"), httpapi.ServerOptions{})
	for _, wait := range []string{`"soon"`, `"-1s"`, `"11m"`, `1.5`} {
		body := `{"items": [{"op": "create", "groupId": "5"}], "wait": ` + wait + `}`
		code, text := do(t, t.Context(), srv, "POST", "/v1/batch", "", body)
		if code != http.StatusBadRequest || !strings.Contains(text, "wait") || !strings.Contains(text, "1.5s") {
			t.Errorf("wait %s: %d %s, want 400 naming wait with an example", wait, code, text)
		}
	}
	code, text := do(t, t.Context(), srv, "POST", "/v1/batch", "", `{"items": [{"op": "create", "groupId": "5"}], "wait": "1s", "ttl": "1s"}`)
	if code != http.StatusBadRequest || !strings.Contains(text, "unknown field") {
		t.Errorf("unknown field beside wait: %d %s, want 400", code, text)
	}
	for _, wait := range []string{"0s", "10m"} {
		code, text := do(t, t.Context(), srv, "POST", "/v1/batch", "", batchBody(t, wait, item{Op: "create", GroupID: wait, Timestamp: "1.000001"}))
		if got := batchResults(t, code, text); got[0].Status != http.StatusCreated {
			t.Errorf("wait %s: %+v, want 201", wait, got[0])
		}
	}
}

// seedFor returns a seed whose first batch meets want at BatchRate 1.
func seedFor(t *testing.T, want faults.BatchFault) uint64 {
	t.Helper()
	for seed := range uint64(1000) {
		n := faults.New("node01", memory.New(), faults.Options{Faults: faults.Faults{BatchRate: 1}, Seed: seed})
		got := n.BatchFault(t.Context())
		_ = n.Close()
		if got == want {
			return seed
		}
	}
	t.Fatalf("no seed below 1000 draws %v", want)
	return 0
}

// batchFaultServer serves node01 over a memory store with BatchRate 1, and
// a seed whose first batch meets bf; its late delay is delay.
func batchFaultServer(t *testing.T, bf faults.BatchFault, delay time.Duration) (http.Handler, *faults.Node, *recordStore) {
	t.Helper()
	seed := seedFor(t, bf)
	store := &recordStore{Store: memory.New()}
	node := faults.New("node01", store, faults.Options{Faults: faults.Faults{BatchRate: 1, LateDelay: faults.Duration(delay)}, Seed: seed})
	t.Cleanup(func() { _ = node.Close() })
	srv := httpapi.NewServer([]core.Node{node}, httpapi.ServerOptions{})
	t.Cleanup(srv.Close) // in a synctest bubble, its workers must end with it
	return srv, node, store
}

// The items of the batch-level fault tests: 5 under fence1, 6 under none.
const batchTS = "1700000001.000001"

var batchItems = []item{
	{Op: "create", GroupID: "5", Timestamp: batchTS, Fence: fence1},
	{Op: "create", GroupID: "6", Timestamp: batchTS},
}

// TestBatchLost: a batch lost before is not applied and not answered; one
// lost after is applied whole and not answered; neither runs again later.
func TestBatchLost(t *testing.T) {
	for _, tc := range []struct {
		fault faults.BatchFault
		want  []core.Record
	}{
		{faults.BatchLostBefore, nil},
		{faults.BatchLostAfter, []core.Record{{ID: "5", Token: batchTS}, {ID: "6", Token: batchTS}}},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			srv, node, store := batchFaultServer(t, tc.fault, time.Second)
			if code, text, reset := sendBatch(t, t.Context(), srv, batchBody(t, "", batchItems...)); !reset {
				t.Fatalf("answered %d %s, want the connection reset", code, text)
			}
			if err := node.Settle(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := listAll(t, store.Store); len(got)+len(tc.want) > 0 && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("the store holds %v, want %v", got, tc.want)
			}
			if got, want := len(store.calls), len(tc.want); got != want {
				t.Fatalf("%d creates reached the store, want %d", got, want)
			}
		})
	}
}

// TestBatchLate: a late batch answers nothing until its client gives up,
// and is applied whole LateDelay after it came, each item checked against
// its own fence when it lands: 5, whose fence a later holder passed
// meanwhile, is refused.
func TestBatchLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 3 * time.Second
		srv, node, store := batchFaultServer(t, faults.BatchLate, delay)
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		done := make(chan string, 1)
		go func() {
			_, text, _ := sendBatch(t, ctx, srv, batchBody(t, "", batchItems...))
			done <- text
		}()
		synctest.Wait()
		select {
		case text := <-done:
			t.Fatalf("the late batch answered %q before its client gave up", text)
		default:
		}
		cancel()
		if text := <-done; text != "" {
			t.Fatalf("the late batch answered %q, want nothing", text)
		}
		if got := listAll(t, store.Store); len(got) != 0 {
			t.Fatalf("the store holds %v before the delay, want nothing", got)
		}
		// A later holder of 5 reads it under a greater fence.
		if _, err := store.Get(core.WithFence(t.Context(), fence2), "5"); !errors.Is(err, core.ErrNotFound) {
			t.Fatal(err)
		}
		if err := node.Settle(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, want := store.creates(start.Add(delay)), []core.GroupID{"5", "6"}; !reflect.DeepEqual(got, want) || len(store.calls) != len(want) {
			t.Errorf("creates %v reached the store %v after the batch came, want %v and no other", got, delay, want)
		}
		if got, want := listAll(t, store.Store), []core.Record{{ID: "6", Token: batchTS}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("the store holds %v, want %v: 5 fenced off, 6 applied", got, want)
		}
	})
}

// TestBatchDuplicate: a duplicated batch is answered as usual, and every
// item reaches the store again LateDelay later.
func TestBatchDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 2 * time.Second
		srv, node, store := batchFaultServer(t, faults.BatchDuplicate, delay)
		start := time.Now()
		code, text, _ := sendBatch(t, t.Context(), srv, batchBody(t, "", batchItems...))
		got := batchResults(t, code, text)
		if got[0].Status != http.StatusCreated || got[1].Status != http.StatusCreated {
			t.Fatalf("results %+v, want 201 each", got)
		}
		if err := node.Settle(t.Context()); err != nil {
			t.Fatal(err)
		}
		want := []core.GroupID{"5", "6"}
		if got := store.creates(start); !reflect.DeepEqual(got, want) {
			t.Errorf("creates %v reached the store at once, want %v", got, want)
		}
		if got := store.creates(start.Add(delay)); !reflect.DeepEqual(got, want) || len(store.calls) != 2*len(want) {
			t.Errorf("creates %v reached the store %v later, want %v and no other", got, delay, want)
		}
		if got, want := listAll(t, store.Store), []core.Record{{ID: "5", Token: batchTS}, {ID: "6", Token: batchTS}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("the store holds %v, want %v", got, want)
		}
	})
}

// TestBatchFaultMetrics: a batch's fault is counted under its name, and a
// lost batch as no answer (444).
func TestBatchFaultMetrics(t *testing.T) {
	for _, bf := range []faults.BatchFault{faults.BatchLostBefore, faults.BatchLostAfter, faults.BatchLate, faults.BatchDuplicate} {
		t.Run(bf.String(), func(t *testing.T) {
			node := faults.New("node01", memory.New(), faults.Options{Faults: faults.Faults{BatchRate: 1}, Seed: seedFor(t, bf)})
			t.Cleanup(func() { _ = node.Close() })
			srv := httpapi.NewServer([]core.Node{node}, httpapi.ServerOptions{Metrics: true})
			// A late batch holds the request until its client gives up:
			// here, at once.
			ctx, cancel := context.WithCancel(t.Context())
			if bf == faults.BatchLate {
				cancel()
			}
			defer cancel()
			do(t, ctx, srv, "POST", "/v1/batch", "node01", batchBody(t, "", batchItems...))
			text := scrape(t, srv)
			labels := `fault="` + bf.String() + `",handler="/batch",method="post",node="node01"}`
			if !hasSample(text, "rops_http_requests_total{", labels) {
				t.Errorf("no rops_http_requests_total{code=...,%s sample:\n%s", labels, grepRops(text))
			}
			if bf == faults.BatchLostBefore || bf == faults.BatchLostAfter {
				wantLine(t, text, `rops_http_requests_total{code="444",`+labels+` 1`)
			}
		})
	}
}

// TestBatchStragglers: a batch without a wait whose item hangs is still
// answered: once half its items have, the others get a little more time,
// and then a straggler has status 0 (no answer) while the rest keep
// theirs. Without it the batch would wait for the hung item (here,
// forever: the bubble would deadlock).
func TestBatchStragglers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, _ := hangServer(t, "9")
		const ts = "1700000001.000001"
		body := batchBody(t, "",
			item{Op: "create", GroupID: "5", Timestamp: ts},
			item{Op: "create", GroupID: "9", Timestamp: ts},
			item{Op: "create", GroupID: "6", Timestamp: ts},
		)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel() // ends the hung item's request once the test is done
		code, text := do(t, ctx, srv, "POST", "/v1/batch", "node01", body)
		var statuses []int
		for _, r := range batchResults(t, code, text) {
			statuses = append(statuses, r.Status)
		}
		if want := []int{201, 0, 201}; !reflect.DeepEqual(statuses, want) {
			t.Fatalf("statuses %v, want %v: the hung item without an answer, the others with theirs", statuses, want)
		}
	})
}
