package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// scanNode is a fakeNode that streams (Scanner): its Scan reads the
// fakeNode's pages, faults and all, and the first breaks scans break off
// with a transient error after every records each.
type scanNode struct {
	*fakeNode
	breaks, every int
	// pause, if set, is waited on the bubble's clock before each record.
	pause time.Duration
	// repeat sends every record twice: a node that misorders.
	repeat bool
	scans  atomic.Int64
}

var _ Scanner = (*scanNode)(nil)

func (n *scanNode) Scan(ctx context.Context, after GroupID, fn func(Record) bool) error {
	k := int(n.scans.Add(1))
	sent, broke := 0, false
	var err error
	serr := Scan(ctx, n.fakeNode, after, func(rec Record) bool {
		if k <= n.breaks && sent == n.every {
			broke = true
			return false
		}
		if n.pause > 0 {
			if err = (SystemClock{}).Sleep(ctx, n.pause); err != nil {
				return false
			}
		}
		sent++
		return fn(rec) && (!n.repeat || fn(rec))
	})
	switch {
	case broke:
		return &Error{Code: ETransient, Message: n.name + ": the stream broke off"}
	case err != nil:
		return err
	}
	return serr
}

// scanning returns e's nodes as Scanners, with what set sets on each.
func scanning(e *env, set func(i int, n *scanNode)) []*scanNode {
	out := make([]*scanNode, len(e.nodes))
	for i, n := range e.nodes {
		out[i] = &scanNode{fakeNode: n}
		if set != nil {
			set(i, out[i])
		}
		e.cfg.Nodes[i] = out[i]
	}
	return out
}

// TestStatsScanSameAsList: over random holdings and page sizes, Stats over
// nodes that stream reports what it reports over nodes it pages through.
func TestStatsScanSameAsList(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	for run := range 50 {
		h := holdings{}
		for _, name := range []string{"node01", "node02", "node03"} {
			h[name] = map[GroupID]Token{}
		}
		for i := range rng.IntN(300) {
			for name := range h {
				if rng.IntN(10) > 0 {
					h[name][GroupID(fmt.Sprintf("g%04d", i))] = Token(fmt.Sprint(rng.IntN(3)))
				}
			}
		}
		opts := StatsOptions{PageSize: 1 + rng.IntN(20), MaxDivergent: rng.IntN(50)}
		breaks := rng.IntN(4)
		stats := func(scan bool) string {
			var out string
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				e.load(h)
				if scan {
					scanning(e, func(i int, n *scanNode) { n.breaks, n.every = breaks, 1+i*7 })
				}
				st, err := e.coordinator().Stats(t.Context(), opts)
				out = fmt.Sprintf("%+v %v", st, err)
			})
			return out
		}
		if list, scan := stats(false), stats(true); list != scan {
			t.Fatalf("seed %d, run %d: over scans %s, over pages %s", seed, run, scan, list)
		}
	}
}

