package core

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
)

func TestStats(t *testing.T) {
	// ids returns g00..g(n-1) held with token "T".
	ids := func(from, to int) map[GroupID]Token {
		m := map[GroupID]Token{}
		for i := from; i < to; i++ {
			m[GroupID(fmt.Sprintf("g%02d", i))] = "T"
		}
		return m
	}
	union := func(ms ...map[GroupID]Token) map[GroupID]Token {
		out := map[GroupID]Token{}
		for _, m := range ms {
			maps.Copy(out, m)
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		before     holdings
		setup      func(e *env)
		opts       StatsOptions
		counts     []int
		consistent bool
		divergent  []Divergence // nil: only the count is checked
		count      int          // DivergentCount
		lists      []int        // List calls per node; nil: not checked
		settled    int          // ids divergent when listed, not when read again
		wantErr    string       // substring of the error; "" for none
	}{{
		name:       "empty nodes agree",
		counts:     []int{0, 0, 0},
		consistent: true,
		divergent:  []Divergence{},
		lists:      []int{1, 1, 1},
	}, {
		name:       "same ids, tokens may differ",
		before:     holdings{"node01": {"a": "1", "b": "1"}, "node02": {"a": "2", "b": "2"}, "node03": {"a": "1", "b": "3"}},
		counts:     []int{2, 2, 2},
		consistent: true,
		divergent:  []Divergence{},
	}, {
		name: "divergent ids with their holders",
		before: holdings{
			"node01": {"a": "1", "b": "1", "d": "1"},
			"node02": {"a": "2", "c": "2", "d": "2"},
			"node03": {"a": "3", "d": "3", "e": "3"},
		},
		counts: []int{3, 3, 3},
		divergent: []Divergence{
			{ID: "b", On: map[string]Token{"node01": "1"}},
			{ID: "c", On: map[string]Token{"node02": "2"}},
			{ID: "e", On: map[string]Token{"node03": "3"}},
		},
		count: 3,
	}, {
		name: "held by two of three",
		before: holdings{
			"node01": {"x": "1"}, "node02": {"x": "2"},
		},
		counts:    []int{1, 1, 0},
		divergent: []Divergence{{ID: "x", On: map[string]Token{"node01": "1", "node02": "2"}}},
		count:     1,
	}, {
		// 23 ids everywhere plus 5 only on node02, with pages of 2: node01
		// and node03 need 11 full pages and a short one, node02 14 full and
		// an empty one.
		name: "many pages",
		before: holdings{
			"node01": ids(0, 23),
			"node02": union(ids(0, 23), ids(50, 55)),
			"node03": ids(0, 23),
		},
		opts:   StatsOptions{PageSize: 2},
		counts: []int{23, 28, 23},
		count:  5,
		lists:  []int{12, 15, 12},
	}, {
		name: "divergent list bounded, count complete",
		before: holdings{
			"node01": ids(0, 40),
			"node02": ids(0, 30),
			"node03": ids(0, 40),
		},
		opts:   StatsOptions{PageSize: 3, MaxDivergent: 4},
		counts: []int{40, 30, 40},
		divergent: []Divergence{
			{ID: "g30", On: map[string]Token{"node01": "T", "node03": "T"}},
			{ID: "g31", On: map[string]Token{"node01": "T", "node03": "T"}},
			{ID: "g32", On: map[string]Token{"node01": "T", "node03": "T"}},
			{ID: "g33", On: map[string]Token{"node01": "T", "node03": "T"}},
		},
		count: 10,
	}, {
		name:      "negative MaxDivergent lists none",
		before:    holdings{"node01": ids(0, 10)},
		opts:      StatsOptions{MaxDivergent: -1},
		counts:    []int{10, 0, 0},
		divergent: []Divergence{},
		count:     10,
	}, {
		name:       "default MaxDivergent is 100",
		before:     holdings{"node01": ids(0, 150)},
		opts:       StatsOptions{PageSize: 7},
		counts:     []int{150, 0, 0},
		consistent: false,
		count:      150,
	}, {
		name:       "transient List failures are retried",
		before:     holdings{"node01": ids(0, 3), "node02": ids(0, 3), "node03": ids(0, 3)},
		setup:      script("node02", "List", errBefore, errAfter, hangBefore),
		counts:     []int{3, 3, 3},
		consistent: true,
		divergent:  []Divergence{},
		lists:      []int{1, 4, 1},
	}, {
		// A create under way: node03 gets x between the listing and the
		// read again.
		name:       "an id completed by the time it is read again is not divergent",
		before:     holdings{"node01": {"x": "1"}, "node02": {"x": "1"}},
		setup:      onReread("node03", "x", func(n *fakeNode) { n.put("x", "1") }),
		counts:     []int{1, 1, 1},
		consistent: true,
		divergent:  []Divergence{},
		settled:    1,
	}, {
		// A create rolled back, or a delete under way.
		name:       "an id gone by the time it is read again is not divergent",
		before:     holdings{"node01": {"x": "1"}},
		setup:      onReread("node01", "x", func(n *fakeNode) { n.remove("x") }),
		counts:     []int{0, 0, 0},
		consistent: true,
		divergent:  []Divergence{},
		settled:    1,
	}, {
		name:      "an id still divergent is reported as read again",
		before:    holdings{"node01": {"x": "1"}},
		setup:     onReread("node02", "x", func(n *fakeNode) { n.put("x", "1") }),
		counts:    []int{1, 1, 0},
		divergent: []Divergence{{ID: "x", On: map[string]Token{"node01": "1", "node02": "1"}}},
		count:     1,
	}, {
		name:   "only the first Reread ids are read again",
		before: holdings{"node01": {"x": "1", "y": "1"}, "node02": {"x": "1", "y": "1"}},
		setup: func(e *env) {
			onReread("node03", "x", func(n *fakeNode) { n.put("x", "1"); n.put("y", "1") })(e)
		},
		opts:      StatsOptions{Reread: 1},
		counts:    []int{2, 2, 1},
		divergent: []Divergence{{ID: "y", On: map[string]Token{"node01": "1", "node02": "1"}}},
		count:     1,
		settled:   1,
	}, {
		name:      "negative Reread reads nothing again",
		before:    holdings{"node01": {"x": "1"}, "node02": {"x": "1"}},
		setup:     onReread("node03", "x", func(n *fakeNode) { n.put("x", "1") }),
		opts:      StatsOptions{Reread: -1},
		counts:    []int{1, 1, 0},
		divergent: []Divergence{{ID: "x", On: map[string]Token{"node01": "1", "node02": "1"}}},
		count:     1,
	}, {
		name:   "an id a node cannot be read again for is reported as listed",
		before: holdings{"node01": {"x": "1"}, "node02": {"x": "1"}},
		setup: func(e *env) {
			e.nodes[2].fn = func(c call) fault {
				if c.Method == "Get" {
					return down
				}
				return pass
			}
			onReread("node01", "x", func(n *fakeNode) { n.remove("x") })(e)
		},
		counts:    []int{1, 1, 0},
		divergent: []Divergence{{ID: "x", On: map[string]Token{"node01": "1", "node02": "1"}}},
		count:     1,
	}, {
		name:    "a node that cannot be listed fails the call",
		setup:   func(e *env) { e.nodes[2].down = true },
		wantErr: "cannot list the records of node03",
	}, {
		name:    "a node whose pages do not advance fails the call",
		before:  holdings{"node01": ids(0, 5)},
		setup:   func(e *env) { e.cfg.Nodes[0] = stuckLister{e.nodes[0]} },
		opts:    StatsOptions{PageSize: 2},
		wantErr: "records must come sorted by id",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				e.load(tc.before)
				if tc.setup != nil {
					tc.setup(e)
				}
				st, err := e.coordinator().Stats(t.Context(), tc.opts)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("err=%v, want one saying %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("Stats: %v", err)
				}
				var counts []int
				for i, nc := range st.Nodes {
					counts = append(counts, nc.Count)
					if got, want := nc.Node, e.nodes[i].name; got != want {
						t.Errorf("node %d is %s, want %s", i, got, want)
					}
				}
				if !slices.Equal(counts, tc.counts) {
					t.Errorf("counts=%v, want %v", counts, tc.counts)
				}
				if got, want := st.Consistent, tc.consistent; got != want {
					t.Errorf("consistent=%v, want %v", got, want)
				}
				if got, want := st.DivergentCount, tc.count; got != want {
					t.Errorf("divergent count=%d, want %d", got, want)
				}
				if st.Divergent == nil {
					t.Errorf("divergent is nil, want a list (empty encodes as [])")
				}
				bound := cmpOr(tc.opts.MaxDivergent, DefaultMaxDivergent)
				if got, want := len(st.Divergent), min(tc.count, max(bound, 0)); got != want {
					t.Errorf("%d divergent listed, want %d", got, want)
				}
				if tc.divergent != nil {
					if got, want := fmt.Sprint(st.Divergent), fmt.Sprint(tc.divergent); got != want {
						t.Errorf("divergent=%s, want %s", got, want)
					}
				}
				if !slices.IsSortedFunc(st.Divergent, func(a, b Divergence) int { return strings.Compare(string(a.ID), string(b.ID)) }) {
					t.Errorf("divergent ids not in id order: %v", st.Divergent)
				}
				if got, want := st.Settled, tc.settled; got != want {
					t.Errorf("settled=%d, want %d", got, want)
				}
				if tc.lists != nil {
					var lists []int
					for _, n := range e.nodes {
						lists = append(lists, n.callCount("List"))
					}
					if !slices.Equal(lists, tc.lists) {
						t.Errorf("List calls=%v, want %v", lists, tc.lists)
					}
				}
			})
		})
	}
}

