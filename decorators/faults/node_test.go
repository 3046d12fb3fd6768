package faults_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/decorators/reqlog"
	"github.com/reliable-ops/rops/storetest"
)

const seed = 20211009

// newNode returns a node01 over a fresh mapStore with a fake clock, closed
// when the test ends.
func newNode(tb testing.TB, f faults.Faults, seed uint64) (*faults.Node, *mapStore, *fakeClock) {
	tb.Helper()
	store, clock := newMapStore(), &fakeClock{}
	node := faults.New("node01", store, faults.Options{Faults: f, Seed: seed, Clock: clock})
	tb.Cleanup(func() { node.Close() })
	return node, store, clock
}

func id(i int) core.GroupID { return core.GroupID(strconv.Itoa(i)) }

// statusOf returns the HTTP status a random fault gave err, or fails.
func statusOf(tb testing.TB, err error) int {
	tb.Helper()
	e, ok := errors.AsType[*core.Error](err)
	if !ok || e.Code != core.ETransient {
		tb.Fatalf("err=%v, want a transient *core.Error", err)
	}
	status := httpStatus(err)
	switch {
	case status == 500 && e.Message == "InternalServerError due to Random Behavior":
	case status == 408 && e.Message == "Timeout due to Random Behavior":
	default:
		tb.Fatalf("err=%d %q, want the original's 500 or 408", status, e.Message)
	}
	return status
}

