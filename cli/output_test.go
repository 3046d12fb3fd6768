package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

// fakeTerminal is the progress configuration of a terminal that shows every
// render.
func fakeTerminal(color bool) progressConfig {
	return progressConfig{show: true, color: color}
}

func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, fakeTerminal(false), core.OpCreate, 10)
	for _, o := range []core.Outcome{core.Done, core.Done, core.RolledBack, core.Pending} {
		p.add(core.Result{Op: core.OpCreate, Outcome: o})
	}
	lines := strings.Split(b.String(), "\r")
	last := lines[len(lines)-1]
	// The label with the counts so far, the percent, the count, the rate and
	// elapsed:ETA.
	re := regexp.MustCompile(`^create \(1 rolled back, 1 pending\)\s+40% \|[^|]+\| \(4/10, \d+ ops/s\) \[\d+s:\d+s\]`)
	if !re.MatchString(last) {
		t.Fatalf("progress line %q does not match %v", last, re)
	}
	if strings.Contains(b.String(), "\x1b[") {
		t.Fatalf("progress without colour wrote an escape code: %q", b.String())
	}
	n := b.Len()
	p.done()
	if cleared := b.String()[n:]; strings.TrimSpace(cleared) != "" || !strings.HasSuffix(cleared, "\r") {
		t.Fatalf("done wrote %q, want the line blanked and the cursor at its start", cleared)
	}
}

func TestProgressColor(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, fakeTerminal(true), core.OpDelete, 4)
	p.add(core.Result{Op: core.OpDelete, Outcome: core.RolledBack})
	if !strings.Contains(b.String(), "\x1b[33m1 rolled back, 0 pending\x1b[0m") {
		t.Fatalf("progress with colour wrote %q, want the counts in yellow", b.String())
	}
}

func TestProgressNotShown(t *testing.T) {
	for name, cfg := range map[string]progressConfig{
		"not a terminal": terminalProgress(&bytes.Buffer{}, false),
		"quiet":          {show: false, color: true},
	} {
		var b bytes.Buffer
		p := newProgress(&b, cfg, core.OpCreate, 3)
		p.add(core.Result{Outcome: core.Done})
		p.done()
		if b.Len() != 0 {
			t.Errorf("%s: progress wrote %q", name, b.String())
		}
	}
}

// openFile opens name for writing, or skips the test where the system has
// no such device; the file is closed when the test ends.
func openFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestTerminalProgress(t *testing.T) {
	// The master side of a new pseudo-terminal is a terminal.
	tty := openFile(t, "/dev/ptmx")
	t.Setenv("NO_COLOR", "")
	if cfg := terminalProgress(tty, false); !cfg.color {
		t.Error("colour off without NO_COLOR")
	}
	t.Setenv("NO_COLOR", "1")
	if cfg := terminalProgress(tty, false); cfg.color {
		t.Error("colour on with NO_COLOR=1")
	}
	if cfg := terminalProgress(tty, false); !cfg.show {
		t.Error("progress hidden on a terminal")
	}
	if cfg := terminalProgress(tty, true); cfg.show {
		t.Error("progress shown under -q or -v")
	}
}

// TestTerminalProgressNotOnDevNull: /dev/null is a character device, as a
// terminal is, but rops 2>/dev/null wants no progress bar.
func TestTerminalProgressNotOnDevNull(t *testing.T) {
	if cfg := terminalProgress(openFile(t, os.DevNull), false); cfg.show {
		t.Error("progress shown on /dev/null")
	}
}

// TestReportRoundTrips: a job's report names the HTTP round trips beside
// its requests when some went over HTTP, in text and JSON, and says
// nothing of them otherwise.
func TestReportRoundTrips(t *testing.T) {
	rep := core.Report{Command: "create", Requested: 10, Done: 10, Requests: 34, Retries: 4, Seconds: 0.5}
	for _, tc := range []struct {
		trips      int64
		text, json string
	}{
		{12, "34 requests (4 retries, 12 HTTP round trips) in 0.50s, 20 ops/s\n", `"round_trips":12`},
		{0, "34 requests (4 retries) in 0.50s, 20 ops/s\n", ""},
	} {
		var text, js strings.Builder
		if err := printReport(&text, "text", rep, 0, tc.trips); err != nil {
			t.Fatal(err)
		}
		if err := printReport(&js, "json", rep, 0, tc.trips); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(text.String(), tc.text) {
			t.Errorf("trips %d: text report\n%s\nwant it to end %q", tc.trips, text.String(), tc.text)
		}
		if got := strings.Contains(js.String(), `"round_trips"`); got != (tc.json != "") || tc.json != "" && !strings.Contains(js.String(), tc.json) {
			t.Errorf("trips %d: JSON report %s, want %q", tc.trips, js.String(), tc.json)
		}
	}
}

