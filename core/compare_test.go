package core

import (
	"testing"
	"testing/synctest"
)

// TestCompare: comparing nodes is a function over them: no Coordinator to
// build. It reports what they hold, and a node that fails is retried only
// as many times as asked (none by default), as GET /stats wants.
func TestCompare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nodes := newCluster(3)
		nodes[0].put("a", "1.000001")
		nodes[1].put("a", "1.000001")
		st, err := Compare(t.Context(), nodes.nodes(), CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Consistent || st.DivergentCount != 1 || st.Divergent[0].ID != "a" {
			t.Fatalf("stats=%+v, want a divergent on node03", st)
		}

		nodes[2].downFor = 1
		if _, err := Compare(t.Context(), nodes.nodes(), CompareOptions{}); ErrorCode(err) != EUnavailable {
			t.Fatalf("err=%v, want node03's refusal, not retried", err)
		}
		nodes[2].downFor = 1
		if _, err := Compare(t.Context(), nodes.nodes(), CompareOptions{Retries: 1}); err != nil {
			t.Fatalf("err=%v, want the one retry to read node03", err)
		}
		if _, err := Compare(t.Context(), nil, CompareOptions{}); ErrorCode(err) != EInvalid {
			t.Fatalf("no nodes: err=%v, want EInvalid", err)
		}
	})
}