// httpStatus returns the status of err's StatusError, or 0.
func httpStatus(err error) int {
	if s, ok := errors.AsType[*faults.StatusError](err); ok {
		return s.Status
	}
	return 0
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
	node, store, _ := newNode(t, faults.Faults{ErrorRate: 0.2}, seed)
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
func outcomes(t *testing.T, f faults.Faults, seed uint64, n int) []int {
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
	f := faults.Faults{ErrorRate: 0.5}
	a, b := outcomes(t, f, seed, 200), outcomes(t, f, seed, 200)
	if !slices.Equal(a, b) {
		t.Fatalf("seed %d gave two different runs:\n%v\n%v", seed, a, b)
	}
	if c := outcomes(t, f, seed+1, 200); slices.Equal(a, c) {
		t.Fatalf("seeds %d and %d gave the same run", seed, seed+1)
	}
	// Switching on a fault that never fires must not shift the others.
	if d := outcomes(t, faults.Faults{ErrorRate: 0.5, Jitter: 1}, seed, 200); !slices.Equal(a, d) {
		t.Fatalf("seed %d: adding jitter changed the errors:\n%v\n%v", seed, a, d)
	}
}

// TestInertFaultsCountNoCalls: faults of which none can fire (a
// LateDelay alone, as rops serve's nodes have at 0 faults) count no calls,
// as no faults at all: faults set later draw as on a fresh node.
func TestInertFaultsCountNoCalls(t *testing.T) {
	f := faults.Faults{ErrorRate: 0.5, LateDelay: faults.Duration(time.Second)}
	want := outcomes(t, f, seed, 200)
	node, _, _ := newNode(t, faults.Faults{LateDelay: f.LateDelay}, seed)
	for i := range 200 {
		if _, err := node.Get(context.Background(), id(i)); core.ErrorCode(err) == core.ETransient {
			t.Fatalf("Get(%d) under inert faults: %v", i, err)
		}
	}
	if err := node.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	var got []int
	for i := range 200 {
		_, err := node.Get(context.Background(), id(i))
		if core.ErrorCode(err) == core.ETransient {
			got = append(got, statusOf(t, err))
		} else {
			got = append(got, 0)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("seed %d: after inert faults\n%v, want as on a fresh node\n%v", seed, got, want)
	}
}

// TestSeedRunsUnchanged pins the outcomes of one seed, as the code gave
// them before the late, reset, duplicate and gateway faults were added: a
// run replayed from a seed of an older version must replay the same.
func TestSeedRunsUnchanged(t *testing.T) {
	f := faults.Faults{ErrorRate: 0.3, AmbiguousRate: 0.3, Jitter: faults.Duration(time.Millisecond)}
	node, store, clock := newNode(t, f, seed)
	var got []int
	for i := range 24 {
		err := node.Create(context.Background(), id(i%6), "1.000001")
		if err != nil {
			got = append(got, statusOf(t, err))
		} else {
			got = append(got, 0)
		}
	}
	want := []int{0, 0, 408, 0, 0, 500, 500, 500, 0, 500, 500, 0, 0, 500, 408, 408, 0, 0, 0, 500, 500, 408, 0, 408}
	if !slices.Equal(got, want) {
		t.Errorf("seed %d: outcomes\n%v, want\n%v", seed, got, want)
	}
	if got, want := store.callCount(), 17; got != want {
		t.Errorf("seed %d: store saw %d calls, want %d", seed, got, want)
	}
	wantSleeps := []time.Duration{933251, 790385, 179743, 685599, 542842, 701486, 665177, 350136}
	if got := clock.slept()[:len(wantSleeps)]; !slices.Equal(got, wantSleeps) {
		t.Errorf("seed %d: jitter\n%v, want\n%v", seed, got, wantSleeps)
	}

	hung, _, _ := newNode(t, faults.Faults{HangRate: 0.4}, seed)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	var hangs []bool
	for i := range 24 {
		hangs = append(hangs, hung.Create(ended, id(i%6), "1.000001") != nil)
	}
	wantHangs := []bool{false, false, false, false, true, true, false, true, true, true, false, false,
		false, false, true, true, false, false, false, true, true, false, false, false}
	if !slices.Equal(hangs, wantHangs) {
		t.Errorf("seed %d: hangs\n%v, want\n%v", seed, hangs, wantHangs)
	}
}

// TestNewFaultsDoNotShiftErrors checks that switching on the faults that
// come after ErrorRate leaves its errors where they were.
func TestNewFaultsDoNotShiftErrors(t *testing.T) {
	f := faults.Faults{ErrorRate: 0.5}
	a := outcomes(t, f, seed, 300)
	f.LateRate, f.LateDelay, f.ResetRate, f.DuplicateRate, f.GatewayRate = 0.1, faults.Duration(time.Second), 0.1, 0.1, 0.1
	node, _, _ := newNode(t, f, seed)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range len(a) {
		_, err := node.Get(ended, id(i))
		if a[i] == 0 {
			continue
		}
		if s, ok := errors.AsType[*faults.StatusError](err); !ok || s.Status != a[i] || s.Err != nil {
			t.Fatalf("Get(%d)=%v, want the random %d it gave without the new faults", i, err, a[i])
		}
	}
}

func TestAmbiguousRate(t *testing.T) {
	const n = 10000
	node, store, _ := newNode(t, faults.Faults{AmbiguousRate: 0.3}, seed)
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
	node, store, _ := newNode(t, faults.Faults{AmbiguousRate: 1}, seed)
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
	node, store, _ := newNode(t, faults.Faults{ErrorRate: 1, AmbiguousRate: 1, HangRate: 1}, seed)
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
		call func(ctx context.Context, n *faults.Node) error
	}{
		{"create", func(ctx context.Context, n *faults.Node) error { return n.Create(ctx, "5", "1.000001") }},
		{"delete", func(ctx context.Context, n *faults.Node) error { return n.Delete(ctx, "5", "") }},
		{"get", func(ctx context.Context, n *faults.Node) error { _, err := n.Get(ctx, "5"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node, store, _ := newNode(t, faults.Faults{HangRate: 1}, seed)
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
	ms := faults.Duration(time.Millisecond)
	for _, tc := range []struct {
		name     string
		faults   faults.Faults
		min, max time.Duration // every sleep is in [min, max]
		sleeps   bool
	}{
		{"none", faults.Faults{}, 0, 0, false},
		{"latency", faults.Faults{Latency: 10 * ms}, 10 * time.Millisecond, 10 * time.Millisecond, true},
		{"jitter", faults.Faults{Latency: 10 * ms, Jitter: 5 * ms}, 10 * time.Millisecond, 15*time.Millisecond - 1, true},
		{"jitter alone", faults.Faults{Jitter: 5 * ms}, 0, 5*time.Millisecond - 1, true},
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
	node, store, _ := newNode(t, faults.Faults{Latency: faults.Duration(time.Second)}, seed)
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
	node, store, clock := newNode(t, faults.Faults{Down: true, Latency: faults.Duration(time.Second)}, seed)
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

	if err := node.SetFaults(faults.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := node.Create(ctx, "5", "1.000001"); err != nil {
		t.Fatalf("Create once up again: %v", err)
	}
}

func TestStoreErrorsPassThrough(t *testing.T) {
	node, store, _ := newNode(t, faults.Faults{}, seed)
	ctx := context.Background()
	store.recs["5"] = "1.000001"
	want := errors.New("disk on fire")
	mock := &storetest.FuncNode{NodeName: "node01", CreateFn: func(context.Context, core.GroupID, core.Token) error { return want }}
	wrapped := faults.New("node01", mock, faults.Options{})
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
	f := faults.Faults{ErrorRate: 0.2}
	node, _, _ := newNode(t, f, seed)
	if err := node.SetFaults(faults.Faults{ErrorRate: 2}); !errors.Is(err, core.ErrInvalid) {
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
	faults.New("node01", newMapStore(), faults.Options{Faults: faults.Faults{ErrorRate: -1}})
}

// TestSetFaultsConcurrent is for the race detector: faults change while
// calls run.
func TestSetFaultsConcurrent(t *testing.T) {
	node, _, _ := newNode(t, faults.Faults{}, seed)
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
		all := []faults.Faults{
			{ErrorRate: 0.5}, {AmbiguousRate: 0.5}, {HangRate: 0.5}, {Down: true}, {Jitter: 1000}, {},
			{LateRate: 0.5, LateDelay: 1000}, {ResetRate: 0.5}, {DuplicateRate: 0.5}, {GatewayRate: 0.5},
		}
		for i := range 1000 {
			if err := node.SetFaults(all[i%len(all)]); err != nil {
				t.Error(err)
			}
			_ = node.Faults()
		}
	})
	wg.Wait()
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFaulty(t *testing.T) {
	node, _, _ := newNode(t, faults.Faults{}, seed)
	log := slog.New(slog.DiscardHandler)
	if got, ok := faults.Faulty(reqlog.Wrap(reqlog.Wrap(node, log), log)); !ok || got != node {
		t.Fatalf("Faulty(Wrap(Wrap(node)))=%p, %v; want %p, true", got, ok, node)
	}
	if _, ok := faults.Faulty(&storetest.FuncNode{NodeName: "x"}); ok {
		t.Fatal("Faulty(mock) found a *Node")
	}
}

// groupCalls are the calls every group fault applies to, on id 5.
var groupCalls = []struct {
	name string
	call func(ctx context.Context, n *faults.Node) error
}{
	{"create", func(ctx context.Context, n *faults.Node) error { return n.Create(ctx, "5", "1.000001") }},
	{"delete", func(ctx context.Context, n *faults.Node) error { return n.Delete(ctx, "5", "") }},
	{"get", func(ctx context.Context, n *faults.Node) error { _, err := n.Get(ctx, "5"); return err }},
}

// timedStore is a mapStore that notes when, on the node's clock, each call
// reached it.
type timedStore struct {
	*mapStore
	mu    sync.Mutex
	times []time.Time
}

func (s *timedStore) note() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, time.Now())
}

func (s *timedStore) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	s.note()
	return s.mapStore.Create(ctx, id, token)
}

func (s *timedStore) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	s.note()
	return s.mapStore.Delete(ctx, id, token)
}

func (s *timedStore) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	s.note()
	return s.mapStore.Get(ctx, id)
}

func (s *timedStore) called() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.times)
}

