package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

// sliceNode is a read-only Node over records sorted by id, listed in O(log n)
// per page, so a benchmark of Stats measures the merge, not the node.
type sliceNode struct {
	name string
	recs []Record
}

func (n *sliceNode) Name() string { return n.name }

func (n *sliceNode) Create(context.Context, GroupID, Token) error {
	return Errorf(EUnsupported, "read-only")
}

func (n *sliceNode) Delete(context.Context, GroupID, Token) error {
	return Errorf(EUnsupported, "read-only")
}

func (n *sliceNode) Get(_ context.Context, id GroupID) (Record, error) {
	i := sort.Search(len(n.recs), func(i int) bool { return n.recs[i].ID >= id })
	if i < len(n.recs) && n.recs[i].ID == id {
		return n.recs[i], nil
	}
	return Record{}, Errorf(ENotFound, "no %s", id)
}

func (n *sliceNode) List(_ context.Context, after GroupID, limit int) ([]Record, error) {
	i := sort.Search(len(n.recs), func(i int) bool { return n.recs[i].ID > after })
	return n.recs[i:min(i+limit, len(n.recs))], nil
}

func (n *sliceNode) Count(context.Context) (int, error) { return len(n.recs), nil }

// scanSliceNode is a sliceNode that streams (Scanner).
type scanSliceNode struct{ *sliceNode }

func (n scanSliceNode) Scan(_ context.Context, after GroupID, fn func(Record) bool) error {
	i := sort.Search(len(n.recs), func(i int) bool { return n.recs[i].ID > after })
	for _, rec := range n.recs[i:] {
		if !fn(rec) {
			break
		}
	}
	return nil
}

// BenchmarkStats is Stats' own cost over three nodes that hold the same
// 100,000 ids, but one id missing on one node: per listed id, the merge,
// with nodes read by List pages and by scans (Scanner).
func BenchmarkStats(b *testing.B) {
	const size = 100_000
	recs := make([]Record, size)
	for i := range recs {
		recs[i] = Record{ID: GroupID(fmt.Sprintf("g%07d", i)), Token: "1764646000000000000"}
	}
	slices := []*sliceNode{
		{name: "node01", recs: recs},
		{name: "node02", recs: recs},
		{name: "node03", recs: append(recs[:size/2:size/2], recs[size/2+1:]...)},
	}
	for _, mode := range []string{"list", "scan"} {
		b.Run(mode, func(b *testing.B) {
			nodes := make([]Node, len(slices))
			for i, n := range slices {
				nodes[i] = n
				if mode == "scan" {
					nodes[i] = scanSliceNode{n}
				}
			}
			noWait := func() Backoff { return Exponential(0, 0, DefaultRetries, nil) }
			c, err := New(Config{Nodes: nodes, Journal: &fakeJournal{}, Rand: rand.New(NewLockedSource(benchSeed)), NewBackoff: noWait})
			if err != nil {
				b.Fatalf("New: %v", err)
			}
			b.ReportAllocs()
			for b.Loop() {
				st, err := c.Stats(context.Background(), StatsOptions{})
				if err != nil {
					b.Fatalf("Stats: %v", err)
				}
				if got, want := st.DivergentCount, 1; got != want {
					b.Fatalf("DivergentCount=%d, want %d", got, want)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/id")
		})
	}
}
