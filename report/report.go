// Package report shows a history to people: the latency and the rate of
// its operations as PNG plots, with the nemesis's fault windows shaded;
// porcupine's page of the verdict; and a summary with the recovery time
// after each window. It reads nothing but the history, so it serves any
// history in the history package's format, not only rops check's.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/reliable-ops/rops/history"
)

// The files Write writes into its directory. The history itself,
// history.jsonl, is its writer's.
const (
	HTMLFile    = "history.html"
	LatencyFile = "latency.png"
	RateFile    = "rate.png"
	SummaryFile = "summary.json"
)

// Options are what a report takes from outside the history.
type Options struct {
	// Check is the check's own table, written as "check" in summary.json;
	// nil for none.
	Check any
	// RequestsPerOp is how many requests to nodes an operation took, which
	// a history does not say; 0 if not known.
	RequestsPerOp float64
}

// Summary is summary.json: the history in figures.
type Summary struct {
	Check    any                     `json:"check,omitempty"`
	Ops      int                     `json:"ops"`   // creates and deletes
	Reads    int                     `json:"reads"` // readings of one id
	Outcomes map[history.Outcome]int `json:"outcomes"`
	// RequestsPerOp is Options.RequestsPerOp; absent if not known.
	RequestsPerOp float64 `json:"requests_per_op,omitempty"`
	// P50ms and P99ms are the latency percentiles of the creates and
	// deletes that returned, in milliseconds.
	P50ms   float64 `json:"latency_p50_ms"`
	P99ms   float64 `json:"latency_p99_ms"`
	Seconds float64 `json:"seconds"` // the history's span: its last call or return
	// Linearizable is history.Verify's verdict, and First the first
	// operation that cannot be explained, if any.
	Linearizable bool     `json:"linearizable"`
	First        string   `json:"first_unexplained,omitempty"`
	Windows      []Window `json:"windows"`
}

// Window is a fault window of the nemesis and how long operations took to
// complete again after it.
type Window struct {
	What   string   `json:"what"`
	Target string   `json:"target,omitempty"`
	Start  float64  `json:"start_seconds"`
	End    *float64 `json:"end_seconds"` // null if it had not ended
	// RecoveryMs is the recovery time: from the window's end to the
	// return of the first create or delete called after it that ended
	// done or unchanged; null if the window had not ended or no such
	// operation followed.
	RecoveryMs *float64 `json:"recovery_ms"`
}

// Summarize sums ops up; res is history.Verify's verdict on them.
func Summarize(ops []history.Op, res history.Result, opt Options) Summary {
	s := Summary{Check: opt.Check, Outcomes: map[history.Outcome]int{}, RequestsPerOp: opt.RequestsPerOp, Linearizable: res.OK(), Windows: []Window{}}
	var lat []time.Duration
	var end time.Duration
	for _, op := range ops {
		end = max(end, op.Call, op.Return)
		switch {
		case op.Kind == history.Nemesis:
			s.Windows = append(s.Windows, window(op, ops))
			continue
		case op.Kind == history.Read:
			s.Reads++
		default:
			s.Ops++
			if op.Return != history.NoReturn {
				lat = append(lat, op.Return-op.Call)
			}
		}
		s.Outcomes[op.Outcome]++
	}
	slices.Sort(lat)
	s.P50ms, s.P99ms = percentile(lat, 0.50), percentile(lat, 0.99)
	s.Seconds = seconds(end)
	if !res.OK() {
		s.First = res.Failures[0].Op.String()
	}
	return s
}

// window describes the fault window w of ops, with its recovery time.
func window(w history.Op, ops []history.Op) Window {
	out := Window{What: w.What, Target: w.Target, Start: seconds(w.Call)}
	if w.Return == history.NoReturn {
		return out
	}
	end := seconds(w.Return)
	out.End = &end
	first := time.Duration(-1)
	for _, op := range ops {
		if (op.Kind == history.Create || op.Kind == history.Delete) && (op.Outcome == history.Done || op.Outcome == history.Unchanged) &&
			op.Call >= w.Return && (first < 0 || op.Return < first) {
			first = op.Return
		}
	}
	if first >= 0 {
		ms := round(float64(first-w.Return)/float64(time.Millisecond), 3)
		out.RecoveryMs = &ms
	}
	return out
}

// percentile returns the p-th percentile of sorted ds in milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return round(float64(ds[max(i, 0)])/float64(time.Millisecond), 3)
}

func seconds(d time.Duration) float64 { return round(d.Seconds(), 6) }

func round(x float64, places int) float64 {
	f := math.Pow(10, float64(places))
	return math.Round(x*f) / f
}

// Write writes the report of ops, judged res, into dir, creating it:
// history.html (res.Visualize), latency.png, rate.png and summary.json.
func Write(dir string, ops []history.Op, res history.Result, opt Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	summary, err := json.MarshalIndent(Summarize(ops, res, opt), "", "  ")
	if err != nil {
		return err
	}
	return errors.Join(
		writeFile(filepath.Join(dir, HTMLFile), res.Visualize),
		writeFile(filepath.Join(dir, LatencyFile), func(w io.Writer) error { return Latency(w, ops) }),
		writeFile(filepath.Join(dir, RateFile), func(w io.Writer) error { return Rate(w, ops) }),
		os.WriteFile(filepath.Join(dir, SummaryFile), append(summary, '\n'), 0o644),
	)
}

// writeFile creates path and writes it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