// newBubbleNode returns a node01 on the system clock, for use inside a
// synctest bubble, where that clock is fake; the store holds id 5 with
// token 1.000001. The caller must Close the node inside the bubble.
func newBubbleNode(f faults.Faults) (*faults.Node, *timedStore) {
	store := &timedStore{mapStore: newMapStore()}
	store.recs["5"] = "1.000001"
	return faults.New("node01", store, faults.Options{Faults: f, Seed: seed}), store
}

func TestLate(t *testing.T) {
	const delay = 3 * time.Second
	for _, tc := range groupCalls {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				node, store := newBubbleNode(faults.Faults{LateRate: 1, LateDelay: faults.Duration(delay)})
				defer node.Close()
				start := time.Now()
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				defer cancel()
				err := tc.call(ctx, node)
				if got, want := core.ErrorCode(err), core.ETransient; got != want {
					t.Fatalf("ErrorCode=%q, want %q (err=%v)", got, want, err)
				}
				if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer") {
					t.Fatalf("err=%v, want a hang's: node01 did not answer: context deadline exceeded", err)
				}
				synctest.Wait()
				if got := store.called(); len(got) != 0 {
					t.Fatalf("the store saw the call before the caller gave up: %v", got)
				}
				if err := node.Settle(t.Context()); err != nil {
					t.Fatal(err)
				}
				got := store.called()
				if len(got) != 1 {
					t.Fatalf("the store saw %d calls, want the late one", len(got))
				}
				if got, want := got[0].Sub(start), delay; got != want {
					t.Fatalf("the store saw the call %v after it arrived, want %v", got, want)
				}
			})
		})
	}
}

