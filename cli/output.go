package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
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
	return printJob(w, format, rep, jobExtras{notStarted: notStarted, trips: trips})
}

// jobExtras is what a job's report says beyond its core.Report.
type jobExtras struct {
	id          core.GroupID // the id of create-one or delete-one; "" for a bulk job
	notStarted  int          // ids given but never started: the job stopped early
	trips       int64        // HTTP round trips (0: none went over HTTP)
	why         *causes      // why operations were rolled back or are pending; nil: not known
	interrupted bool         // the job was interrupted (Ctrl-C): its pending ids were cut off, not the nodes' doing
}

// printJob prints a job's report as text or JSON, with its extras.
func printJob(w io.Writer, format string, rep core.Report, x jobExtras) error {
	if format == "json" {
		rep.Seconds = round(rep.Seconds, 3)
		j := jobJSON{ID: x.id, Report: rep, NotStarted: x.notStarted, RoundTrips: x.trips, Interrupted: x.interrupted}
		if x.why != nil {
			j.Causes = x.why.list
		}
		return writeJSON(w, j)
	}
	ops := 0.0
	if rep.Seconds > 0 {
		ops = float64(rep.Requested) / rep.Seconds
	}
	printSummary(w, rep, x.notStarted)
	fmt.Fprintf(w, "%d requests (%d retries", rep.Requests, rep.Retries)
	if x.trips > 0 {
		// Batches carry many requests in one round trip.
		fmt.Fprintf(w, ", %d HTTP round trips", x.trips)
	}
	fmt.Fprintf(w, ") in %.2fs, %.0f ops/s\n", rep.Seconds, ops)
	if len(rep.RolledBackIDs) > 0 {
		fmt.Fprintf(w, "rolled back: %s (run the job again to retry them)\n", listIDs(rep.RolledBackIDs))
		if s := x.why.summary(core.RolledBack); s != "" {
			fmt.Fprintf(w, "%d rolled back: %s\n", len(rep.RolledBackIDs), s)
		}
	}
	if len(rep.PendingIDs) > 0 {
		if x.interrupted {
			fmt.Fprintf(w, "pending: %s (cut off by the interrupt: rops recover settles them)\n", listIDs(rep.PendingIDs))
		} else {
			fmt.Fprintf(w, "pending: %s (nodes may disagree on these until they answer again)\n", listIDs(rep.PendingIDs))
		}
		if s := x.why.summary(core.Pending); s != "" && !x.interrupted {
			fmt.Fprintf(w, "%d pending: %s\n", len(rep.PendingIDs), s)
		}
	}
	return nil
}

// maxCauses bounds the causes a text report names for one outcome.
const maxCauses = 5

// causes collects why a job's operations were rolled back or are
// pending, one entry per id, for its report. Its add is called with each
// result, one at a time (core's Bulk does so); it is not safe for
// concurrent use.
type causes struct {
	list []causeJSON
}

// causeJSON is why one id was rolled back or is pending, as -o json
// prints it in "causes".
type causeJSON struct {
	ID      core.GroupID `json:"id"`
	Outcome core.Outcome `json:"outcome"`
	Cause   string       `json:"cause"`
}

// add keeps the cause of res if it was rolled back or is pending.
func (c *causes) add(res core.Result) {
	if res.Outcome != core.RolledBack && res.Outcome != core.Pending {
		return
	}
	c.list = append(c.list, causeJSON{ID: res.ID, Outcome: res.Outcome, Cause: causeOf(res)})
}

