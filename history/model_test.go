package history

import (
	"fmt"
	"strings"
	"testing"
)

// TestStep is the model's whole table: each state an id may be in, and
// each kind of operation with each outcome; "-" where it cannot happen.
func TestStep(t *testing.T) {
	const want = `
              absent   present  either
create done   present  present  present
create unch.  -        present  present
create rb     absent   present  either
create pend.  either   present  either
delete done   absent   absent   absent
delete unch.  absent   -        absent
delete rb     absent   present  either
delete pend.  absent   either   either
read present  -        present  present
read absent   absent   -        absent
`
	short := map[string]string{"absent": "absent", "present": "present", "absent or present": "either"}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-14s%-9s%-9s%s\n", "", "absent", "present", "either")
	for _, row := range []struct {
		name string
		kind Kind
		out  Outcome
	}{
		{"create done", Create, Done}, {"create unch.", Create, Unchanged}, {"create rb", Create, RolledBack}, {"create pend.", Create, Pending},
		{"delete done", Delete, Done}, {"delete unch.", Delete, Unchanged}, {"delete rb", Delete, RolledBack}, {"delete pend.", Delete, Pending},
		{"read present", Read, Present}, {"read absent", Read, Absent},
	} {
		line := fmt.Sprintf("%-14s", row.name)
		for _, s := range []state{absent, present, unknown} {
			cell := "-"
			if ok, next := step(s, row.kind, row.out); ok {
				cell = short[next.String()]
			}
			line += fmt.Sprintf("%-9s", cell)
		}
		fmt.Fprintln(&b, strings.TrimRight(line, " "))
	}
	if got := b.String(); got != want {
		t.Errorf("the model's table\n%s\nwant\n%s", got, want)
	}
}
