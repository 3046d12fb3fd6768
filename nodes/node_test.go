package nodes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes"
)

const seed = 20211009

// newNode returns a node01 over a fresh mapStore with a fake clock.
func newNode(tb testing.TB, f nodes.Faults, seed uint64) (*nodes.Node, *mapStore, *fakeClock) {
	tb.Helper()
	store, clock := newMapStore(), &fakeClock{}
	return nodes.New("node01", store, nodes.Options{Faults: f, Seed: seed, Clock: clock}), store, clock
}

func id(i int) core.GroupID { return core.GroupID(strconv.Itoa(i)) }

// statusOf returns the HTTP status a random fault gave err, or fails.
func statusOf(tb testing.TB, err error) int {
	tb.Helper()
	e, ok := errors.AsType[*core.Error](err)
	if !ok || e.Code != core.ETransient {
		tb.Fatalf("err=%v, want a transient *core.Error", err)
	}
	switch {
	case e.Status == 500 && e.Message == "InternalServerError due to Random Behavior":
	case e.Status == 408 && e.Message == "Timeout due to Random Behavior":
	default:
		tb.Fatalf("err=%d %q, want the original's 500 or 408", e.Status, e.Message)
	}
	return e.Status
}

// checkRate fails unless count/n is within tol of want.
func checkRate(tb testing.TB, what string, count, n int, want, tol float64) {
	tb.Helper()
	if got := float64(count) / float64(n); got < want-tol || got > want+tol {
		tb.Fatalf("%s: %d of %d = %.3f, want %.2f±%.2f (seed %d)", what, count, n, got, want, tol, seed)
	}
}

func TestErrorRate(t *testing.T) {
	const n = 10000
	node, store, _ := newNode(t, nodes.Faults{ErrorRate: 0.2}, seed)
	ctx := context.Background()
	byStatus := map[int]int{}
	for i := range n {
		if err := node.Create(ctx, id(i), "1.000001"); err != nil {
			byStatus[statusOf(t, err)]++
			if store.has(id(i)) {
				t.Fatalf("Create(%d) failed with %v but wrote the record: a random error must come before the call", i, err)
			}
		}
	}
	failed := byStatus[500] + byStatus[408]
	checkRate(t, "errors", failed, n, 0.2, 0.02)
	checkRate(t, "500s among errors", byStatus[500], failed, 0.5, 0.05)
	if got, want := store.callCount(), n-failed; got != want {
		t.Fatalf("store saw %d calls, want %d", got, want)
	}
}

// outcomes returns the status (0 for success) of n Gets on a fresh node.
func outcomes(t *testing.T, f nodes.Faults, seed uint64, n int) []int {
	t.Helper()
	node, _, _ := newNode(t, f, seed)
	var got []int
	for i := range n {
		_, err := node.Get(context.Background(), id(i))
		if core.ErrorCode(err) == core.ETransient {
			got = append(got, statusOf(t, err))
		} else {
			got = append(got, 0)
		}
	}
	return got
}

func TestSeedReproducible(t *testing.T) {
	f := nodes.Faults{ErrorRate: 0.5}
	a, b := outcomes(t, f, seed, 200), outcomes(t, f, seed, 200)
	if !slices.Equal(a, b) {
		t.Fatalf("seed %d gave two different runs:\n%v\n%v", seed, a, b)
	}
	if c := outcomes(t, f, seed+1, 200); slices.Equal(a, c) {
		t.Fatalf("seeds %d and %d gave the same run", seed, seed+1)
	}
	// Switching on a fault that never fires must not shift the others.
	if d := outcomes(t, nodes.Faults{ErrorRate: 0.5, Jitter: 1}, seed, 200); !slices.Equal(a, d) {
		t.Fatalf("seed %d: adding jitter changed the errors:\n%v\n%v", seed, a, d)
	}
}

func TestAmbiguousRate(t *testing.T) {
	const n = 10000
	node, store, _ := newNode(t, nodes.Faults{AmbiguousRate: 0.3}, seed)
	ctx := context.Background()
	lost := 0
	for i := range n {
		if err := node.Create(ctx, id(i), "1.000001"); err != nil {
			statusOf(t, err)
			lost++
		}
		if !store.has(id(i)) {
			t.Fatalf("Create(%d): the store does not hold it; an ambiguous failure must come after the write", i)
		}
	}
	checkRate(t, "lost answers", lost, n, 0.3, 0.02)
}