// summary counts the causes of the operations that ended in out, most
// frequent first, identical ones together: "node02 is down (503
// Rops-Applied: false) ×10". It names maxCauses at most, then how many
// other causes and ids; "" if c is nil or has none.
func (c *causes) summary(out core.Outcome) string {
	if c == nil {
		return ""
	}
	var order []string
	count := map[string]int{}
	for _, e := range c.list {
		if e.Outcome != out {
			continue
		}
		if count[e.Cause] == 0 {
			order = append(order, e.Cause)
		}
		count[e.Cause]++
	}
	// Most frequent first; the first seen first among equals.
	slices.SortStableFunc(order, func(a, b string) int { return count[b] - count[a] })
	var parts []string
	for i, cause := range order {
		if i == maxCauses {
			rest := 0
			for _, other := range order[i:] {
				rest += count[other]
			}
			parts = append(parts, fmt.Sprintf("%d other causes ×%d", len(order)-i, rest))
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", cause, count[cause]))
	}
	return strings.Join(parts, "; ")
}

// causeOf says briefly why res was rolled back or is pending: what the
// node whose failure decided it said, such as "node02 is down (503
// Rops-Applied: false)". It leaves out what varies from one operation to
// the next for the same failure (how often it was retried, how long the
// breaker waits), so that the ids one failure stopped share one cause.
func causeOf(res core.Result) string {
	if res.Err == nil {
		return string(res.Outcome)
	}
	var phrases []string
	for _, err := range failures(res.Err) {
		if p := failurePhrase(err); !slices.Contains(phrases, p) {
			phrases = append(phrases, p)
		}
	}
	return strings.Join(phrases, "; ")
}

// failures are the node failures err holds: the errors joined in it, each
// down to its first *core.Error, and for a request the breaker held back,
// the failure it kept (what the node said last) instead of the refusal.
func failures(err error) []error {
	if e, ok := err.(*core.Error); ok {
		if errors.Is(e.Err, core.ErrBreakerOpen) {
			if j, ok := e.Err.(interface{ Unwrap() []error }); ok {
				var out []error
				for _, inner := range j.Unwrap() {
					if inner != core.ErrBreakerOpen {
						out = append(out, failures(inner)...)
					}
				}
				if len(out) > 0 {
					return out
				}
			}
		}
		return []error{e}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, inner := range j.Unwrap() {
			out = append(out, failures(inner)...)
		}
		return out
	}
	return []error{err}
}

// failurePhrase is one node failure as a cause says it: its message, and
// the HTTP status it came with if the message does not give it ("node02
// is down (503 Rops-Applied: false)": the server said the request was not
// applied).
func failurePhrase(err error) string {
	msg := err.Error()
	var s interface{ HTTPStatus() int }
	if !errors.As(err, &s) || strings.Contains(msg, strconv.Itoa(s.HTTPStatus())) {
		return msg
	}
	if s.HTTPStatus() == http.StatusServiceUnavailable && core.ErrorCode(err) == core.EUnavailable {
		return msg + " (503 Rops-Applied: false)"
	}
	return fmt.Sprintf("%s (%d)", msg, s.HTTPStatus())
}

// jobJSON is a job's report as -o json prints it.
type jobJSON struct {
	// ID is the id of a one-id command (create-one, delete-one).
	ID core.GroupID `json:"id,omitempty"`
	core.Report
	// NotStarted counts the ids never started: the job stopped early.
	NotStarted int `json:"not_started,omitempty"`
	// RoundTrips counts the HTTP requests that carried the job's
	// requests to the nodes, fewer than them where batches carried many.
	RoundTrips int64 `json:"round_trips,omitempty"`
	// Causes says why each id was rolled back or is pending, one entry
	// per id, in the order their operations ended.
	Causes []causeJSON `json:"causes,omitempty"`
	// Interrupted says the job was interrupted (Ctrl-C): its pending ids
	// were cut off mid-operation, not left by the nodes.
	Interrupted bool `json:"interrupted,omitempty"`
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

// printResult prints one operation's result as a short sentence;
// interrupted says the command was interrupted (Ctrl-C), which cut off an
// operation left pending, not the nodes.
func printResult(w io.Writer, res core.Result, interrupted bool) {
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
		if interrupted {
			// The nodes are not to blame; the command's error says more.
			fmt.Fprintf(w, "%s %s: pending, cut off by the interrupt\n", res.Op, res.ID)
			break
		}
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
