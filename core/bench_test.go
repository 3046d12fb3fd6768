package core

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// benchSeed seeds the RNGs of the benchmarks; it is logged with every run.
const benchSeed = 20261125

// benchCoordinator is a coordinator over three in-test nodes whose retries
// wait no real time, so a benchmark measures the coordinator, not its sleeps.
func benchCoordinator(b *testing.B, nodes fakeCluster) *Coordinator {
	b.Helper()
	noWait := func() Backoff { return Exponential(0, 0, DefaultRetries, nil) }
	c, err := New(Config{
		Nodes:                  nodes.nodes(),
		Journal:                &fakeJournal{},
		Rand:                   rand.New(NewLockedSource(benchSeed)),
		NewBackoff:             noWait,
		NewCompensationBackoff: func() Backoff { return Exponential(0, 0, -1, nil) },
	})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	return c
}

// BenchmarkCreate is the coordinator's own cost per create over three
// fault-free nodes, from many goroutines.
func BenchmarkCreate(b *testing.B) {
	nodes := newCluster(3)
	c := benchCoordinator(b, nodes)
	var next atomic.Int64
	var requests atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := GroupID(fmt.Sprintf("g%d", next.Add(1)))
			res, err := c.Create(ctx, id)
			if err != nil || res.Outcome != Done {
				b.Errorf("create %s: %v %v", id, res.Outcome, err)
				return
			}
			requests.Add(int64(res.Requests))
		}
	})
	b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/op")
}

// BenchmarkBulkCreate runs bulk creates at the original's RANDOM_BEHAVIOR of
// 0.2 (500 or 408 before the node does anything) and reports what a create
// costs in requests: N/(1-p) = 3.75 is the floor for three nodes.
func BenchmarkBulkCreate(b *testing.B) {
	for _, rate := range []float64{0.2, 0.5} {
		b.Run(fmt.Sprintf("error_rate=%.1f", rate), func(b *testing.B) {
			b.Logf("seed %d", benchSeed)
			rng := rand.New(NewLockedSource(benchSeed))
			nodes := newCluster(3)
			for _, n := range nodes {
				n.fn = func(call) fault {
					if rng.Float64() < rate {
						return errBefore
					}
					return pass
				}
			}
			c := benchCoordinator(b, nodes)
			ids := func(yield func(GroupID) bool) {
				for i := range b.N {
					if !yield(GroupID(fmt.Sprintf("g%d", i))) {
						return
					}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			rep := c.Bulk(context.Background(), OpCreate, iter.Seq[GroupID](ids), DefaultConcurrency, nil)
			elapsed := time.Since(start)
			b.StopTimer()
			if rep.Requested != b.N {
				b.Fatalf("requested %d, want %d", rep.Requested, b.N)
			}
			b.ReportMetric(float64(rep.Requests)/float64(b.N), "requests/op")
			b.ReportMetric(float64(rep.Retries)/float64(b.N), "retries/op")
			b.ReportMetric(100*float64(rep.Done)/float64(b.N), "%done")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
		})
	}
}

// BenchmarkDelete is the cost of a fault-free delete: one Remove per node
// on nodes that serve it, a read and a conditional delete per node on nodes
// that do not.
func BenchmarkDelete(b *testing.B) {
	for _, removes := range []bool{true, false} {
		b.Run(map[bool]string{true: "remove", false: "read-first"}[removes], func(b *testing.B) {
			nodes := newCluster(3)
			for _, n := range nodes {
				n.removes = removes
			}
			c := benchCoordinator(b, nodes)
			for i := range b.N {
				for _, n := range nodes {
					n.put(GroupID(fmt.Sprintf("g%d", i)), "1.000001")
				}
			}
			var next atomic.Int64
			var requests atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					res, _ := c.Delete(ctx, GroupID(fmt.Sprintf("g%d", next.Add(1)-1)))
					if res.Outcome != Done {
						b.Errorf("delete: %v %v", res.Outcome, res.Err)
						return
					}
					requests.Add(int64(res.Requests))
				}
			})
			b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/op")
		})
	}
}

// BenchmarkBulkDelete is BenchmarkBulkCreate's job for deletes of ids every
// node holds, at RANDOM_BEHAVIOR 0.2, without a read (remove) and with one
// (read-first): a delete without a read costs what a create does, N/(1-p).
func BenchmarkBulkDelete(b *testing.B) {
	for _, removes := range []bool{true, false} {
		b.Run(map[bool]string{true: "remove", false: "read-first"}[removes]+"/error_rate=0.2", func(b *testing.B) {
			b.Logf("seed %d", benchSeed)
			rng := rand.New(NewLockedSource(benchSeed))
			nodes := newCluster(3)
			for _, n := range nodes {
				n.removes = removes
				for i := range b.N {
					n.put(GroupID(fmt.Sprintf("g%d", i)), "1.000001")
				}
				n.fn = func(call) fault {
					if rng.Float64() < 0.2 {
						return errBefore
					}
					return pass
				}
			}
			c := benchCoordinator(b, nodes)
			ids := func(yield func(GroupID) bool) {
				for i := range b.N {
					if !yield(GroupID(fmt.Sprintf("g%d", i))) {
						return
					}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			rep := c.Bulk(context.Background(), OpDelete, iter.Seq[GroupID](ids), DefaultConcurrency, nil)
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(rep.Requests)/float64(b.N), "requests/op")
			b.ReportMetric(100*float64(rep.Done)/float64(b.N), "%done")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
		})
	}
}