// TestLateLandsAfterRollback is the second scenario on one node: a
// create the caller gave up on lands after the delete that undid it.
func TestLateLandsAfterRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node, store := newBubbleNode(faults.Faults{LateRate: 1, LateDelay: faults.Duration(3 * time.Second)})
		defer node.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := node.Create(ctx, "6", "2.000002"); !core.IsAmbiguous(err) {
			t.Fatalf("late Create=%v, want an ambiguous error", err)
		}
		if err := store.Delete(t.Context(), "6", "2.000002"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("rollback Delete=%v, want ErrNotFound: the create has not landed yet", err)
		}
		if err := node.Settle(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !store.has("6") {
			t.Fatal("the late create never landed")
		}
	})
}

// TestLateCarriesFence: a late or duplicate apply runs under the fence of
// the request it copies, so a store that fences checks it when it lands,
// as a real delayed request is checked: once a later holder of the id has
// been there (a greater fence), it is refused and changes nothing; with no
// later holder, it lands.
func TestLateCarriesFence(t *testing.T) {
	const old, later = core.Token("1.000001"), core.Token("3.000003")
	for _, tc := range []struct {
		name   string
		faults faults.Faults
		// holder is what the later holder does on the store, under its
		// fence, before the copy lands.
		holder func(ctx context.Context, s *fenceStore) error
	}{
		{"late", faults.Faults{LateRate: 1, LateDelay: faults.Duration(3 * time.Second)},
			func(ctx context.Context, s *fenceStore) error {
				if _, err := s.Get(ctx, "6"); !errors.Is(err, core.ErrNotFound) {
					return fmt.Errorf("Get(6)=%v, want ErrNotFound: the create has not landed yet", err)
				}
				return nil
			}},
		{"duplicate", faults.Faults{DuplicateRate: 1},
			func(ctx context.Context, s *fenceStore) error { return s.Delete(ctx, "6", "2.000002") }},
	} {
		for _, holderCame := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/holder=%v", tc.name, holderCame), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					store := newFenceStore()
					node := faults.New("node01", store, faults.Options{Faults: tc.faults, Seed: seed})
					defer node.Close()
					ctx, cancel := context.WithTimeout(core.WithFence(t.Context(), old), 2*time.Second)
					defer cancel()
					_ = node.Create(ctx, "6", "2.000002") // late: ambiguous; duplicate: applied
					if holderCame {
						if err := tc.holder(core.WithFence(t.Context(), later), store); err != nil {
							t.Fatal(err)
						}
					}
					if err := node.Settle(t.Context()); err != nil {
						t.Fatal(err)
					}
					if got, want := store.has("6"), !holderCame; got != want {
						t.Fatalf("the store holds 6: %v, want %v: the copy of Create(6) under fence %s must be refused once fence %s was seen, and land otherwise",
							got, want, old, later)
					}
				})
			})
		}
	}
}

