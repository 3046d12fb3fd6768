package cli

import (
	"bytes"
	"testing"

	"github.com/reliable-ops/rops/core"
)

func TestPrintStatsCountsOnly(t *testing.T) {
	nodes := []core.NodeCount{{Node: "node01", Count: 2}, {Node: "node02", Count: 3}}
	for _, tc := range []struct {
		consistent bool
		want       string
	}{
		{true, "node01   2\nnode02   3\nconsistent counts (a node cannot list its ids, so only the counts were compared)\n"},
		{false, "node01   2\nnode02   3\ninconsistent: the nodes hold different numbers of records (a node cannot list its ids, so only the counts were compared)\n"},
	} {
		var b bytes.Buffer
		printStats(&b, statsJSON{Consistent: tc.consistent, CountsOnly: true}, nodes, false)
		if got := b.String(); got != tc.want {
			t.Errorf("printStats = %q, want %q", got, tc.want)
		}
	}
}

func TestPrintStatsSettled(t *testing.T) {
	nodes := []core.NodeCount{{Node: "node01", Count: 2}, {Node: "node02", Count: 2}}
	var b bytes.Buffer
	printStats(&b, statsJSON{Consistent: true, Settled: 3}, nodes, false)
	want := "node01   2\nnode02   2\n(3 ids changed while the nodes were listed: read again, every node agrees on them)\nconsistent: every node holds the same ids\n"
	if got := b.String(); got != want {
		t.Errorf("printStats = %q, want %q", got, want)
	}
}
