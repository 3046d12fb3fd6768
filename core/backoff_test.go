package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// delays calls b.Next up to n times and returns the delays until it stops.
func delays(b Backoff, n int) []time.Duration {
	var ds []time.Duration
	for range n {
		d, stop := b.Next()
		if stop {
			break
		}
		ds = append(ds, d)
	}
	return ds
}

func ms(vs ...int) []time.Duration {
	ds := make([]time.Duration, len(vs))
	for i, v := range vs {
		ds[i] = time.Duration(v) * time.Millisecond
	}
	return ds
}

func TestExponential(t *testing.T) {
	for _, tc := range []struct {
		name      string
		base, max time.Duration
		retries   int
		want      []time.Duration
	}{
		{"doubles up to the cap, then stops after the retries", 10 * time.Millisecond, 500 * time.Millisecond, 10,
			ms(10, 20, 40, 80, 160, 320, 500, 500, 500, 500)},
		{"no retries", 10 * time.Millisecond, time.Second, 0, nil},
		{"cap below base", time.Second, 300 * time.Millisecond, 3, ms(300, 300, 300)},
		{"cap not a power of two of base", 3 * time.Millisecond, 20 * time.Millisecond, 5, ms(3, 6, 12, 20, 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := delays(Exponential(tc.base, tc.max, tc.retries, nil), 100)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("delays=%v, want %v", got, tc.want)
			}
		})
	}
}

func TestExponentialUnlimited(t *testing.T) {
	b := Exponential(time.Millisecond, 50*time.Millisecond, -1, nil)
	if got, want := len(delays(b, 1000)), 1000; got != want {
		t.Fatalf("%d retries, want %d: a negative limit means none", got, want)
	}
}

func TestExponentialNeverOverflows(t *testing.T) {
	b := Exponential(time.Hour, math.MaxInt64, -1, rand.New(rand.NewPCG(1, 2)))
	prev := time.Duration(0)
	for i, d := range delays(b, 200) {
		if d <= 0 {
			t.Fatalf("delay %d=%v, want > 0", i, d)
		}
		if i > 0 && d < prev/2 {
			t.Fatalf("delay %d=%v after %v: the upper half must not shrink", i, d, prev)
		}
		prev = max(prev, d)
	}
}

func TestExponentialJitter(t *testing.T) {
	const seed = 42
	nominal := ms(10, 20, 40, 80, 160, 320, 500, 500, 500, 500)
	draw := func(seed uint64) []time.Duration {
		return delays(Exponential(10*time.Millisecond, 500*time.Millisecond, 10, rand.New(NewLockedSource(seed))), 100)
	}
	got := draw(seed)
	if len(got) != len(nominal) {
		t.Fatalf("%d delays, want %d", len(got), len(nominal))
	}
	varied := false
	for i, d := range got {
		if d < nominal[i]/2 || d > nominal[i] {
			t.Errorf("seed %d: delay %d=%v, want within [%v, %v]", seed, i, d, nominal[i]/2, nominal[i])
		}
		varied = varied || d != nominal[i]
	}
	if !varied {
		t.Errorf("seed %d: no delay was jittered: %v", seed, got)
	}
	if again := draw(seed); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("seed %d gave %v, then %v: not reproducible", seed, got, again)
	}
	// Over many seeds the jitter spans its whole range.
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for s := range uint64(500) {
		d := draw(s)[6] // nominal 500 ms
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > 260*time.Millisecond || hi < 490*time.Millisecond {
		t.Errorf("jitter of a 500ms delay spans [%v, %v], want about [250ms, 500ms]", lo, hi)
	}
}

func TestBackoffFunc(t *testing.T) {
	n := 0
	b := BackoffFunc(func() (time.Duration, bool) { n++; return time.Duration(n), n >= 3 })
	if got, want := fmt.Sprint(delays(b, 10)), "[1ns 2ns]"; got != want {
		t.Fatalf("delays=%s, want %s", got, want)
	}
}

func TestLockedSource(t *testing.T) {
	a, b := rand.New(NewLockedSource(7)), rand.New(NewLockedSource(7))
	for range 10 {
		if x, y := a.Uint64(), b.Uint64(); x != y {
			t.Fatalf("same seed gave %d and %d", x, y)
		}
	}
	// Safe for concurrent use (the race detector checks).
	r := rand.New(NewLockedSource(1))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				r.Int64N(100)
			}
		})
	}
	wg.Wait()
}

func TestSystemClockSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c SystemClock
		start := c.Now()
		if err := c.Sleep(t.Context(), time.Hour); err != nil {
			t.Fatalf("Sleep: %v", err)
		}
		if got, want := c.Now().Sub(start), time.Hour; got != want {
			t.Fatalf("slept %v, want %v", got, want)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sleep past the deadline: %v", err)
		}
		if got, want := c.Now().Sub(start), time.Hour+time.Minute; got != want {
			t.Fatalf("at %v, want %v: Sleep did not end with its context", got, want)
		}
		if err := c.Sleep(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sleep(0) on an ended context: %v", err)
		}
		if err := c.Sleep(t.Context(), -time.Second); err != nil {
			t.Fatalf("Sleep(<0): %v", err)
		}
	})
}

func TestQuickFirst(t *testing.T) {
	got := delays(QuickFirst(Exponential(10*time.Millisecond, 500*time.Millisecond, 3, nil)), 100)
	if want := ms(1, 10, 20, 40); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delays=%v, want %v", got, want)
	}
	if got := delays(QuickFirst(Exponential(time.Millisecond, time.Second, 0, nil)), 100); len(got) != 1 {
		t.Fatalf("delays=%v, want one quick retry before the inner backoff stops", got)
	}
}

func TestPace(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		took time.Duration
		want time.Duration
	}{
		{"a fast 500 is retried as soon as it came", Errorf(ETransient, "500"), 300 * time.Microsecond, 300 * time.Microsecond},
		{"a slow 500 waits as long as it took", Errorf(ETransient, "500"), 80 * time.Millisecond, 80 * time.Millisecond},
		{"a fast 429 still waits the base", &Error{Code: ETransient, Overloaded: true}, time.Millisecond, DefaultBackoffBase},
		{"a fast Retry-After still waits the base", &Error{Code: ETransient, RetryAfter: time.Millisecond}, time.Millisecond, DefaultBackoffBase},
		{"a timeout waits no longer than the cap", context.DeadlineExceeded, 2 * time.Second, DefaultBackoffCap},
		{"a refused dial waits the base", Errorf(EUnavailable, "refused"), 0, DefaultBackoffBase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pace(tc.err, tc.took); got != tc.want {
				t.Fatalf("pace=%v, want %v", got, tc.want)
			}
		})
	}
}