// onReread returns a setup that runs change on node when it is first asked
// for id, as Stats reads a divergent id again after the listing: an
// operation under way changes the node in between.
func onReread(node string, id GroupID, change func(n *fakeNode)) func(e *env) {
	return func(e *env) {
		n := e.nodes.byName(node)
		n.onCall = func(c call) {
			if c.Method == "Get" && c.ID == id && c.KID == 1 {
				change(n)
			}
		}
	}
}

// remove deletes id from n, as a write n received would.
func (n *fakeNode) remove(id GroupID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.recs, id)
}

// stuckLister is a node whose List ignores after: its first page comes back
// again and again.
type stuckLister struct{ *fakeNode }

func (s stuckLister) List(ctx context.Context, after GroupID, limit int) ([]Record, error) {
	return s.fakeNode.List(ctx, "", limit)
}

// noLister is a node that cannot list its records, like the original server.
type noLister struct{ *fakeNode }

func (n noLister) List(ctx context.Context, after GroupID, limit int) ([]Record, error) {
	n.fakeNode.next("List", after)
	return nil, &Error{Code: EUnsupported, Message: n.name + ": no /v1/groups"}
}

func TestStatsCountsOnly(t *testing.T) {
	for _, tc := range []struct {
		name       string
		before     holdings
		consistent bool
		counts     []int
	}{
		{"equal counts", holdings{"node01": {"a": "1"}, "node02": {"b": "1"}, "node03": {"c": "1"}}, true, []int{1, 1, 1}},
		{"different counts", holdings{"node01": {"a": "1", "b": "1"}, "node02": {"a": "1"}}, false, []int{2, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				e.load(tc.before)
				e.cfg.Nodes[1] = noLister{e.nodes[1]}
				st, err := e.coordinator().Stats(t.Context(), StatsOptions{})
				if err != nil {
					t.Fatalf("Stats: %v", err)
				}
				if !st.CountsOnly {
					t.Errorf("counts only=false, want true")
				}
				if got, want := st.Consistent, tc.consistent; got != want {
					t.Errorf("consistent=%v, want %v", got, want)
				}
				var counts []int
				for _, nc := range st.Nodes {
					counts = append(counts, nc.Count)
				}
				if !slices.Equal(counts, tc.counts) {
					t.Errorf("counts=%v, want %v", counts, tc.counts)
				}
			})
		})
	}
}
