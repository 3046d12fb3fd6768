package pool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestForEachStartsNoMoreWorkersThanItems: 10 items at a concurrency of 1000
// start at most 10 goroutines, so memory follows the job, not the flag.
func TestForEachStartsNoMoreWorkersThanItems(t *testing.T) {
	before := runtime.NumGoroutine()
	var inside sync.WaitGroup
	inside.Add(10)
	release := make(chan struct{})
	taken := make(chan int)
	go func() {
		taken <- ForEach(t.Context(), indexes(10), 1000, func(int) {
			inside.Done()
			<-release
		})
	}()
	inside.Wait() // all 10 items are running at once
	// The goroutine that runs ForEach, and its workers.
	workers := runtime.NumGoroutine() - before - 1
	close(release)
	if got, want := <-taken, 10; got != want {
		t.Errorf("taken=%d, want %d", got, want)
	}
	if workers > 10 {
		t.Fatalf("ForEach ran %d goroutines for 10 items, want at most 10", workers)
	}
}

func TestForEachBoundsConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var running, peak atomic.Int32
		var done atomic.Int32
		taken := ForEach(t.Context(), indexes(20), 3, func(int) {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Second)
			running.Add(-1)
			done.Add(1)
		})
		if got, want := taken, 20; got != want {
			t.Errorf("taken=%d, want %d", got, want)
		}
		if got, want := done.Load(), int32(20); got != want {
			t.Errorf("done=%d, want %d", got, want)
		}
		if got, want := peak.Load(), int32(3); got != want {
			t.Errorf("peak concurrency=%d, want %d", got, want)
		}
	})
}

// indexes yields 0, 1, ..., n-1.
func indexes(n int) func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// TestCrewKeepsGoroutines: items given one after another, each once the
// last is done, all run on the crew's first goroutine.
func TestCrewKeepsGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ran atomic.Int32
		crew := NewCrew(0, func(int) { ran.Add(1) })
		for i := range 100 {
			if !crew.Give(t.Context(), i) {
				t.Fatalf("Give(%d) = false", i)
			}
			synctest.Wait() // the item is done and its goroutine idle
		}
		if got, want := crew.workers.Load(), int32(1); got != want {
			t.Errorf("goroutines=%d, want %d", got, want)
		}
		crew.Close()
		if got, want := ran.Load(), int32(100); got != want {
			t.Errorf("ran=%d, want %d", got, want)
		}
	})
}

// TestCrewUnbounded: a crew without a bound never makes Give wait, however
// many items are running.
func TestCrewUnbounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		crew := NewCrew(0, func(int) { <-release })
		for i := range 50 {
			if !crew.Give(t.Context(), i) {
				t.Fatalf("Give(%d) = false", i)
			}
		}
		if got, want := crew.workers.Load(), int32(50); got != want {
			t.Errorf("goroutines=%d, want %d", got, want)
		}
		close(release)
		crew.Close()
	})
}
