package report_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/reliable-ops/rops/history"
	"github.com/reliable-ops/rops/report"
)

const ms = time.Millisecond

// handMade is a history of two processes with a fault window from 100 ms
// to 200 ms: before it operations are done; during it one is rolled back
// and one pending; the first create or delete called after it that ends
// done returns at 260 ms (a rolled-back one and a read return earlier), so
// the recovery time is 60 ms.
func handMade() []history.Op {
	return []history.Op{
		{Kind: history.Create, Process: 0, ID: "a", Outcome: history.Done, Call: 0, Return: 10 * ms},
		{Kind: history.Read, Process: 1, ID: "a", Outcome: history.Present, Call: 20 * ms, Return: 21 * ms},
		{Kind: history.Delete, Process: 0, ID: "b", Outcome: history.Unchanged, Call: 30 * ms, Return: 35 * ms},
		{Kind: history.Nemesis, What: "pause", Target: "node02", Call: 100 * ms, Return: 200 * ms},
		{Kind: history.Delete, Process: 0, ID: "a", Outcome: history.RolledBack, Call: 110 * ms, Return: 190 * ms},
		{Kind: history.Create, Process: 1, ID: "b", Outcome: history.Pending, Call: 150 * ms, Return: history.NoReturn},
		{Kind: history.Create, Process: 0, ID: "c", Outcome: history.RolledBack, Call: 205 * ms, Return: 210 * ms},
		{Kind: history.Read, Process: 2, ID: "a", Outcome: history.Present, Call: 205 * ms, Return: 215 * ms},
		{Kind: history.Delete, Process: 0, ID: "a", Outcome: history.Done, Call: 220 * ms, Return: 260 * ms},
		{Kind: history.Create, Process: 1, ID: "c", Outcome: history.Done, Call: 230 * ms, Return: 300 * ms},
		{Kind: history.Read, Process: 2, ID: "a", Outcome: history.Absent, Call: 310 * ms, Return: 320 * ms},
	}
}

