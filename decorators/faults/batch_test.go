package faults_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// batchFaults returns the faults of n batches on a node with faults f and
// seed, and the note the last one left.
func batchFaults(t *testing.T, f faults.Faults, seed uint64, n int) ([]faults.BatchFault, string) {
	t.Helper()
	node := faults.New("node01", newMapStore(), faults.Options{Faults: f, Seed: seed})
	t.Cleanup(func() { _ = node.Close() })
	var note faults.Note
	ctx := faults.WithNote(t.Context(), &note)
	got := make([]faults.BatchFault, n)
	for i := range got {
		got[i] = node.BatchFault(ctx)
	}
	return got, note.Fault
}

// TestBatchFault: BatchRate draws each of the four batch faults, about as
// often as the rate says, the same from the same seed, and notes the
// fault; no rate, or a node that is down, draws none.
func TestBatchFault(t *testing.T) {
	const n = 400
	got, note := batchFaults(t, faults.Faults{BatchRate: 0.5}, seed, n)
	count := map[faults.BatchFault]int{}
	for _, f := range got {
		count[f]++
	}
	for _, f := range []faults.BatchFault{faults.BatchLostBefore, faults.BatchLostAfter, faults.BatchLate, faults.BatchDuplicate} {
		// About n/8 each: far from none and from all.
		if c := count[f]; c < n/16 || c > n/4 {
			t.Errorf("%v: %d of %d batches, want about %d", f, c, n, n/8)
		}
	}
	if c := count[faults.BatchNone]; c < n/3 || c > 2*n/3 {
		t.Errorf("none: %d of %d batches at rate 0.5", c, n)
	}
	if last := got[n-1]; last != faults.BatchNone && note != last.String() {
		t.Errorf("note %q after %v", note, last)
	}
	again, _ := batchFaults(t, faults.Faults{BatchRate: 0.5}, seed, n)
	if !slices.Equal(got, again) {
		t.Error("the same seed drew other batch faults")
	}
	for name, f := range map[string]faults.Faults{
		"no rate": {ErrorRate: 0.5},
		"down":    {BatchRate: 1, Down: true},
	} {
		if got, note := batchFaults(t, f, seed, 50); slices.ContainsFunc(got, func(f faults.BatchFault) bool { return f != faults.BatchNone }) || note != "" {
			t.Errorf("%s: batch faults %v, note %q; want none", name, got, note)
		}
	}
}

// TestBatchFaultSparesCalls: drawing batch faults shifts no call's draws.
func TestBatchFaultSparesCalls(t *testing.T) {
	f := faults.Faults{ErrorRate: 0.5, BatchRate: 0.5}
	a := outcomes(t, f, seed, 100)
	node, _, _ := newNode(t, f, seed)
	for range 10 {
		node.BatchFault(t.Context())
	}
	for i := range len(a) {
		_, err := node.Get(t.Context(), id(i))
		if got := statusOrZero(t, err); got != a[i] {
			t.Fatalf("Get(%d) after batches: %d, want %d as without them", i, got, a[i])
		}
	}
}

// statusOrZero is the status of a random fault's err, as outcomes gives
// it: 0 for any other.
func statusOrZero(t *testing.T, err error) int {
	t.Helper()
	if core.ErrorCode(err) != core.ETransient {
		return 0
	}
	return statusOf(t, err)
}

// TestLater: Later runs its function LateDelay (DefaultLateDelay if zero)
// later on the node's clock, Settle waits for it, and Close drops one not
// yet run.
func TestLater(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay faults.Duration
		want  time.Duration
	}{
		{"late delay", faults.Duration(time.Second), time.Second},
		{"default", 0, faults.DefaultLateDelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				node, _ := newBubbleNode(faults.Faults{BatchRate: 1, LateDelay: tc.delay})
				defer node.Close()
				start := time.Now()
				var ran time.Duration
				node.Later(func(ctx context.Context) {
					if ctx.Err() != nil {
						t.Errorf("Later's context ended: %v", ctx.Err())
					}
					ran = time.Since(start)
				})
				if err := node.Settle(t.Context()); err != nil {
					t.Fatal(err)
				}
				if ran != tc.want {
					t.Fatalf("ran %v after Later, want %v", ran, tc.want)
				}
			})
		})
	}
	synctest.Test(t, func(t *testing.T) {
		node, _ := newBubbleNode(faults.Faults{BatchRate: 1})
		ran := false
		node.Later(func(context.Context) { ran = true })
		if err := node.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if ran {
			t.Fatal("Later's function ran after Close")
		}
	})
}