// TestCauses: a job's report counts the causes of its ids rolled back or
// pending, the same failure once however it was retried or held back by
// the breaker, most frequent first, and names maxCauses at most.
func TestCauses(t *testing.T) {
	down := &core.Error{Code: core.EUnavailable, Message: "node02 is down", Err: &httpapi.StatusError{Status: http.StatusServiceUnavailable}}
	held := func(n int) error { // a refusal of the breaker: what varies is left out
		return &core.Error{Code: core.EUnavailable, Message: fmt.Sprintf("node02 did not answer %d requests in a row", n), Err: errors.Join(core.ErrBreakerOpen, down)}
	}
	slow := &core.Error{Code: core.ETransient, Message: "node03: no answer within 2s"}
	var why causes
	for i, err := range []error{down, held(9), held(10), slow, fmt.Errorf("%w; then could not undo it: %w", down, slow)} {
		out := core.RolledBack
		if i == 4 {
			out = core.Pending
		}
		why.add(core.Result{ID: core.GroupID(strconv.Itoa(i)), Outcome: out, Err: err})
	}
	why.add(core.Result{ID: "ok", Outcome: core.Done})
	if got, want := why.summary(core.RolledBack), "node02 is down (503 Rops-Applied: false) ×3; node03: no answer within 2s ×1"; got != want {
		t.Errorf("rolled back: %q, want %q", got, want)
	}
	if got, want := why.summary(core.Pending), "node02 is down (503 Rops-Applied: false); node03: no answer within 2s ×1"; got != want {
		t.Errorf("pending: %q, want %q", got, want)
	}
	if got, want := len(why.list), 5; got != want {
		t.Errorf("%d causes, want %d: one per id rolled back or pending", got, want)
	}

	var many causes
	for i := range maxCauses + 3 {
		many.add(core.Result{ID: core.GroupID(strconv.Itoa(i)), Outcome: core.RolledBack, Err: fmt.Errorf("cause %d", i)})
	}
	if got, want := many.summary(core.RolledBack), "cause 0 ×1; cause 1 ×1; cause 2 ×1; cause 3 ×1; cause 4 ×1; 3 other causes ×3"; got != want {
		t.Errorf("bounded: %q, want %q", got, want)
	}
}

// TestJobInterruptedSays: an interrupted job says how far it got and how
// what it cut off is settled, and blames no node for it.
func TestJobInterruptedSays(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name  string
		rep   core.Report
		total int
		want  string
	}{
		{"bulk, pending", core.Report{Requested: 120, Pending: 3}, 1000, "interrupted after 120 of 1000 ids: 3 pending were cut off mid-operation; rops recover (or the next command, which recovers first) settles them"},
		{"bulk, none pending", core.Report{Requested: 120}, 1000, "interrupted after 120 of 1000 ids; run the job again to do the rest (ids done are then left unchanged)"},
		{"one id", core.Report{Requested: 1, Pending: 1}, 0, "interrupted: 1 pending was cut off mid-operation; rops recover (or the next command, which recovers first) settles it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(jobErrorOf(ctx, tc.rep, 0, tc.total)); got != tc.want {
				t.Errorf("error %q, want %q", got, tc.want)
			}
		})
	}
	var text strings.Builder
	rep := core.Report{Command: "create", Requested: 4, Pending: 1, PendingIDs: []core.GroupID{"7"}}
	if err := printJob(&text, "text", rep, jobExtras{interrupted: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := text.String(), "pending: 7 (cut off by the interrupt: rops recover settles them)\n"; !strings.HasSuffix(got, want) {
		t.Errorf("report\n%s\nwant it to end %q", got, want)
	}
}
