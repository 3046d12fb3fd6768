package cli

import "testing"

func TestCompactNames(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"node01"}, "node01"},
		{[]string{"node01", "node02", "node03"}, "node01..03"},
		{[]string{"node08", "node09", "node10"}, "node08..10"},
		{[]string{"node01", "node03"}, "node01, node03"},
		{[]string{"a", "b"}, "a, b"},
		{[]string{"n9", "n10"}, "n9, n10"},
		{[]string{"x1", "y2"}, "x1, y2"},
	} {
		if got := compactNames(tc.in); got != tc.want {
			t.Errorf("compactNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