func TestStatsScan(t *testing.T) {
	ids := func(n int) map[GroupID]Token {
		m := map[GroupID]Token{}
		for i := range n {
			m[GroupID(fmt.Sprintf("g%03d", i))] = "T"
		}
		return m
	}
	all := holdings{"node01": ids(50), "node02": ids(50), "node03": ids(50)}
	for _, tc := range []struct {
		name    string
		set     func(i int, n *scanNode)
		opts    StatsOptions
		scans   []int64 // per node; nil: not checked
		wantErr []string
	}{{
		name:  "one scan per node",
		opts:  StatsOptions{PageSize: 7},
		scans: []int64{1, 1, 1},
	}, {
		name: "a broken stream resumes after its last record",
		set: func(i int, n *scanNode) {
			if i == 1 {
				n.breaks, n.every = 3, 7
			}
		},
		opts:  StatsOptions{PageSize: 4},
		scans: []int64{1, 4, 1},
	}, {
		// Every scan delivers records, so each retry starts a fresh
		// backoff: more breaks than DefaultRetries still finish.
		name: "a stream that breaks often but advances finishes",
		set: func(i int, n *scanNode) {
			if i == 2 {
				n.breaks, n.every = 2*DefaultRetries, 2
			}
		},
		scans: []int64{1, 1, 2*DefaultRetries + 1},
	}, {
		name: "a stream that breaks without advancing fails the call",
		set: func(i int, n *scanNode) {
			if i == 1 {
				n.breaks, n.every = 1000, 0
			}
		},
		wantErr: []string{"cannot list the records of node02", "the stream broke off", "retries exhausted"},
	}, {
		name: "a node that misorders fails the call",
		set: func(i int, n *scanNode) {
			n.repeat = i == 0
		},
		wantErr: []string{"node01 listed", "records must come sorted by id"},
	}, {
		name: "a node silent for the request timeout fails the call",
		set: func(i int, n *scanNode) {
			if i == 2 {
				n.pause = 2 * time.Second
			}
		},
		opts:    StatsOptions{PageSize: 5},
		wantErr: []string{"cannot list the records of node03", "sent no record for 1s"},
	}, {
		// The timeout bounds the silence, not the scan.
		name: "a slow node that keeps sending finishes",
		set: func(i int, n *scanNode) {
			if i == 1 {
				n.pause = 600 * time.Millisecond
			}
		},
		opts:  StatsOptions{PageSize: 1},
		scans: []int64{1, 1, 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				e.cfg.RequestTimeout = time.Second
				e.load(all)
				nodes := scanning(e, tc.set)
				st, err := e.coordinator().Stats(t.Context(), tc.opts)
				if tc.wantErr != nil {
					for _, want := range tc.wantErr {
						if err == nil || !strings.Contains(err.Error(), want) {
							t.Fatalf("err=%v, want one saying %q", err, want)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("Stats: %v", err)
				}
				for i, nc := range st.Nodes {
					if got, want := nc.Count, 50; got != want {
						t.Errorf("%s count=%d, want %d", nodes[i].name, got, want)
					}
				}
				if !st.Consistent {
					t.Errorf("consistent=false, want true: %+v", st)
				}
				for i, n := range nodes {
					if got := n.scans.Load(); tc.scans != nil && got != tc.scans[i] {
						t.Errorf("%s scans=%d, want %d", n.name, got, tc.scans[i])
					}
					if got := n.callCount("List"); got == 0 {
						t.Errorf("%s was not read", n.name)
					}
				}
			})
		})
	}
}

// TestStatsScanStops: a Stats that fails on one node stops the scans of the
// others, and returns once they have stopped (synctest fails a test that
// leaves goroutines behind).
func TestStatsScanStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.load(holdings{"node01": {"a": "1", "b": "1"}, "node02": {"a": "1"}})
		scanning(e, func(i int, n *scanNode) {
			if i == 0 {
				n.pause = time.Hour // node01 never gets far
			}
		})
		e.nodes[2].down = true
		if _, err := e.coordinator().Stats(t.Context(), StatsOptions{PageSize: 1}); err == nil {
			t.Fatal("Stats: no error with node03 down")
		}
	})
}

// instantClock stands still and sleeps no time, as a test's clock may.
type instantClock struct{}

func (instantClock) Now() time.Time { return time.Unix(1700000000, 0) }

func (instantClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// TestStatsScanInstantClock: the silence of a scan is timed on real time,
// as a request's timeout is, not on the injected clock, which may not sleep
// at all: a regression test, as a watchdog on such a clock took every scan
// for silent at once.
func TestStatsScanInstantClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.cfg.Clock = instantClock{}
		e.load(holdings{"node01": {"a": "1"}, "node02": {"a": "1"}, "node03": {"a": "1"}})
		scanning(e, func(_ int, n *scanNode) { n.pause = time.Second })
		st, err := e.coordinator().Stats(t.Context(), StatsOptions{})
		if err != nil || !st.Consistent {
			t.Fatalf("Stats=%+v, %v; want every node to agree", st, err)
		}
	})
}