func TestLateRate(t *testing.T) {
	const n = 5000
	delay := faults.Duration(time.Second)
	node, store, clock := newNode(t, faults.Faults{LateRate: 0.2, LateDelay: delay}, seed)
	// The caller has given up already, so that a late call returns at once.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	var late []core.GroupID
	for i := range n {
		err := node.Create(ended, id(i), "1.000001")
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			late = append(late, id(i))
		default:
			t.Fatalf("Create(%d)=%v, want nil or a late call's error", i, err)
		}
	}
	checkRate(t, "late calls", len(late), n, 0.2, 0.02)
	if err := node.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, gid := range late {
		if !store.has(gid) {
			t.Fatalf("late Create(%s) never landed", gid)
		}
	}
	if got, want := store.callCount(), n; got != want {
		t.Fatalf("store saw %d calls, want %d", got, want)
	}
	for _, d := range clock.slept() {
		if d != time.Duration(delay) {
			t.Fatalf("a late call waited %v on the clock, want %v", d, delay)
		}
	}
	if got, want := len(clock.slept()), len(late); got != want {
		t.Fatalf("%d waits on the clock, want one per late call (%d)", got, want)
	}
}

// TestCloseDropsLate checks that a closed node's queued calls never land,
// as a killed process's do not.
func TestCloseDropsLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node, store := newBubbleNode(faults.Faults{LateRate: 1, LateDelay: faults.Duration(time.Minute), DuplicateRate: 1})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := node.Create(ctx, "6", "2.000002"); !core.IsAmbiguous(err) {
			t.Fatalf("late Create=%v, want an ambiguous error", err)
		}
		if err := node.Close(); err != nil {
			t.Fatal(err)
		}
		if err := node.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := store.called(); len(got) != 0 {
			t.Fatalf("the store saw %d calls after Close, want none", len(got))
		}
		// Calls after Close still run, but queue nothing.
		if err := node.SetFaults(faults.Faults{DuplicateRate: 1}); err != nil {
			t.Fatal(err)
		}
		if err := node.Create(t.Context(), "6", "2.000002"); err != nil {
			t.Fatalf("Create after Close=%v", err)
		}
		if err := node.Settle(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, want := len(store.called()), 1; got != want {
			t.Fatalf("the store saw %d calls, want %d: a closed node runs no duplicate", got, want)
		}
	})
}

func TestSettleEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node, _ := newBubbleNode(faults.Faults{DuplicateRate: 1, LateDelay: faults.Duration(time.Minute)})
		defer node.Close()
		if err := node.Create(t.Context(), "6", "2.000002"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := node.Settle(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Settle=%v, want the context's end", err)
		}
	})
}