func TestAmbiguousEveryGroupRoute(t *testing.T) {
	node, store, _ := newNode(t, nodes.Faults{AmbiguousRate: 1}, seed)
	ctx := context.Background()
	statusOf(t, node.Create(ctx, "5", "1.000001"))
	if !store.has("5") {
		t.Fatal("ambiguous Create did not write")
	}
	rec, err := node.Get(ctx, "5")
	statusOf(t, err)
	if got, want := rec, (core.Record{}); got != want {
		t.Fatalf("ambiguous Get returned %+v, want the zero record", got)
	}
	statusOf(t, node.Delete(ctx, "5", ""))
	if store.has("5") {
		t.Fatal("ambiguous Delete did not delete")
	}
	// Even a failure of the store is lost.
	statusOf(t, node.Delete(ctx, "5", ""))
	if got, want := store.callCount(), 4; got != want {
		t.Fatalf("store saw %d calls, want %d", got, want)
	}
}

func TestGroupFaultsSpareListAndCount(t *testing.T) {
	node, store, _ := newNode(t, nodes.Faults{ErrorRate: 1, AmbiguousRate: 1, HangRate: 1}, seed)
	store.recs["5"] = "1.000001"
	ctx := context.Background()
	for range 100 {
		recs, err := node.List(ctx, "", 10)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if got, want := len(recs), 1; got != want {
			t.Fatalf("List returned %d records, want %d", got, want)
		}
		c, err := node.Count(ctx)
		if err != nil {
			t.Fatalf("Count: %v", err)
		}
		if got, want := c, 1; got != want {
			t.Fatalf("Count=%d, want %d", got, want)
		}
	}
}

