package history

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestStepValue is the register's whole table for an operation that
// returned: each kind of operation with each outcome, from each value;
// "-" where it cannot take effect.
func TestStepValue(t *testing.T) {
	const want = `
              absent   present
create done   present  present
create unch.  -        present
create rb     absent   present
delete done   absent   absent
delete unch.  absent   -
delete rb     absent   present
read present  -        present
read absent   absent   -
`
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-14s%-9s%s\n", "", "absent", "present")
	for _, row := range []struct {
		name string
		kind Kind
		out  Outcome
	}{
		{"create done", Create, Done}, {"create unch.", Create, Unchanged}, {"create rb", Create, RolledBack},
		{"delete done", Delete, Done}, {"delete unch.", Delete, Unchanged}, {"delete rb", Delete, RolledBack},
		{"read present", Read, Present}, {"read absent", Read, Absent},
	} {
		line := fmt.Sprintf("%-14s", row.name)
		for _, v := range []value{absent, present} {
			cell := "-"
			if ok, next := stepValue(v, row.kind, row.out); ok {
				cell = next.String()
			}
			line += fmt.Sprintf("%-9s", cell)
		}
		fmt.Fprintln(&b, strings.TrimRight(line, " "))
	}
	if got := b.String(); got != want {
		t.Errorf("the register's table\n%s\nwant\n%s", got, want)
	}
}

// TestStepPending: pending operations take effect before an operation
// only if they were called by its return, the earliest called first, and
// a possibility that spent more for the same value is dropped.
func TestStepPending(t *testing.T) {
	pend := &pendings{creates: []int64{10, 30}, deletes: []int64{20}}
	at := func(s states, kind Kind, out Outcome, ret int64) string {
		ok, next := step(s, input{kind: kind, id: "a", ret: ret, pend: pend}, out)
		if !ok {
			return "-"
		}
		return next.describe()
	}
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"nothing called yet", at(unknown, Read, Absent, 5), "absent 0 0"},
		{"a create called", at(unknown, Read, Absent, 10), "absent 0 0"},
		{"a create took effect", at(encode([]possibility{{absent, 0, 0}}), Read, Present, 10), "present 1 0"},
		{"one each called", at(encode([]possibility{{absent, 0, 0}}), Create, RolledBack, 25), "absent 0 0, present 1 0"},
		{"spent after this returned", at(encode([]possibility{{absent, 0, 1}}), Read, Absent, 15), "-"},
		{"spent before", at(encode([]possibility{{absent, 0, 1}}), Read, Absent, 20), "absent 0 1"},
		{"done forgets", at(encode([]possibility{{absent, 0, 0}, {present, 1, 0}}), Delete, Done, 40), "absent 0 0"},
		{"no more pending", at(encode([]possibility{{present, 2, 1}}), Read, Absent, 40), "-"},
		{"plain states", fmt.Sprint(encode([]possibility{{present, 0, 0}, {absent, 0, 0}}) == unknown, encode([]possibility{{absent, 0, 0}}) == plain[0], encode([]possibility{{present, 0, 0}}) == plain[1]), "true true true"},
		{"dominated dropped", encode([]possibility{{present, 2, 0}, {present, 1, 0}, {present, 1, 1}, {absent, 0, 1}}).describe(), "absent 0 1, present 1 0"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func (s states) describe() string {
	var ps []string
	for _, p := range s.decode(nil) {
		ps = append(ps, fmt.Sprintf("%s %d %d", p.v, p.creates, p.deletes))
	}
	return strings.Join(ps, ", ")
}

// TestManyPending: an id with many pending operations, all in flight to
// the end, is judged in polynomial time, passing or failing.
func TestManyPending(t *testing.T) {
	for _, fail := range []bool{false, true} {
		var ops []Op
		var now time.Duration
		const k = 200
		for i := range k {
			kind := Create
			if i%2 == 1 {
				kind = Delete
			}
			ops = append(ops, Op{Kind: kind, ID: "a", Outcome: Pending, Call: now, Return: NoReturn})
			now += 10
		}
		// Each change between reads spends a pending operation: k+1
		// changes cannot be explained by k.
		reads := k
		if fail {
			reads = k + 2
		}
		for i := range reads {
			out := Present
			if i%2 == 1 {
				out = Absent
			}
			ops = append(ops, Op{Kind: Read, ID: "a", Outcome: out, Call: now, Return: now + 5, Line: len(ops) + 1})
			now += 10
		}
		start := time.Now()
		res, err := Verify(ops)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d pending, %d reads: ok=%v in %v", k, reads, res.OK(), time.Since(start))
		if res.OK() == fail {
			t.Errorf("%d pending, %d reads: ok=%v", k, reads, res.OK())
		}
		if fail {
			if got, want := res.Failures[0].Op.Line, k+k+2; got != want {
				t.Errorf("first unexplained on line %d, want %d", got, want)
			}
		}
	}
}
