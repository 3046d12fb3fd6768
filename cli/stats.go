package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/reliable-ops/rops/core"
)

// StatsCmd shows what each node holds.
type StatsCmd struct {
	Diff bool `help:"List the ids that are not on every node, and where each one is."`
}

// statsJSON is the JSON shape of stats: the original's [consistent, counts]
// as an object.
type statsJSON struct {
	Consistent     bool             `json:"consistent"`
	Nodes          map[string]int   `json:"nodes"`
	Divergent      []divergenceJSON `json:"divergent"`
	DivergentCount int              `json:"divergent_count"`
	// CountsOnly: a node cannot list its ids (the original server), so
	// only the counts were compared.
	CountsOnly bool `json:"counts_only,omitempty"`
	// Settled: ids listed on some nodes only that agreed when read again.
	Settled int `json:"settled,omitempty"`
}

type divergenceJSON struct {
	ID      core.GroupID `json:"id"`
	On      []string     `json:"on"`
	Missing []string     `json:"missing"`
}

// Run prints the stats; the exit code is 3 if the nodes disagree, or
// cannot be read, and ExitUnreachable if no node answers. An id the
// listing finds on some nodes only is read again from every node (the first
// 1000 such ids) before it counts: a job running meanwhile moves ids.
func (c *StatsCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	st, err := cl.Stats(ctx, core.StatsOptions{})
	if err != nil {
		err = unreachableError(ctx, cl.Nodes(), err)
		return &exitError{code: unreachableCode(err, ExitInconsistent), err: err}
	}
	out := statsJSON{Consistent: st.Consistent, Nodes: map[string]int{}, Divergent: []divergenceJSON{}, DivergentCount: st.DivergentCount, CountsOnly: st.CountsOnly, Settled: st.Settled}
	all := make([]string, len(st.Nodes))
	for i, n := range st.Nodes {
		out.Nodes[n.Node] = n.Count
		all[i] = n.Node
	}
	for _, d := range st.Divergent {
		on := slices.Sorted(maps.Keys(d.On))
		missing := slices.DeleteFunc(slices.Clone(all), func(n string) bool { _, ok := d.On[n]; return ok })
		out.Divergent = append(out.Divergent, divergenceJSON{ID: d.ID, On: on, Missing: missing})
	}
	if g.Output == "json" {
		err = writeJSON(io.Stdout, out)
	} else {
		printStats(io.Stdout, out, st.Nodes, c.Diff)
	}
	if err != nil {
		return err
	}
	if !st.Consistent {
		return &exitError{code: ExitInconsistent}
	}
	return nil
}

func printStats(w io.Writer, st statsJSON, nodes []core.NodeCount, diff bool) {
	tw := newColumns(w, len("node01   "))
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%d\n", n.Node, n.Count)
	}
	tw.Flush()
	if st.Settled > 0 {
		fmt.Fprintf(w, "(%d ids changed while the nodes were listed: read again, every node agrees on them)\n", st.Settled)
	}
	switch {
	case st.CountsOnly && st.Consistent:
		fmt.Fprintln(w, "consistent counts (a node cannot list its ids, so only the counts were compared)")
		return
	case st.CountsOnly:
		fmt.Fprintln(w, "inconsistent: the nodes hold different numbers of records (a node cannot list its ids, so only the counts were compared)")
		return
	case st.Consistent:
		fmt.Fprintln(w, "consistent: every node holds the same ids")
		return
	}
	fmt.Fprintf(w, "inconsistent: %d ids are not on every node", st.DivergentCount)
	if !diff {
		fmt.Fprintln(w, " (see them with stats --diff)")
		return
	}
	fmt.Fprintln(w)
	for _, d := range st.Divergent {
		fmt.Fprintf(w, "  %s on %s, missing on %s\n", d.ID, strings.Join(d.On, ", "), strings.Join(d.Missing, ", "))
	}
	if n := st.DivergentCount - len(st.Divergent); n > 0 {
		fmt.Fprintf(w, "  and %d more\n", n)
	}
}