func TestHang(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, n *nodes.Node) error
	}{
		{"create", func(ctx context.Context, n *nodes.Node) error { return n.Create(ctx, "5", "1.000001") }},
		{"delete", func(ctx context.Context, n *nodes.Node) error { return n.Delete(ctx, "5", "") }},
		{"get", func(ctx context.Context, n *nodes.Node) error { _, err := n.Get(ctx, "5"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node, store, _ := newNode(t, nodes.Faults{HangRate: 1}, seed)
			ctx, cancel := context.WithCancel(context.Background())
			spy := newDoneSpy(ctx)
			done := make(chan error, 1)
			go func() { done <- tc.call(spy, node) }()
			<-spy.waiting
			select {
			case err := <-done:
				t.Fatalf("returned %v before the context ended", err)
			default:
			}
			cancel()
			err := <-done
			if got, want := core.ErrorCode(err), core.ETransient; got != want {
				t.Fatalf("ErrorCode=%q, want %q (err=%v)", got, want, err)
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err=%v, want it to wrap context.Canceled", err)
			}
			if got, want := store.callCount(), 0; got != want {
				t.Fatalf("store saw %d calls, want %d", got, want)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	ms := nodes.Duration(time.Millisecond)
	for _, tc := range []struct {
		name     string
		faults   nodes.Faults
		min, max time.Duration // every sleep is in [min, max]
		sleeps   bool
	}{
		{"none", nodes.Faults{}, 0, 0, false},
		{"latency", nodes.Faults{Latency: 10 * ms}, 10 * time.Millisecond, 10 * time.Millisecond, true},
		{"jitter", nodes.Faults{Latency: 10 * ms, Jitter: 5 * ms}, 10 * time.Millisecond, 15*time.Millisecond - 1, true},
		{"jitter alone", nodes.Faults{Jitter: 5 * ms}, 0, 5*time.Millisecond - 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node, _, clock := newNode(t, tc.faults, seed)
			ctx := context.Background()
			const rounds = 100
			for i := range rounds {
				_ = node.Create(ctx, id(i), "1.000001")
				_, _ = node.Get(ctx, id(i))
				_ = node.Delete(ctx, id(i), "")
				_, _ = node.List(ctx, "", 10)
				_, _ = node.Count(ctx)
			}
			slept := clock.slept()
			if !tc.sleeps {
				if len(slept) != 0 {
					t.Fatalf("slept %d times, want none", len(slept))
				}
				return
			}
			if got, want := len(slept), 5*rounds; got > want || got < want-rounds/10 {
				// Jitter alone may draw 0 for a few calls.
				t.Fatalf("slept %d times, want about %d: every call is delayed", got, want)
			}
			for _, d := range slept {
				if d < tc.min || d > tc.max {
					t.Fatalf("slept %v, want [%v, %v] (seed %d)", d, tc.min, tc.max, seed)
				}
			}
			if tc.min != tc.max && slices.Min(slept) == slices.Max(slept) {
				t.Fatalf("every sleep was %v: no jitter", slept[0])
			}
		})
	}
}

func TestLatencyCancelled(t *testing.T) {
	node, store, _ := newNode(t, nodes.Faults{Latency: nodes.Duration(time.Second)}, seed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := node.Create(ctx, "5", "1.000001")
	if got, want := core.ErrorCode(err), core.ETransient; got != want {
		t.Fatalf("ErrorCode=%q, want %q (err=%v)", got, want, err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err=%v, want it to wrap context.Canceled", err)
	}
	if got, want := store.callCount(), 0; got != want {
		t.Fatalf("store saw %d calls, want %d", got, want)
	}
}

func TestDown(t *testing.T) {
	node, store, clock := newNode(t, nodes.Faults{Down: true, Latency: nodes.Duration(time.Second)}, seed)
	ctx := context.Background()
	check := func(call string, err error) {
		t.Helper()
		if !errors.Is(err, core.ErrUnavailable) {
			t.Fatalf("%s on a down node: err=%v, want EUnavailable", call, err)
		}
		if got, want := err.Error(), "node01 is down (connection refused)"; got != want {
			t.Fatalf("%s: err=%q, want %q", call, got, want)
		}
	}
	check("Create", node.Create(ctx, "5", "1.000001"))
	check("Delete", node.Delete(ctx, "5", ""))
	_, err := node.Get(ctx, "5")
	check("Get", err)
	_, err = node.List(ctx, "", 10)
	check("List", err)
	_, err = node.Count(ctx)
	check("Count", err)
	if got, want := store.callCount(), 0; got != want {
		t.Fatalf("store saw %d calls, want %d", got, want)
	}
	if got := len(clock.slept()); got != 0 {
		t.Fatalf("a down node slept %d times; a refused connection answers at once", got)
	}

	if err := node.SetFaults(nodes.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := node.Create(ctx, "5", "1.000001"); err != nil {
		t.Fatalf("Create once up again: %v", err)
	}
}

func TestStoreErrorsPassThrough(t *testing.T) {
	node, store, _ := newNode(t, nodes.Faults{}, seed)
	ctx := context.Background()
	store.recs["5"] = "1.000001"
	want := errors.New("disk on fire")
	mock := &mockNode{name: "node01", CreateFn: func(context.Context, core.GroupID, core.Token) error { return want }}
	wrapped := nodes.New("node01", mock, nodes.Options{})
	if got := wrapped.Create(ctx, "5", "1"); got != want {
		t.Fatalf("Create=%v, want the store's own error %v", got, want)
	}
	if err := node.Create(ctx, "5", "2.000002"); !errors.Is(err, core.ErrExists) {
		t.Fatalf("Create over another token=%v, want ErrExists", err)
	}
	if _, err := node.Get(ctx, "6"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Get of a missing id=%v, want ErrNotFound", err)
	}
}

func TestSetFaultsInvalid(t *testing.T) {
	f := nodes.Faults{ErrorRate: 0.2}
	node, _, _ := newNode(t, f, seed)
	if err := node.SetFaults(nodes.Faults{ErrorRate: 2}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("SetFaults(error_rate 2)=%v, want EInvalid", err)
	}
	if got, want := node.Faults(), f; got != want {
		t.Fatalf("Faults()=%v after a refused SetFaults, want %v", got, want)
	}
}

func TestNewPanicsOnInvalidFaults(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New with error_rate -1 did not panic")
		}
	}()
	nodes.New("node01", newMapStore(), nodes.Options{Faults: nodes.Faults{ErrorRate: -1}})
}

// TestSetFaultsConcurrent is for the race detector: faults change while
// calls run.
func TestSetFaultsConcurrent(t *testing.T) {
	node, _, _ := newNode(t, nodes.Faults{}, seed)
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				gid := core.GroupID(fmt.Sprintf("%d-%d", w, i))
				// Hangs end at once on an ended context.
				for _, err := range []error{node.Create(done, gid, "1.000001"), node.Delete(done, gid, "")} {
					switch core.ErrorCode(err) {
					case "", core.ETransient, core.EUnavailable, core.ENotFound:
					default:
						t.Errorf("unexpected error %v", err)
					}
				}
				_, _ = node.List(ctx, "", 5)
			}
		})
	}
	wg.Go(func() {
		all := []nodes.Faults{
			{ErrorRate: 0.5}, {AmbiguousRate: 0.5}, {HangRate: 0.5}, {Down: true}, {Jitter: 1000}, {},
		}
		for i := range 1000 {
			if err := node.SetFaults(all[i%len(all)]); err != nil {
				t.Error(err)
			}
			_ = node.Faults()
		}
	})
	wg.Wait()
}

func TestFaulty(t *testing.T) {
	node, _, _ := newNode(t, nodes.Faults{}, seed)
	var buf bytes.Buffer
	if got, ok := nodes.Faulty(nodes.Logged(nodes.Logged(node, &buf), &buf)); !ok || got != node {
		t.Fatalf("Faulty(Logged(Logged(node)))=%p, %v; want %p, true", got, ok, node)
	}
	if _, ok := nodes.Faulty(&mockNode{name: "x"}); ok {
		t.Fatal("Faulty(mock) found a *Node")
	}
}
