package history_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/history"
)

// hist builds a history from lines "PROCESS KIND ID OUTCOME CALL-RETURN"
// (RETURN empty for none), such as "1 read a absent 20-30", numbered from 1.
func hist(tb testing.TB, lines ...string) []history.Op {
	tb.Helper()
	ops := make([]history.Op, len(lines))
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 5 {
			tb.Fatalf("bad line %q", l)
		}
		p, err := strconv.Atoi(f[0])
		if err != nil {
			tb.Fatal(err)
		}
		call, ret, _ := strings.Cut(f[4], "-")
		op := history.Op{Kind: history.Kind(f[1]), Process: p, ID: f[2], Outcome: history.Outcome(f[3]), Call: nanos(tb, call), Return: history.NoReturn, Line: i + 1}
		if ret != "" {
			op.Return = nanos(tb, ret)
		}
		ops[i] = op
	}
	return ops
}

func nanos(tb testing.TB, s string) time.Duration {
	tb.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return time.Duration(n)
}

// TestVerifyViolations: one history for each kind of violation, each must
// fail, naming the operation that cannot be explained and what the id was
// before it.
func TestVerifyViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hist  []string
		line  int    // of the first operation that cannot be explained
		state string // what the id is before it
	}{
		{"done create then read absent", []string{
			"0 create a done 0-10",
			"1 read a absent 20-30",
		}, 2, "present"},
		{"rolled-back create then read present", []string{
			"1 read a absent 0-5",
			"0 create a rolled_back 10-20",
			"1 read a present 30-40",
		}, 3, "absent"},
		{"done delete then read present", []string{
			"0 delete a done 0-10",
			"1 read a present 20-30",
		}, 2, "absent"},
		{"reads disagree with nothing between", []string{
			"0 read a present 0-10",
			"1 read a absent 20-30",
		}, 2, "present"},
		{"reads disagree, an operation on another id between", []string{
			"0 read a absent 0-10",
			"1 create b done 11-19",
			"1 read a present 20-30",
		}, 3, "absent"},
		{"unchanged create of an absent id", []string{
			"0 delete a done 0-10",
			"0 create a unchanged 20-30",
		}, 2, "absent"},
		{"unchanged delete of a present id", []string{
			"0 create a done 0-10",
			"0 delete a unchanged 20-30",
		}, 2, "present"},
		{"a pending create takes effect once", []string{
			"0 create a pending 0-",
			"1 read a absent 10-20",
			"1 read a present 30-40",
			"1 delete a done 50-60",
			"1 read a present 70-80",
		}, 5, "absent"},
		{"a pending delete takes effect once", []string{
			"0 delete a pending 0-",
			"1 read a present 10-20",
			"1 read a absent 30-40",
			"1 create a done 50-60",
			"1 read a absent 70-80",
		}, 5, "present"},
		{"a pending delete called after a read", []string{
			"0 create a done 0-10",
			"1 read a absent 20-30",
			"2 delete a pending 40-",
		}, 2, "present"},
		{"a pending create called after a read", []string{
			"0 delete a done 0-10",
			"1 read a present 20-30",
			"2 create a pending 31-",
		}, 2, "absent"},
		{"a pending effect before an operation that returned before its call", []string{
			"0 create a done 0-10",
			"1 read a absent 20-100",
			"2 read a absent 30-40",
			"3 delete a pending 50-",
		}, 3, "absent"}, // after the pending delete, which came too late for it
		{"a read concurrent with nothing that could explain it", []string{
			"0 create a done 0-10",
			"1 read a present 5-15",
			"2 delete a done 20-30",
			"1 read a present 40-50",
		}, 4, "absent"},
		{"a rolled-back create seen by a concurrent read", []string{
			"1 read a absent 0-5",
			"0 create a rolled_back 10-40",
			"1 read a present 20-30",
			"1 read a absent 50-60",
		}, 3, "absent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := history.Verify(hist(t, tc.hist...))
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() {
				t.Fatalf("Verify found the history linearizable")
			}
			f := res.Failures[0]
			t.Logf("first that cannot be explained: %v; before it, %s is %s (%d of %d explained)", f.Op, f.ID, f.State, f.Explained, f.Total)
			if got, want := f.Op.Line, tc.line; got != want {
				t.Errorf("first unexplained on line %d, want %d", got, want)
			}
			if got, want := f.State, tc.state; got != want {
				t.Errorf("state before it %q, want %q", got, want)
			}
			if got, want := len(res.Failures), 1; got != want {
				t.Errorf("%d ids fail, want %d", got, want)
			}
		})
	}
}