func verify(t *testing.T, ops []history.Op) history.Result {
	t.Helper()
	res, err := history.Verify(ops)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSummaryRecovery: summary.json has the counts, the percentiles of the
// creates and deletes that returned, and the recovery time after the
// window.
func TestSummaryRecovery(t *testing.T) {
	dir := t.TempDir()
	ops := handMade()
	table := map[string]any{"ok": true}
	if err := report.Write(dir, ops, verify(t, ops), report.Options{Check: table, RequestsPerOp: 4.5}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, report.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var s report.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary.json: %v\n%s", err, b)
	}
	if got, want := s.Ops, 7; got != want {
		t.Errorf("ops=%d, want %d", got, want)
	}
	if got, want := s.Reads, 3; got != want {
		t.Errorf("reads=%d, want %d", got, want)
	}
	if s.Outcomes[history.Done] != 3 || s.Outcomes[history.Pending] != 1 || s.Outcomes[history.RolledBack] != 2 || s.Outcomes[history.Absent] != 1 {
		t.Errorf("outcomes=%v, want 3 done, 1 pending, 2 rolled back, 1 absent", s.Outcomes)
	}
	// Latencies of the 6 that returned: 5, 5, 10, 40, 70, 80 ms.
	if s.P50ms != 10 || s.P99ms != 80 {
		t.Errorf("p50/p99=%v/%v ms, want 10/80", s.P50ms, s.P99ms)
	}
	if got, want := s.Seconds, 0.32; got != want {
		t.Errorf("seconds=%v, want %v", got, want)
	}
	if !s.Linearizable || s.First != "" || s.RequestsPerOp != 4.5 || s.Check.(map[string]any)["ok"] != true {
		t.Errorf("linearizable %v, first %q, requests/op %v, check %v; want true, none, 4.5, the table", s.Linearizable, s.First, s.RequestsPerOp, s.Check)
	}
	if len(s.Windows) != 1 {
		t.Fatalf("windows=%+v, want one", s.Windows)
	}
	w := s.Windows[0]
	if w.What != "pause" || w.Target != "node02" || w.Start != 0.1 || w.End == nil || *w.End != 0.2 {
		t.Errorf("window %+v, want pause on node02 from 0.1 s to 0.2 s", w)
	}
	if w.RecoveryMs == nil || *w.RecoveryMs != 60 {
		t.Errorf("recovery=%v, want 60 ms", w.RecoveryMs)
	}
}

// TestRecoveryUnknown: a window that had not ended, or after which no
// operation completed, has no recovery time (null).
func TestRecoveryUnknown(t *testing.T) {
	ops := handMade()[:8] // nothing done after the window
	ops = append(ops, history.Op{Kind: history.Nemesis, What: "kill", Call: 250 * ms, Return: history.NoReturn})
	s := report.Summarize(ops, verify(t, ops), report.Options{})
	if len(s.Windows) != 2 || s.Windows[0].RecoveryMs != nil || s.Windows[1].RecoveryMs != nil || s.Windows[1].End != nil {
		t.Errorf("windows %+v, want two with no recovery, the second with no end", s.Windows)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"recovery_ms":null`) || strings.Contains(string(b), `"check"`) || strings.Contains(string(b), `"requests_per_op"`) {
		t.Errorf("summary %s: want recovery_ms null, and no check or requests_per_op", b)
	}
}

// decode decodes a PNG and checks its size.
func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if got, want := img.Bounds().Size(), image.Pt(report.Width, report.Height); got != want {
		t.Fatalf("size %v, want %v", got, want)
	}
	return img
}

// count returns how many pixels of img are c, and how many distinct
// colours it has.
func count(img image.Image, c color.Color) (n, colours int) {
	seen := map[color.RGBA]bool{}
	r0, g0, b0, a0 := c.RGBA()
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			seen[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}] = true
			if r == r0 && g == g0 && b == b0 && a == a0 {
				n++
			}
		}
	}
	return n, len(seen)
}

// TestPlots: each plot decodes, is Width×Height, draws more than the
// background (and each outcome's colour), and shades the fault window:
// with the window the shade's colour covers a band the window's share of
// the width; without it, no pixel has it.
func TestPlots(t *testing.T) {
	for _, tc := range []struct {
		name string
		draw func(*bytes.Buffer, []history.Op) error
	}{
		{"latency", func(b *bytes.Buffer, ops []history.Op) error { return report.Latency(b, ops) }},
		{"rate", func(b *bytes.Buffer, ops []history.Op) error { return report.Rate(b, ops) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var with, without bytes.Buffer
			ops := handMade()
			if err := tc.draw(&with, ops); err != nil {
				t.Fatal(err)
			}
			var calm []history.Op
			for _, op := range ops {
				if op.Kind != history.Nemesis {
					calm = append(calm, op)
				}
			}
			if err := tc.draw(&without, calm); err != nil {
				t.Fatal(err)
			}
			img := decode(t, with.Bytes())
			white, colours := count(img, color.White)
			if colours < 20 || white > report.Width*report.Height*95/100 {
				t.Errorf("%d colours, %d of %d pixels white: want more than 20 and some drawn", colours, white, report.Width*report.Height)
			}
			for _, o := range []history.Outcome{history.Done, history.Unchanged, history.RolledBack, history.Absent} {
				if n, _ := count(img, outcomeColour(t, o)); n == 0 {
					t.Errorf("no pixel of %s's colour", o)
				}
			}
			// The window is 100 of the 320 ms drawn: about 30% of the
			// data area's width, the full height of it.
			shaded, _ := count(img, report.Shade)
			if shaded < report.Width*report.Height/10 {
				t.Errorf("%d pixels shaded, want a band of the window's width", shaded)
			}
			if n, _ := count(decode(t, without.Bytes()), report.Shade); n != 0 {
				t.Errorf("%d pixels shaded with no window", n)
			}
		})
	}
}

// outcomeColour returns o's colour as drawn in the legend's sample.
func outcomeColour(t *testing.T, o history.Outcome) color.Color {
	t.Helper()
	c, ok := report.Colour(o)
	if !ok {
		t.Fatalf("no colour for %s", o)
	}
	return c
}

// TestHTMLNamesFirstFailure: history.html is porcupine's page of a
// history that is not linearizable, and names its first operation that
// cannot be explained.
func TestHTMLNamesFirstFailure(t *testing.T) {
	ops := handMade()
	ops[len(ops)-1].Outcome = history.Present // a done delete, then read present
	res := verify(t, ops)
	if res.OK() {
		t.Fatal("the mutated history is linearizable")
	}
	dir := t.TempDir()
	if err := report.Write(dir, ops, res, report.Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, report.HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("history.html does not parse: %v", err)
	}
	// Porcupine's page: its title, and the data in a script, where the
	// first operation that cannot be explained is described.
	first := res.Failures[0].Op.String()
	var title, named bool
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.FirstChild == nil || n.FirstChild.Type != html.TextNode {
			continue
		}
		text := n.FirstChild.Data
		title = title || n.DataAtom == atom.Title && text == "Porcupine"
		named = named || n.DataAtom == atom.Script && strings.Contains(text, first)
	}
	if !title || !named {
		t.Errorf("history.html: porcupine's title %v, a script naming the first operation that cannot be explained (%s) %v; want both", title, first, named)
	}
	var s report.Summary
	b, _ = os.ReadFile(filepath.Join(dir, report.SummaryFile))
	if err := json.Unmarshal(b, &s); err != nil || s.Linearizable || s.First != first {
		t.Errorf("summary: linearizable %v, first %q (%v); want false, %q", s.Linearizable, s.First, err, first)
	}
	for _, f := range []string{report.LatencyFile, report.RateFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		decode(t, b)
	}
}
