package core_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core"
)

// mapNode is the smallest Node: records in a map. A real Node talks to a
// server and maps its failures onto core's error classes (ETransient,
// EUnavailable, ERejected); the coordinator decides what to do from the class
// alone.
type mapNode struct {
	name string
	mu   sync.Mutex
	recs map[core.GroupID]core.Token
	// lose, if set, makes the next Create apply and then fail with 500: the
	// acknowledgement is lost.
	lose bool
}

var _ core.Node = (*mapNode)(nil)

func newMapNode(name string) *mapNode {
	return &mapNode{name: name, recs: map[core.GroupID]core.Token{}}
}

func (n *mapNode) Name() string { return n.name }

func (n *mapNode) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.recs[id]; ok && t != token {
		return core.Errorf(core.EExists, "%s: group %q exists", n.name, id)
	}
	n.recs[id] = token
	if n.lose {
		n.lose = false
		return &core.Error{Code: core.ETransient, Message: n.name + ": 500 Internal Server Error"}
	}
	return nil
}

func (n *mapNode) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.recs[id]; !ok || token != "" && t != token {
		return core.Errorf(core.ENotFound, "%s: no group %q", n.name, id)
	}
	delete(n.recs, id)
	return nil
}

func (n *mapNode) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.recs[id]
	if !ok {
		return core.Record{}, core.Errorf(core.ENotFound, "%s: no group %q", n.name, id)
	}
	return core.Record{ID: id, Token: t}, nil
}

func (n *mapNode) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := slices.Sorted(maps.Keys(n.recs))
	i := sort.Search(len(ids), func(i int) bool { return ids[i] > after })
	var page []core.Record
	for _, id := range ids[i:min(i+limit, len(ids))] {
		page = append(page, core.Record{ID: id, Token: n.recs[id]})
	}
	return page, nil
}

func (n *mapNode) Count(ctx context.Context) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.recs), nil
}

// Embedding core: give the coordinator your own nodes, then create, inspect
// and delete group records on all of them as one operation each.
func Example() {
	node01, node02, node03 := newMapNode("node01"), newMapNode("node02"), newMapNode("node03")
	c, err := core.New(core.Config{Nodes: []core.Node{node01, node02, node03}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	res, err := c.Create(ctx, "group-1")
	fmt.Println("create:", res.Outcome, err, "requests:", res.Requests)

	res, _ = c.Create(ctx, "group-1")
	fmt.Println("create again:", res.Outcome)

	node02.Delete(ctx, "group-1", "") // someone removes it behind our back
	st, _ := c.Stats(ctx, core.StatsOptions{})
	fmt.Println("consistent:", st.Consistent, st.Nodes)
	for _, d := range st.Divergent {
		fmt.Println("divergent:", d.ID, "on", slices.Sorted(maps.Keys(d.On)))
	}

	res, _ = c.Delete(ctx, "group-1")
	fmt.Println("delete:", res.Outcome, "requests:", res.Requests)
	for _, n := range res.Nodes {
		fmt.Println(" ", n.Node, n.State)
	}
	// Output:
	// create: done <nil> requests: 3
	// create again: unchanged
	// consistent: false [{node01 1} {node02 0} {node03 1}]
	// divergent: group-1 on [node01 node03]
	// delete: done requests: 5
	//   node01 deleted
	//   node02 absent
	//   node03 deleted
}

// A lost acknowledgement is retried; the node treats the retry, which carries
// the same token, as a replay. NewBackoff here retries at once; the default
// backs off exponentially from 10ms.
func ExampleCoordinator_Create() {
	node02 := newMapNode("node02")
	node02.lose = true
	c, _ := core.New(core.Config{
		Nodes:      []core.Node{newMapNode("node01"), node02, newMapNode("node03")},
		NewBackoff: func() core.Backoff { return core.Exponential(0, 0, 3, nil) },
	})
	res, err := c.Create(context.Background(), "group-1")
	fmt.Println(res.Outcome, err)
	fmt.Println("requests:", res.Requests, "retries:", res.Retries)
	// Output:
	// done <nil>
	// requests: 4 retries: 1
}

// Bulk runs many operations on a bounded pool and sums them up.
func ExampleCoordinator_Bulk() {
	c, _ := core.New(core.Config{Nodes: []core.Node{newMapNode("node01"), newMapNode("node02"), newMapNode("node03")}})
	ctx := context.Background()
	c.Create(ctx, "g2")
	ids := slices.Values([]core.GroupID{"g1", "g2", "g3", "bad/id"})
	rep := c.Bulk(ctx, core.OpCreate, ids, 4, nil)
	fmt.Printf("requested %d: done %d, unchanged %d, rolled back %v, pending %d; %d requests\n",
		rep.Requested, rep.Done, rep.Unchanged, rep.RolledBackIDs, rep.Pending, rep.Requests)
	// Output:
	// requested 4: done 2, unchanged 1, rolled back [bad/id], pending 0; 9 requests
}

// ParseGroupID says what is wrong with an id.
func ExampleParseGroupID() {
	for _, s := range []string{"group-1", "a/b", ""} {
		id, err := core.ParseGroupID(s)
		fmt.Printf("%q %v\n", id, err)
	}
	// Output:
	// "group-1" <nil>
	// "" invalid group id "a/b": '/' at byte 1 is not allowed (ids travel in URL paths)
	// "" invalid group id: it is empty; give 1 to 128 printable characters
}

// Exponential doubles its delay up to a cap; with an RNG each delay is drawn
// from its upper half.
func ExampleExponential() {
	b := core.Exponential(10*time.Millisecond, 50*time.Millisecond, 5, nil)
	for {
		d, stop := b.Next()
		if stop {
			break
		}
		fmt.Print(d, " ")
	}
	fmt.Println()
	// Output:
	// 10ms 20ms 40ms 50ms 50ms
}

// Repair fixes the ids that some nodes hold and others do not, through the
// same reliable create and delete; Plan is its dry run.
func ExampleCoordinator_Repair() {
	node01, node02, node03 := newMapNode("node01"), newMapNode("node02"), newMapNode("node03")
	c, _ := core.New(core.Config{Nodes: []core.Node{node01, node02, node03}})
	ctx := context.Background()
	c.Create(ctx, "g1")
	node03.Delete(ctx, "g1", "")         // lost on one node: the majority holds it
	node01.Create(ctx, "g2", "1.000001") // written to one node only

	show := func(f core.Fix) error {
		fmt.Println("plan:", f.Op, f.ID, f.Nodes)
		return nil
	}
	c.Plan(ctx, core.PolicyMajority, show)
	rep, err := c.Repair(ctx, core.PolicyMajority, 0, nil)
	fmt.Printf("repair: done %d, rolled back %d, pending %d, %v\n", rep.Done, rep.RolledBack, rep.Pending, err)
	_, err = node03.Get(ctx, "g1")
	fmt.Println("node03 holds g1:", err == nil)
	c.Plan(ctx, core.PolicyMajority, show) // nothing left to fix
	// Output:
	// plan: create g1 [node03]
	// plan: delete g2 [node01]
	// repair: done 2, rolled back 0, pending 0, <nil>
	// node03 holds g1: true
}
