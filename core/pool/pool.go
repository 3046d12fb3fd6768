// Package pool runs the items of a job on a bounded number of goroutines,
// a fixed number (ForEach) or as many as an adaptive Limiter allows
// (ForEachLimited). It imports only the standard library, as core does.
package pool

import (
	"context"
	"iter"
	"sync"
)

// DefaultConcurrency is how many operations a bulk job runs at once, as the
// original job did.
const DefaultConcurrency = 16

// MaxConcurrency bounds how many operations a bulk job runs at once: each
// holds a connection to every node, so more would exhaust file descriptors
// and memory long before it bought speed, and a typo (--concurrency 300000)
// must not.
const MaxConcurrency = 1024

// ForEach calls f for every item of items on at most concurrency goroutines
// (DefaultConcurrency if < 1, MaxConcurrency at most) and returns how many
// items it took. It stops taking items once ctx ends.
//
// A worker is started only for an item that finds none idle, so a job never
// runs more goroutines than it has items, and memory follows the work rather
// than the concurrency asked for.
func ForEach[T any](ctx context.Context, items iter.Seq[T], concurrency int, f func(T)) int {
	if concurrency < 1 {
		concurrency = DefaultConcurrency
	}
	concurrency = min(concurrency, MaxConcurrency)
	work := make(chan T)
	var wg sync.WaitGroup
	workers, taken := 0, 0
	for item := range items {
		if ctx.Err() != nil {
			break
		}
		select {
		case work <- item: // an idle worker took it
			taken++
			continue
		default:
		}
		if workers < concurrency {
			workers++
			taken++
			wg.Go(func() {
				f(item)
				for item := range work {
					f(item)
				}
			})
			continue
		}
		select {
		case work <- item:
			taken++
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	return taken
}

// ForEachLimited is ForEach with as many calls at once as lim allows: an
// item starts once lim grants it a slot, and f's Sample is given back to lim.
// It returns how many items it took.
func ForEachLimited[T any](ctx context.Context, items iter.Seq[T], lim *Limiter, f func(T) Sample) int {
	// A worker per slot in use, started on demand as ForEach's are; the
	// limiter, not the worker count, bounds the calls at once.
	return ForEach(ctx, gated(ctx, items, lim), MaxConcurrency, func(item T) {
		lim.Release(f(item))
	})
}

// gated yields the items of items, each once lim grants it a slot, and stops
// when ctx ends.
func gated[T any](ctx context.Context, items iter.Seq[T], lim *Limiter) iter.Seq[T] {
	return func(yield func(T) bool) {
		for item := range items {
			if lim.Acquire(ctx) != nil {
				return
			}
			if !yield(item) {
				lim.Release(Sample{})
				return
			}
		}
	}
}
