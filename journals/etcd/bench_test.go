package etcd_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/journals/etcd"
	"github.com/reliable-ops/rops/journals/etcd/etcdtest"
	"github.com/reliable-ops/rops/journals/wal"
	"github.com/reliable-ops/rops/storetest"
)

// BenchmarkJob measures what sharing the journal costs a job: a bulk create
// of b.N ids on three memory nodes failing 0 or 20% of requests, at the
// CLI's default concurrency (auto), with the local log-file journal and
// with the journal and per-id locks in etcd (one embedded member, its
// data synced to disk as the local journal's is). With etcd it reports the
// raft entries etcd committed per operation (etcd-writes/op: each is a
// proposal, an fsync and an apply) and the revisions (writes that changed
// keys) per operation.
func BenchmarkJob(b *testing.B) {
	for _, journal := range []string{"wal", "etcd"} {
		for _, rate := range []float64{0, 0.2} {
			b.Run(fmt.Sprintf("journal=%s/error_rate=%g", journal, rate), func(b *testing.B) {
				cfg := core.Config{}
				counted := func() {}
				for i := range 3 {
					cfg.Nodes = append(cfg.Nodes, faults.New(fmt.Sprintf("node%02d", i+1), memory.New(), faults.Options{Faults: faults.Faults{ErrorRate: rate}, Seed: uint64(i)}))
				}
				if journal == "wal" {
					j, err := wal.Open(b.TempDir(), wal.Options{})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { j.Close() })
					cfg.Journal = j
				} else {
					ec := etcdtest.Start(b, 1)
					j := openTTL(b, ec.Endpoints(), 0)
					cfg.Journal, cfg.Locks = j, j.Locker()
					index, rev := ec.CommittedIndex(0), revision(b, j)
					writes, txns := j.Writes()
					counted = func() {
						w, t := j.Writes()
						b.ReportMetric(float64(w-writes)/float64(max(t-txns, 1)), "writes/txn")
						b.ReportMetric(float64(ec.CommittedIndex(0)-index)/float64(b.N), "etcd-writes/op")
						b.ReportMetric(float64(revision(b, j)-rev)/float64(b.N), "revisions/op")
					}
				}
				c, err := core.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				rep := c.Bulk(context.Background(), core.OpCreate, storetest.IDs(b.N), core.AutoConcurrency, nil)
				b.StopTimer()
				if rep.Done+rep.RolledBack != b.N {
					b.Fatalf("report = %+v, want %d done or rolled back", rep, b.N)
				}
				b.ReportMetric(float64(rep.Done)/b.Elapsed().Seconds(), "ops/s")
				counted()
			})
		}
	}
}

// revision returns etcd's current revision.
func revision(tb testing.TB, j *etcd.Journal) int64 {
	tb.Helper()
	resp, err := j.Client().Get(context.Background(), "revision")
	if err != nil {
		tb.Fatal(err)
	}
	return resp.Header.Revision
}
