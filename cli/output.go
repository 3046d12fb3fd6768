package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/reliable-ops/rops/core"
)

// maxListed bounds the ids a text report lists.
const maxListed = 20

// writeJSON writes v as one JSON object on one line: every command's -o
// json output is JSON Lines, for jq and line-oriented tools.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// round rounds x to places decimals, so that JSON carries 0.823, not
// 0.8231234120000001.
func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// printReport prints a job's report as text or JSON.
func printReport(w io.Writer, format string, rep core.Report) error {
	if format == "json" {
		rep.Seconds = round(rep.Seconds, 3)
		return writeJSON(w, rep)
	}
	ops := 0.0
	if rep.Seconds > 0 {
		ops = float64(rep.Requested) / rep.Seconds
	}
	fmt.Fprintf(w, "%s: %d requested, %d done, %d unchanged, %d rolled back, %d pending\n",
		rep.Command, rep.Requested, rep.Done, rep.Unchanged, rep.RolledBack, rep.Pending)
	fmt.Fprintf(w, "%d requests (%d retries) in %.2fs, %.0f ops/s\n", rep.Requests, rep.Retries, rep.Seconds, ops)
	if len(rep.RolledBackIDs) > 0 {
		fmt.Fprintf(w, "rolled back: %s (run the job again to retry them)\n", listIDs(rep.RolledBackIDs))
	}
	if len(rep.PendingIDs) > 0 {
		fmt.Fprintf(w, "pending: %s (nodes may disagree on these until they answer again)\n", listIDs(rep.PendingIDs))
	}
	return nil
}

func listIDs(ids []core.GroupID) string {
	var b strings.Builder
	for i, id := range ids {
		if i == maxListed {
			fmt.Fprintf(&b, " and %d more", len(ids)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(id))
	}
	return b.String()
}

// printResult prints one operation's result as a short sentence.
func printResult(w io.Writer, res core.Result) {
	verb := map[core.Op]string{core.OpCreate: "created", core.OpDelete: "deleted"}[res.Op]
	switch res.Outcome {
	case core.Done:
		fmt.Fprintf(w, "%s %s on %s\n", verb, res.ID, nodeList(res.Nodes))
	case core.Unchanged:
		state := "on every node already"
		if res.Op == core.OpDelete {
			state = "on no node already"
		}
		fmt.Fprintf(w, "%s: unchanged, %s\n", res.ID, state)
	case core.RolledBack:
		fmt.Fprintf(w, "%s %s: rolled back, every node is as it was: %v\n", res.Op, res.ID, res.Err)
	case core.Pending:
		fmt.Fprintf(w, "%s %s: pending, nodes may disagree until they answer again: %v\n", res.Op, res.ID, res.Err)
	}
}

func nodeList(nodes []core.NodeResult) string {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Node
	}
	return strings.Join(names, ", ")
}
