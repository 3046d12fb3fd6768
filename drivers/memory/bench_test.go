package memory_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/memory"
)

// BenchmarkRecords is what a Store's records cost to keep: the bytes and
// the objects retained per record, each created as a server creates it
// (its id, its token and its fence decoded apart), and how long a full
// collection over them takes. Run it a fixed number of times
// (-benchtime 1x): each iteration builds a store of its size.
func BenchmarkRecords(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			ctx := b.Context()
			heap := func() (bytes, objects uint64) {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m.HeapAlloc, m.HeapObjects
			}
			for b.Loop() {
				b0, o0 := heap()
				s := memory.New()
				for i := range n {
					tok := core.Token(fmt.Sprintf("1700000000.%06d", i))
					fence := core.Token(strings.Clone(string(tok)))
					if err := s.Create(core.WithFence(ctx, fence), core.GroupID(fmt.Sprintf("g%d", i)), tok); err != nil {
						b.Fatal(err)
					}
				}
				b1, o1 := heap()
				start := time.Now()
				runtime.GC()
				gc := time.Since(start)
				b.ReportMetric(float64(b1-b0)/float64(n), "B/record")
				b.ReportMetric(float64(o1-o0)/float64(n), "objects/record")
				b.ReportMetric(float64(gc.Microseconds())/1000, "gc-ms")
				runtime.KeepAlive(s)
			}
		})
	}
}
