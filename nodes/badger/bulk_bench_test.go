package badger_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes"
	"github.com/reliable-ops/rops/nodes/badger"
	"github.com/reliable-ops/rops/nodes/memory"
)

// BenchmarkBulkCreateJournal measures what the journal costs a bulk job: the
// same bulk create of b.N ids on three memory nodes (no faults, 16 workers),
// with no journal, the memory journal, and the durable badger journal.
func BenchmarkBulkCreateJournal(b *testing.B) {
	for _, tc := range []struct {
		name    string
		journal func(b *testing.B) core.Journal
	}{
		{"none", func(*testing.B) core.Journal { return nil }},
		{"memory", func(*testing.B) core.Journal { return memory.NewJournal() }},
		{"badger", func(b *testing.B) core.Journal {
			j, err := badger.OpenJournal(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { j.Close() })
			return j
		}},
	} {
		b.Run("journal="+tc.name, func(b *testing.B) {
			var ns []core.Node
			for i := range 3 {
				ns = append(ns, nodes.New(fmt.Sprintf("node%02d", i+1), memory.New(), nodes.Options{}))
			}
			cfg := core.Config{Nodes: ns}
			if j := tc.journal(b); j != nil {
				cfg.Journal = j
			}
			c, err := core.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ids := func(yield func(core.GroupID) bool) {
				for i := range b.N {
					if !yield(core.GroupID(strconv.Itoa(i))) {
						return
					}
				}
			}
			b.ResetTimer()
			rep := c.Bulk(context.Background(), core.OpCreate, ids, 16, nil)
			b.StopTimer()
			if rep.Done != b.N {
				b.Fatalf("report = %+v, want %d done", rep, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
