// Package pool runs the items of a job on a bounded number of goroutines,
// a fixed number (ForEach) or as many as an adaptive Limiter allows
// (ForEachLimited), kept from one item to the next (Crew). It imports only
// the standard library, as core does.
package pool

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
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
	crew := NewCrew(min(concurrency, MaxConcurrency), f)
	taken := 0
	for item := range items {
		if ctx.Err() != nil || !crew.Give(ctx, item) {
			break
		}
		taken++
	}
	crew.Close()
	return taken
}

// Crew calls f on the items given to it, each on a goroutine of its own
// that it keeps for the next item once f returns: the same goroutine serves
// many items, so its stack, grown by the first, needs no growing again (a
// goroutine starts with a small stack, and growing it copies every frame).
// Its methods are safe for concurrent use, except that no Give may start
// once Close has.
type Crew[T any] struct {
	f       func(T)
	max     int32
	workers atomic.Int32
	work    chan T
	wg      sync.WaitGroup
}

// NewCrew returns a Crew that calls f on at most max goroutines at once (no
// bound if max < 1).
func NewCrew[T any](max int, f func(T)) *Crew[T] {
	return &Crew[T]{f: f, max: int32(max), work: make(chan T)}
}

// Give hands item to an idle goroutine of c, or to a new one if none is
// idle and fewer than c's bound run; else it waits for one to be idle. It
// reports whether one took item: false if ctx ended first.
func (c *Crew[T]) Give(ctx context.Context, item T) bool {
	select {
	case c.work <- item: // an idle worker took it
		return true
	default:
	}
	if n := c.workers.Add(1); c.max < 1 || n <= c.max {
		c.wg.Go(func() {
			c.f(item)
			for item := range c.work {
				c.f(item)
			}
		})
		return true
	}
	c.workers.Add(-1)
	select {
	case c.work <- item:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close waits for the items given to be done and ends c's goroutines.
func (c *Crew[T]) Close() {
	close(c.work)
	c.wg.Wait()
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
