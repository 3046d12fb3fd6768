package history_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/history"
)

// TestVisualizeFailing: the page shows the id that cannot be explained,
// marked, with the fault windows, and leaves the other ids out.
func TestVisualizeFailing(t *testing.T) {
	ops := hist(t,
		"0 create a done 0-10",
		"1 read a absent 20-30",
		"2 create a pending 15-",
		"0 create b done 0-10",
		"1 read b present 20-30",
	)
	ops = append(ops, history.Op{Kind: history.Nemesis, What: "pause", Target: "node02", Call: 5, Return: history.NoReturn})
	res, err := history.Verify(ops)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := res.Visualize(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"<html", "read a: absent", "cannot be explained", "pause node02", "create a: pending"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not hold %q", want)
		}
	}
	if strings.Contains(page, "read b: present") {
		t.Errorf("the page holds id b, which is linearizable")
	}
}

// TestVisualizeWindow: an id with thousands of operations is drawn in a
// window around its first unexplained one, so the page stays small.
func TestVisualizeWindow(t *testing.T) {
	const n = 8000
	var ops []history.Op
	for i := range n {
		op := history.Op{Kind: history.Read, ID: "a", Outcome: history.Absent, Call: time.Duration(10 * i), Return: time.Duration(10*i + 5), Line: i + 1}
		switch i % 4 {
		case 0:
			op.Kind, op.Outcome = history.Create, history.Done
		case 1:
			op.Outcome = history.Present
		case 2:
			op.Kind, op.Outcome = history.Delete, history.Done
		}
		ops = append(ops, op)
	}
	const broken = 5001 // the read after a create, on line 5002
	ops[broken].Outcome = history.Absent
	res, err := history.Verify(ops)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() {
		t.Fatal("linearizable")
	}
	if got, want := res.Failures[0].Op.Line, broken+1; got != want {
		t.Fatalf("first unexplained on line %d, want %d", got, want)
	}
	var buf bytes.Buffer
	if err := res.Visualize(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	t.Logf("page of %d bytes", len(page))
	if !strings.Contains(page, fmt.Sprintf("line %d: process 0 read a: absent", broken+1)) {
		t.Errorf("the page does not show the unexplained read")
	}
	if strings.Contains(page, `"line 1: `) || strings.Contains(page, fmt.Sprintf(`"line %d: `, n)) {
		t.Errorf("the page shows operations far from the error")
	}
	if len(page) > 1<<20 {
		t.Errorf("the page is %d bytes", len(page))
	}
}

// TestVisualizeOK: a linearizable history is drawn, its first ids only.
func TestVisualizeOK(t *testing.T) {
	res, err := history.Verify(generate(1, 10_000, 100, 16))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := res.Visualize(&buf); err != nil {
		t.Fatal(err)
	}
	t.Logf("page of %d bytes", buf.Len())
	if n := strings.Count(buf.String(), `"OriginalStart"`); n > 2000 || n < 1000 {
		t.Errorf("the page shows %d operations, want at most 2000", n)
	}
}
