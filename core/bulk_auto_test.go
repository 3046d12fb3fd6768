package core

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reliable-ops/rops/core/pool"
)

// simulateBulk runs an adaptive job of items operations against a fake node
// whose latency is latency(n) with n operations in flight, on synctest's
// fake clock. It returns the limiter, the most operations in flight in the
// job's second half, and the report.
func simulateBulk(t *testing.T, items int, latency func(n int) time.Duration) (*pool.Limiter, int, Report) {
	t.Helper()
	var mu sync.Mutex
	inflight, peakLate, done := 0, 0, 0
	lim := pool.NewLimiter(DefaultConcurrency, MaxConcurrency)
	run := func(int) Result {
		mu.Lock()
		inflight++
		n := inflight
		if done > items/2 {
			peakLate = max(peakLate, n)
		}
		mu.Unlock()
		time.Sleep(latency(n))
		mu.Lock()
		inflight--
		done++
		mu.Unlock()
		return Result{Outcome: Done, Requests: 1}
	}
	rep := runLimited(t.Context(), SystemClock{}, "create", indexes(items), lim, run, nil)
	if got, want := rep.Done, items; got != want {
		t.Fatalf("done=%d, want %d", got, want)
	}
	return lim, peakLate, rep
}

// TestBulkAutoSettlesBelowOverload runs an adaptive job against a fake node
// whose latency is flat up to 100 requests in flight and then grows with the
// fourth power of the load, so that throughput falls past 100. The limit
// must grow past the default and settle below the 150 in flight where
// latency has risen fivefold.
func TestBulkAutoSettlesBelowOverload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const knee, explode = 100, 150
		lim, peakLate, rep := simulateBulk(t, 30000, func(n int) time.Duration {
			x := max(1, float64(n)/knee)
			return time.Duration(float64(time.Millisecond) * x * x * x * x)
		})
		if got := lim.Limit(); got <= DefaultConcurrency || got >= explode {
			t.Errorf("limit=%d, want over %d and under %d", got, DefaultConcurrency, explode)
		}
		if peakLate >= explode {
			t.Errorf("peak in flight in the second half=%d, want under %d", peakLate, explode)
		}
		t.Logf("limit %d, peak in flight in the second half %d, %.1f s simulated", lim.Limit(), peakLate, rep.Seconds)
	})
}

// TestBulkAutoGrowsWhileQueueingPays runs an adaptive job against a fake
// node that batches: past 16 in flight its latency grows with the square
// root of the load, so throughput still grows with it, as a badger node's
// group commit or a job's backoff waits give. Latency doubles by 64 in
// flight, where a limiter that weighs latency alone stops; this one must
// keep the queueing that pays and reach 256.
func TestBulkAutoGrowsWhileQueueingPays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, _, rep := simulateBulk(t, 60000, func(n int) time.Duration {
			return time.Duration(float64(time.Millisecond) * math.Sqrt(max(1, float64(n)/16)))
		})
		if got, want := lim.Limit(), 256; got < want {
			t.Errorf("limit=%d, want at least %d", got, want)
		}
		t.Logf("limit %d, %.1f s simulated", lim.Limit(), rep.Seconds)
	})
}

// batchingNode is a fake node that says its writes travel in batches of
// size (Batcher), and whose creates take a millisecond, counting how many
// run at once in peak while the first 100 run.
type batchingNode struct {
	*fakeNode
	size int
	load *startLoad
}

// startLoad counts the creates running at once, and the most of them seen
// while the first 100 creates started.
type startLoad struct {
	mu                    sync.Mutex
	now, started, atStart int
}

func (n *batchingNode) BatchSize() int { return n.size }

func (n *batchingNode) Create(ctx context.Context, id GroupID, token Token) error {
	l := n.load
	l.mu.Lock()
	l.now++
	l.started++
	if l.started <= 100*3 { // three nodes
		l.atStart = max(l.atStart, l.now)
	}
	l.mu.Unlock()
	time.Sleep(time.Millisecond)
	l.mu.Lock()
	l.now--
	l.mu.Unlock()
	return n.fakeNode.Create(ctx, id, token)
}

// TestBulkAutoRaisedForBatches: once every node says its writes go in
// batches of 64, an adaptive job runs two batches' worth of operations at
// once from its first answer on, where one without batches starts at
// DefaultConcurrency and doubles from there.
func TestBulkAutoRaisedForBatches(t *testing.T) {
	for _, tc := range []struct {
		size    int
		atLeast int // of the creates at once per node while the first 100 start
		atMost  int
	}{
		{size: 64, atLeast: 80, atMost: 128},
		{size: 0, atLeast: 1, atMost: 64},
	} {
		t.Run(fmt.Sprintf("batch=%d", tc.size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				load := &startLoad{}
				for i, n := range e.nodes {
					e.cfg.Nodes[i] = &batchingNode{fakeNode: n, size: tc.size, load: load}
				}
				rep := e.coordinator().Bulk(t.Context(), OpCreate, slices.Values(idRange(1000)), AutoConcurrency, nil)
				if rep.Done != 1000 {
					t.Fatalf("done=%d, want 1000", rep.Done)
				}
				// Three nodes each take every operation's create.
				if got := load.atStart / 3; got < tc.atLeast || got > tc.atMost {
					t.Errorf("operations at once while the first 100 started: %d, want %d to %d", got, tc.atLeast, tc.atMost)
				}
			})
		})
	}
}
