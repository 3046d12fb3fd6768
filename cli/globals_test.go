package cli

import (
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
)

// TestBackoffQuickFirst: the first retry comes after 1 ms, the next ones
// exponentially from core.DefaultBackoffBase (±50% jitter), retries in all.
func TestBackoffQuickFirst(t *testing.T) {
	const retries = 4
	b := backoff(retries)
	var ds []time.Duration
	for {
		d, stop := b.Next()
		if stop {
			break
		}
		ds = append(ds, d)
	}
	if got, want := len(ds), retries; got != want {
		t.Fatalf("%d retries (%v), want %d", got, ds, want)
	}
	if got, want := ds[0], core.DefaultFirstRetry; got != want {
		t.Fatalf("first retry after %v, want %v", got, want)
	}
	if lo, hi := core.DefaultBackoffBase/2, core.DefaultBackoffBase*3/2; ds[1] < lo || ds[1] > hi {
		t.Fatalf("second retry after %v, want %v to %v", ds[1], lo, hi)
	}
}

// TestBackoffsAreGoRetry: in the Config the CLI builds, retries and
// compensation share one backoff, go-retry's, whose ±50% jitter sometimes
// waits longer than the step itself, which core.Exponential's equal jitter
// (core's default) never does; and compensation has no limit of its own
// (its timeout ends it) and stays under core.DefaultBackoffCap.
func TestBackoffsAreGoRetry(t *testing.T) {
	cfg := (&Globals{}).coordinatorConfig(nil, core.DefaultRetries)
	if cfg.NewBackoff == nil || cfg.NewCompensationBackoff == nil {
		t.Fatal("the CLI leaves a backoff to core's default")
	}
	// afterFirst returns the delay of b's first step after skip others.
	afterFirst := func(b core.Backoff, skip int) time.Duration {
		for range skip {
			b.Next()
		}
		d, stop := b.Next()
		if stop {
			t.Fatal("the backoff stopped at once")
		}
		return d
	}
	for _, tc := range []struct {
		name string
		new  func() core.Backoff
		skip int // the quick first retry
	}{
		{"retries", cfg.NewBackoff, 1},
		{"compensation", cfg.NewCompensationBackoff, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const draws = 200
			lo, hi := core.DefaultBackoffBase/2, core.DefaultBackoffBase*3/2
			above := 0
			for range draws {
				d := afterFirst(tc.new(), tc.skip)
				if d < lo || d > hi {
					t.Fatalf("first backoff step %v, want %v to %v", d, lo, hi)
				}
				if d > core.DefaultBackoffBase {
					above++
				}
			}
			if above == 0 {
				t.Fatalf("no step of %d over %v: not go-retry's ±50%% jitter", draws, core.DefaultBackoffBase)
			}
		})
	}
	b := cfg.NewCompensationBackoff()
	for i := range 200 {
		d, stop := b.Next()
		if stop {
			t.Fatalf("compensation stopped after %d steps; only its timeout ends it", i)
		}
		if d > core.DefaultBackoffCap {
			t.Fatalf("step %d waits %v, over the cap %v", i, d, core.DefaultBackoffCap)
		}
	}
}
