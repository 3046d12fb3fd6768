package cli

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
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