// TestVerifyLinearizable: histories that some order explains pass,
// pending operations resolved either way among them.
func TestVerifyLinearizable(t *testing.T) {
	for _, tc := range []struct {
		name string
		hist []string
	}{
		{"empty", nil},
		{"create, read, delete, read", []string{
			"0 create a done 0-10",
			"1 read a present 20-30",
			"0 delete a done 40-50",
			"1 read a absent 60-70",
		}},
		{"a read concurrent with a create sees either", []string{
			"1 read a absent 0-5",
			"0 create a done 10-100",
			"1 read a absent 20-30",
			"2 read a present 40-50",
			"1 read a present 110-120",
		}},
		{"intervals are closed: touching is concurrent", []string{
			"0 create a done 0-10",
			"1 read a absent 10-20",
		}},
		{"pending create that took effect", []string{
			"1 read a absent 0-5",
			"0 create a pending 10-",
			"1 read a absent 20-30",
			"1 read a present 40-50",
			"1 read a present 60-70",
		}},
		{"pending create that did not", []string{
			"1 read a absent 0-5",
			"0 create a pending 10-",
			"1 read a absent 20-30",
			"1 read a absent 60-70",
		}},
		{"pending delete either way", []string{
			"1 read a present 0-5",
			"0 delete a pending 10-",
			"1 read a present 20-30",
			"2 delete b pending 0-",
			"2 read b present 20-30",
			"2 read b absent 40-50",
		}},
		{"pending then a later operation settles it", []string{
			"0 create a pending 0-",
			"1 delete a done 10-20",
			"1 read a absent 30-40",
		}},
		{"rolled back, whatever the id was", []string{
			"1 read a absent 0-5",
			"0 create a rolled_back 10-20",
			"1 read a absent 30-40",
			"0 create a done 50-60",
			"0 create a rolled_back 70-80",
			"1 read a present 90-100",
			"0 delete a rolled_back 110-120",
			"1 read a present 130-140",
		}},
		{"unchanged where it was so", []string{
			"0 create a done 0-10",
			"0 create a unchanged 20-30",
			"0 delete a done 40-50",
			"0 delete a unchanged 60-70",
		}},
		{"ids start unknown", []string{
			"0 create a rolled_back 0-10",
			"1 read a present 20-30",
			"0 create b unchanged 0-10",
			"0 delete c unchanged 0-10",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := history.Verify(hist(t, tc.hist...))
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				f := res.Failures[0]
				t.Fatalf("not linearizable: %v; before it, %s is %s", f.Op, f.ID, f.State)
			}
			if got, want := res.Ops, len(tc.hist); got != want {
				t.Errorf("Ops=%d, want %d", got, want)
			}
		})
	}
}

// TestVerifyManyIDs: the ids are judged apart; every failing id is named,
// the one whose unexplained operation returned first first, and nemesis
// lines are counted, not judged.
func TestVerifyManyIDs(t *testing.T) {
	ops := hist(t,
		"0 create b done 0-10",
		"1 read b absent 50-60",
		"0 create a done 0-10",
		"1 read a absent 20-30",
		"2 create c done 0-10",
		"2 read c present 20-30",
	)
	ops = append(ops, history.Op{Kind: history.Nemesis, What: "pause", Target: "node01", Call: 0, Return: 40, Line: 7})
	res, err := history.Verify(ops)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(res.Ops, res.IDs, res.Nemeses), "6 3 1"; got != want {
		t.Errorf("ops, ids, nemeses = %s, want %s", got, want)
	}
	var ids []string
	for _, f := range res.Failures {
		ids = append(ids, f.ID)
	}
	if got, want := strings.Join(ids, " "), "a b"; got != want {
		t.Errorf("failing ids %q, want %q", got, want)
	}
}

// TestVerifyInvalid: an Op that is not valid is an error, not a verdict.
func TestVerifyInvalid(t *testing.T) {
	ops := hist(t, "0 create a done 0-10", "0 create a maybe 20-30")
	_, err := history.Verify(ops)
	if got, want := fmt.Sprint(err), `line 2: outcome "maybe": a create ends done, unchanged, rolled_back or pending`; got != want {
		t.Fatalf("Verify: %s, want %s", got, want)
	}
}
