package faults_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// BenchmarkCallCounts is what a node's call counts (the draws' sequence per
// method and id) cost to keep once both of their generations are full, as
// on a long-running rops serve: the bytes and objects retained per tracked
// call, and how long a full collection over them takes. The store reads
// nothing and keeps nothing, so the counts are all that is retained. Run
// it a fixed number of times (-benchtime 1x).
func BenchmarkCallCounts(b *testing.B) {
	heap := func() (bytes, objects uint64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc, m.HeapObjects
	}
	ctx := b.Context()
	const calls = 2 * faults.MaxTrackedCalls
	for b.Loop() {
		b0, o0 := heap()
		node, _, _ := newNode(b, faults.Faults{ErrorRate: 0.2}, seed)
		for i := range calls {
			// Each id decoded apart, as a server's requests bring them.
			_, _ = node.Get(ctx, core.GroupID(fmt.Sprintf("g%d", i)))
		}
		b1, o1 := heap()
		start := time.Now()
		runtime.GC()
		gc := time.Since(start)
		b.ReportMetric(float64(b1-b0)/calls, "B/call")
		b.ReportMetric(float64(o1-o0)/calls, "objects/call")
		b.ReportMetric(float64(gc.Microseconds())/1000, "gc-ms")
		runtime.KeepAlive(node)
	}
}
