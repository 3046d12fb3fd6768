package core

import (
	"runtime"
	"sync"
	"testing"
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
		taken <- forEach(t.Context(), indexes(10), 1000, func(int) {
			inside.Done()
			<-release
		})
	}()
	inside.Wait() // all 10 items are running at once
	// The goroutine that runs forEach, and its workers.
	workers := runtime.NumGoroutine() - before - 1
	close(release)
	if got, want := <-taken, 10; got != want {
		t.Errorf("taken=%d, want %d", got, want)
	}
	if workers > 10 {
		t.Fatalf("forEach ran %d goroutines for 10 items, want at most 10", workers)
	}
}