func TestReset(t *testing.T) {
	for _, tc := range groupCalls {
		t.Run(tc.name, func(t *testing.T) {
			node, store, _ := newNode(t, faults.Faults{ResetRate: 1}, seed)
			store.recs["5"] = "1.000001"
			err := tc.call(context.Background(), node)
			if got, want := core.ErrorCode(err), core.ETransient; got != want {
				t.Fatalf("ErrorCode=%q, want %q (err=%v)", got, want, err)
			}
			if !errors.Is(err, faults.ErrReset) {
				t.Fatalf("err=%v, want it to wrap faults.ErrReset", err)
			}
			if got, want := err.Error(), "node01: connection reset by peer"; got != want {
				t.Fatalf("err=%q, want %q", got, want)
			}
			if got, want := store.callCount(), 1; got != want {
				t.Fatalf("store saw %d calls, want %d: a reset comes after the call", got, want)
			}
		})
	}
}

func TestResetRate(t *testing.T) {
	const n = 5000
	node, store, _ := newNode(t, faults.Faults{ResetRate: 0.3}, seed)
	resets := 0
	for i := range n {
		if err := node.Create(context.Background(), id(i), "1.000001"); errors.Is(err, faults.ErrReset) {
			resets++
		} else if err != nil {
			t.Fatalf("Create(%d)=%v, want nil or a reset", i, err)
		}
		if !store.has(id(i)) {
			t.Fatalf("Create(%d): the store does not hold it; a reset must come after the write", i)
		}
	}
	checkRate(t, "resets", resets, n, 0.3, 0.02)
}

func TestDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lateDelay time.Duration
		want      time.Duration // between the two applies
	}{
		{"late delay", 5 * time.Second, 5 * time.Second},
		{"default", 0, faults.DefaultLateDelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				node, store := newBubbleNode(faults.Faults{DuplicateRate: 1, LateDelay: faults.Duration(tc.lateDelay)})
				defer node.Close()
				// The caller gets the first answer.
				rec, err := node.Get(t.Context(), "5")
				if got, want := rec, (core.Record{ID: "5", Token: "1.000001"}); err != nil || got != want {
					t.Fatalf("Get=%+v, %v; want %+v", got, err, want)
				}
				if err := node.Create(t.Context(), "6", "2.000002"); err != nil {
					t.Fatalf("Create=%v", err)
				}
				// Undone before the duplicate comes: it creates the record again.
				if err := store.Delete(t.Context(), "6", "2.000002"); err != nil {
					t.Fatal(err)
				}
				if err := node.Settle(t.Context()); err != nil {
					t.Fatal(err)
				}
				if !store.has("6") {
					t.Fatal("the duplicate create did not land")
				}
				got := store.called()
				// Get, Create, the test's Delete, then the duplicates.
				if len(got) != 5 {
					t.Fatalf("the store saw %d calls, want 5", len(got))
				}
				for _, i := range []int{3, 4} {
					if d := got[i].Sub(got[0]); d != tc.want {
						t.Fatalf("a duplicate came %v after the first, want %v", d, tc.want)
					}
				}
			})
		})
	}
}

func TestDuplicateRate(t *testing.T) {
	const n = 5000
	node, store, _ := newNode(t, faults.Faults{DuplicateRate: 0.1}, seed)
	for i := range n {
		if err := node.Create(context.Background(), id(i), "1.000001"); err != nil {
			t.Fatalf("Create(%d)=%v: a duplicate still answers", i, err)
		}
	}
	if err := node.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkRate(t, "duplicates", store.callCount()-n, n, 0.1, 0.02)
}

func TestGateway(t *testing.T) {
	for _, tc := range groupCalls {
		t.Run(tc.name, func(t *testing.T) {
			node, store, _ := newNode(t, faults.Faults{GatewayRate: 1}, seed)
			err := tc.call(context.Background(), node)
			e, ok := errors.AsType[*core.Error](err)
			if !ok || e.Code != core.ETransient || !errors.Is(err, faults.ErrGateway) {
				t.Fatalf("err=%v, want a transient error wrapping faults.ErrGateway", err)
			}
			status := httpStatus(err)
			if got, want := e.Message, fmt.Sprintf("%d %s (from a proxy in front of node01)", status, faults.GatewayText(status)); got != want {
				t.Fatalf("message %q, want %q", got, want)
			}
			if store.callCount() > 1 {
				t.Fatalf("store saw %d calls, want at most one", store.callCount())
			}
		})
	}
}

