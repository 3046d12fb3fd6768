package memory_test

import (
	"context"
	"fmt"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/memory"
)

// The short path to an embedded cluster: three in-memory stores, each
// behind the faulty node wrapper (here 20% of requests fail, as the
// original's RANDOM_BEHAVIOR=0.2), under one coordinator. Every create is
// all or nothing, whatever fails.
func Example() {
	var cluster []core.Node
	for i, name := range []string{"node01", "node02", "node03"} {
		f := faults.Faults{ErrorRate: 0.2}
		cluster = append(cluster, faults.New(name, memory.New(), faults.Options{Faults: f, Seed: uint64(i + 1)}))
	}
	c, err := core.New(core.Config{Nodes: cluster})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, id := range []core.GroupID{"a", "b", "c"} {
		res, err := c.Create(ctx, id)
		fmt.Println(id, res.Outcome, err)
	}
	stats, err := c.Stats(ctx, core.StatsOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("consistent:", stats.Consistent, stats.Nodes[0].Count)
	// Output:
	// a done <nil>
	// b done <nil>
	// c done <nil>
	// consistent: true 3
}
