package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/reliable-ops/rops/core"
)

// maxListed bounds the ids a text report lists.
const maxListed = 20

// writeJSON writes v as one JSON object on one line: every command's -o
// json output is JSON Lines, for jq and line-oriented tools.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// newColumns returns a writer that lines up the tab-separated cells of
// the lines written to it: each column is as wide as its longest cell and
// one space, and at least minWidth. Nothing reaches w before Flush.
func newColumns(w io.Writer, minWidth int) *tabwriter.Writer {
	return tabwriter.NewWriter(w, minWidth, 0, 1, ' ', 0)
}

// round rounds x to places decimals, so that JSON carries 0.823, not
// 0.8231234120000001.
func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// printReport prints a job's report as text or JSON; notStarted counts
// the ids the job was given but never started (it stopped early), and
// trips the HTTP round trips that carried its requests (0: none went over
// HTTP).
func printReport(w io.Writer, format string, rep core.Report, notStarted int, trips int64) error {
	if format == "json" {
		rep.Seconds = round(rep.Seconds, 3)
		return writeJSON(w, jobJSON{Report: rep, NotStarted: notStarted, RoundTrips: trips})
	}
	ops := 0.0
	if rep.Seconds > 0 {
		ops = float64(rep.Requested) / rep.Seconds
	}
	printSummary(w, rep, notStarted)
	fmt.Fprintf(w, "%d requests (%d retries", rep.Requests, rep.Retries)
	if trips > 0 {
		// Batches carry many requests in one round trip.
		fmt.Fprintf(w, ", %d HTTP round trips", trips)
	}
	fmt.Fprintf(w, ") in %.2fs, %.0f ops/s\n", rep.Seconds, ops)
	if len(rep.RolledBackIDs) > 0 {
		fmt.Fprintf(w, "rolled back: %s (run the job again to retry them)\n", listIDs(rep.RolledBackIDs))
	}
	if len(rep.PendingIDs) > 0 {
		fmt.Fprintf(w, "pending: %s (nodes may disagree on these until they answer again)\n", listIDs(rep.PendingIDs))
	}
	return nil
}

// jobJSON is a job's report as -o json prints it.
type jobJSON struct {
	core.Report
	// NotStarted counts the ids never started: the job stopped early.
	NotStarted int `json:"not_started,omitempty"`
	// RoundTrips counts the HTTP requests that carried the job's
	// requests to the nodes, fewer than them where batches carried many.
	RoundTrips int64 `json:"round_trips,omitempty"`
}

// printSummary prints a report's first line, the counts by outcome: all
// that -q prints of a job.
func printSummary(w io.Writer, rep core.Report, notStarted int) {
	fmt.Fprintf(w, "%s: %d requested, %d done, %d unchanged, %d rolled back, %d pending",
		rep.Command, rep.Requested, rep.Done, rep.Unchanged, rep.RolledBack, rep.Pending)
	if notStarted > 0 {
		fmt.Fprintf(w, ", %d not started", notStarted)
	}
	fmt.Fprintln(w)
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

// progress shows a bulk job's progress on stderr when it is a terminal:
// percent, count, rate, elapsed and ETA, and the operations rolled back and
// pending so far, at most ten times a second; it clears the line at the end.
// It uses schollz/progressbar, which writes to any io.Writer (so tests render
// it into a buffer) and has no goroutine of its own for a bar of known length.
type progress struct {
	bar                 *progressbar.ProgressBar // nil: show nothing
	op                  core.Op
	color               bool
	rolledBack, pending int
}

// progressConfig says whether and how a job shows its progress.
type progressConfig struct {
	show     bool          // stderr is a terminal, without -q or -v
	color    bool          // colours allowed: NO_COLOR is not set
	throttle time.Duration // least time between two renders
}

// terminalProgress is the progress configuration of a job writing to w;
// hide is set by -q, and by -v, whose log lines the bar would overwrite.
func terminalProgress(w io.Writer, hide bool) progressConfig {
	return progressConfig{
		show:     !hide && isTerminal(w),
		color:    os.Getenv("NO_COLOR") == "", // https://no-color.org
		throttle: 100 * time.Millisecond,
	}
}

func newProgress(w io.Writer, cfg progressConfig, op core.Op, total int) *progress {
	p := &progress{op: op, color: cfg.color}
	if !cfg.show || total <= 0 {
		return p
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(p.description()),
		progressbar.OptionEnableColorCodes(cfg.color),
		progressbar.OptionSetWidth(20),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("ops"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(cfg.throttle),
		progressbar.OptionClearOnFinish(),
	)
	return p
}

// description is the bar's label: the operation and, once there are any,
// the operations rolled back and pending so far.
func (p *progress) description() string {
	d := string(p.op)
	if p.rolledBack == 0 && p.pending == 0 {
		return d
	}
	counts := fmt.Sprintf("%d rolled back, %d pending", p.rolledBack, p.pending)
	if p.color {
		counts = "[yellow]" + counts + "[reset]"
	}
	return d + " (" + counts + ")"
}

func (p *progress) add(res core.Result) {
	if p.bar == nil {
		return
	}
	switch res.Outcome {
	case core.RolledBack:
		p.rolledBack++
		p.bar.Describe(p.description())
	case core.Pending:
		p.pending++
		p.bar.Describe(p.description())
	}
	_ = p.bar.Add(1)
}

// done clears the bar's line, so that the report starts on a clean line.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Exit()
		_ = p.bar.Clear()
	}
}