func TestGatewayRate(t *testing.T) {
	const n = 6000
	node, store, _ := newNode(t, faults.Faults{GatewayRate: 0.5}, seed)
	byStatus := map[int]int{}
	forwarded := 0
	for i := range n {
		err := node.Create(context.Background(), id(i), "1.000001")
		if err == nil {
			continue
		}
		if !errors.Is(err, faults.ErrGateway) {
			t.Fatalf("Create(%d)=%v, want nil or a gateway error", i, err)
		}
		byStatus[httpStatus(err)]++
		if store.has(id(i)) {
			forwarded++
		}
	}
	answered := byStatus[502] + byStatus[503] + byStatus[504]
	if answered != n-store.callCount()+forwarded {
		t.Fatalf("%d gateway answers, %d forwarded, %d store calls of %d: the counts do not add up", answered, forwarded, store.callCount(), n)
	}
	checkRate(t, "gateway answers", answered, n, 0.5, 0.02)
	for _, s := range []int{502, 503, 504} {
		checkRate(t, fmt.Sprintf("%ds among gateway answers", s), byStatus[s], answered, 1.0/3, 0.03)
	}
	checkRate(t, "forwarded among gateway answers", forwarded, answered, 0.5, 0.03)
}

// TestNewFaultsReproducible checks that a seed replays the new faults too.
func TestNewFaultsReproducible(t *testing.T) {
	f := faults.Faults{ResetRate: 0.2, GatewayRate: 0.2, DuplicateRate: 0.2, AmbiguousRate: 0.1}
	run := func(seed uint64) []string {
		node, store, _ := newNode(t, f, seed)
		var got []string
		for i := range 300 {
			err := node.Create(context.Background(), id(i), "1.000001")
			if err := node.Settle(context.Background()); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%v/%d", err, store.callCount()))
		}
		return got
	}
	a, b := run(seed), run(seed)
	if !slices.Equal(a, b) {
		t.Fatalf("seed %d gave two different runs:\n%v\n%v", seed, a, b)
	}
	if c := run(seed + 1); slices.Equal(a, c) {
		t.Fatalf("seeds %d and %d gave the same run", seed, seed+1)
	}
}

// TestCallCountsOutliveAGeneration: an id in the middle of its calls keeps
// its place in its sequence of draws when the node's call counts fill up,
// so that its retries go on drawing new faults. Before, a full map was
// cleared and every id in flight drew its first faults again: an id whose
// first draws failed failed again, and at 0.2 a create now and then failed
// eleven times in a row on one node and was rolled back.
func TestCallCountsOutliveAGeneration(t *testing.T) {
	const ids, before, after = 20, 3, 3
	f := faults.Faults{ErrorRate: 0.5}
	ctx := context.Background()
	statuses := func(node *faults.Node, i, calls int) []int {
		var got []int
		for range calls {
			got = append(got, httpStatus(node.Create(ctx, id(i), "1.000001")))
		}
		return got
	}
	filled, _, _ := newNode(t, f, seed)
	for i := range ids {
		statuses(filled, i, before)
	}
	// Other ids, one call each, fill the generation the ids above are in.
	for i := range faults.MaxTrackedCalls {
		filled.Create(ctx, core.GroupID(fmt.Sprintf("filler-%d", i)), "1.000001")
	}
	alone, _, _ := newNode(t, f, seed)
	for i := range ids {
		want := statuses(alone, i, before+after)[before:]
		if got := statuses(filled, i, after); !slices.Equal(got, want) {
			t.Fatalf("id %d: calls %d to %d after the counts filled up answered %v, want %v as with no other ids (seed %d)", i, before+1, before+after, got, want, seed)
		}
	}
}
