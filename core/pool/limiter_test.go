package pool

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// feed gives lim n samples from sample, each through an Acquire and a
// Release, as one operation at a time would.
func feed(tb testing.TB, lim *Limiter, n int, sample func(i int) Sample) {
	tb.Helper()
	for i := range n {
		if err := lim.Acquire(context.Background()); err != nil {
			tb.Fatal(err)
		}
		lim.Release(sample(i))
	}
}

func clean(d time.Duration) func(int) Sample {
	return func(int) Sample { return Sample{Latency: d, Clean: true} }
}

func TestLimiterGrowsWhileLatencyFlat(t *testing.T) {
	lim := NewLimiter(DefaultConcurrency, MaxConcurrency)
	feed(t, lim, 5000, clean(time.Millisecond))
	if got, want := lim.Limit(), MaxConcurrency; got != want {
		t.Fatalf("limit=%d, want %d", got, want)
	}
}

func TestLimiterShrinksOnOverload(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Sample
	}{
		{"overload", Sample{Latency: time.Millisecond, Overload: true}},
		{"rising latency", Sample{Latency: 10 * time.Millisecond, Clean: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := NewLimiter(DefaultConcurrency, 256)
			feed(t, lim, 2000, clean(time.Millisecond))
			before := lim.Limit()
			feed(t, lim, 1000, func(int) Sample { return tc.s })
			if got := lim.Limit(); got >= before/4 {
				t.Fatalf("limit=%d after %s, want under a quarter of %d", got, tc.name, before)
			}
		})
	}
}

// TestLimiterOverloadCutsOncePerRound: the operations in flight when a node
// first says it is overloaded all saw the same overload; the limit is cut
// once for them, not once each.
func TestLimiterOverloadCutsOncePerRound(t *testing.T) {
	lim := NewLimiter(64, 64)
	for range 64 {
		if err := lim.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for range 64 {
		lim.Release(Sample{Overload: true})
	}
	if got, want := lim.Limit(), 48; got != want {
		t.Fatalf("limit=%d, want %d", got, want)
	}
}

// TestLimiterIgnoresSteadyFailures: a fifth of the operations retry a 500
// and take ten times as long; they are noise, not load, and the limit still
// grows to its cap.
func TestLimiterIgnoresSteadyFailures(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lim := NewLimiter(DefaultConcurrency, MaxConcurrency)
	feed(t, lim, 20000, func(int) Sample {
		if rng.Float64() < 0.2 {
			return Sample{Latency: 10 * time.Millisecond}
		}
		return Sample{Latency: time.Millisecond + time.Duration(rng.Int64N(int64(time.Millisecond/2))), Clean: true}
	})
	if got, want := lim.Limit(), MaxConcurrency; got != want {
		t.Fatalf("limit=%d, want %d", got, want)
	}
}

// TestLimiterIgnoresSpikes: one clean operation in ten takes 50 times as
// long, as a synced journal's or a busy machine's sometimes do; the window's
// median, not its mean, is the latency, and the limit still grows to its
// cap.
func TestLimiterIgnoresSpikes(t *testing.T) {
	const seed = 3
	rng := rand.New(rand.NewPCG(seed, seed))
	lim := NewLimiter(DefaultConcurrency, MaxConcurrency)
	feed(t, lim, 5000, func(int) Sample {
		if rng.IntN(10) == 0 {
			return Sample{Latency: 50 * time.Millisecond, Clean: true}
		}
		return Sample{Latency: time.Millisecond, Clean: true}
	})
	if got, want := lim.Limit(), MaxConcurrency; got != want {
		t.Fatalf("seed %d: limit=%d, want %d", seed, got, want)
	}
}

// TestLimiterHoldsOnOneSlowWindow: a single window of high latency holds
// the limit instead of cutting it; a second in a row cuts.
func TestLimiterHoldsOnOneSlowWindow(t *testing.T) {
	lim := NewLimiter(DefaultConcurrency, 256)
	feed(t, lim, 2000, clean(time.Millisecond))
	// Up to the end of a window, so the slow ones fill the next alone.
	for lim.ops > 0 {
		feed(t, lim, 1, clean(time.Millisecond))
	}
	before := lim.Limit()
	cleanLen, allLen := limiterWindow(before)
	window := max(cleanLen, allLen)
	feed(t, lim, window, clean(10*time.Millisecond))
	if got := lim.Limit(); got != before {
		t.Fatalf("limit=%d after one slow window, want %d held", got, before)
	}
	feed(t, lim, window, clean(10*time.Millisecond))
	if got := lim.Limit(); got >= before {
		t.Fatalf("limit=%d after two slow windows, want under %d", got, before)
	}
}

// TestLimiterRaiseFloor: a raised floor lifts the limit at once and rising
// latency no longer takes it below; a node's overload signal still does,
// and a floor raised after such a cut changes nothing.
func TestLimiterRaiseFloor(t *testing.T) {
	lim := NewLimiter(DefaultConcurrency, MaxConcurrency)
	lim.RaiseFloor(256)
	if got, want := lim.Limit(), 256; got != want {
		t.Fatalf("limit=%d after RaiseFloor(256), want %d", got, want)
	}
	feed(t, lim, 20000, clean(50*time.Millisecond))   // the lowest latency seen
	feed(t, lim, 20000, clean(5000*time.Millisecond)) // a hundred times that
	if got := lim.Limit(); got < 256 {
		t.Fatalf("limit=%d after rising latency, want the floor of 256 at least", got)
	}
	feed(t, lim, 2000, func(int) Sample { return Sample{Latency: time.Millisecond, Overload: true} })
	cut := lim.Limit()
	if cut >= 256 {
		t.Fatalf("limit=%d after overload signals, want under the floor of 256", cut)
	}
	lim.RaiseFloor(512)
	if got := lim.Limit(); got != cut {
		t.Fatalf("limit=%d after RaiseFloor(512) following an overload cut, want %d kept", got, cut)
	}
	lim.RaiseFloor(1 << 20)
	if got := lim.Limit(); got > MaxConcurrency {
		t.Fatalf("limit=%d, over the ceiling %d", got, MaxConcurrency)
	}
}
