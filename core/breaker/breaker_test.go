package breaker

import (
	"testing"
	"time"
)

// TestCircuit is the table test of one node's circuit: each case feeds it
// requests at times (seconds) and checks where it ends.
func TestCircuit(t *testing.T) {
	o := New(Options{Failures: 3, Window: time.Second, Cooldown: 2 * time.Second}).Options()
	type req struct {
		at      float64 // seconds
		notSent bool    // its outcome: not sent, or any answer
	}
	for _, tc := range []struct {
		name     string
		reqs     []req
		want     circuitState
		admitsAt float64 // a request at this time is admitted, or refused
		admitted bool
		answerAt float64 // if not 0, an answer then to a request sent before
	}{
		{"fresh: closed", nil, closed, 0, true, 0},
		{"failures, too few", []req{{0, true}, {1, true}}, closed, 1.5, true, 0},
		{"failures, too soon", []req{{0, true}, {0.2, true}, {0.4, true}}, closed, 0.5, true, 0},
		{"enough failures over the window: open", []req{{0, true}, {0.5, true}, {1, true}}, open, 1.5, false, 0},
		{"an answer resets the count", []req{{0, true}, {0.5, true}, {0.7, false}, {0.8, true}, {1.2, true}}, closed, 1.3, true, 0},
		{"a timeout or 5xx is an answer", []req{{0, true}, {0.5, true}, {1, false}}, closed, 1.1, true, 0},
		{"open, cooldown over: trial", []req{{0, true}, {0.5, true}, {1, true}}, trial, 3, true, 0},
		{"trial, not sent: open again", []req{{0, true}, {0.5, true}, {1, true}, {3, true}}, open, 4.9, false, 0},
		{"trial, then open again, cooldown over", []req{{0, true}, {0.5, true}, {1, true}, {3, true}}, trial, 5, true, 0},
		{"trial, an answer: closed", []req{{0, true}, {0.5, true}, {1, true}, {3, false}}, closed, 3.1, true, 0},
		{"open, a late answer of a request sent before: closed", []req{{0, true}, {0.5, true}, {1, true}}, closed, 1.3, true, 1.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c circuit
			t0 := time.Unix(1e9, 0)
			at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
			for _, r := range tc.reqs {
				if !c.admit(at(r.at), o) {
					t.Fatalf("request at %vs refused (%s)", r.at, c.state)
				}
				c.observe(at(r.at), r.notSent, o)
			}
			if tc.answerAt != 0 {
				c.observe(at(tc.answerAt), false, o)
			}
			if got, want := c.admit(at(tc.admitsAt), o), tc.admitted; got != want {
				t.Errorf("admit at %vs = %v, want %v", tc.admitsAt, got, want)
			}
			if got, want := c.state, tc.want; got != want {
				t.Errorf("state=%v, want %v", got, want)
			}
		})
	}
}
