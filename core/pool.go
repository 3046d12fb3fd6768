package core

import (
	"context"
	"iter"
	"sync"
)

// DefaultConcurrency is how many operations a bulk job runs at once, as the
// original job did.
const DefaultConcurrency = 16

// forEach calls f for every item of items on at most concurrency goroutines
// and returns how many items it took. It stops taking items once ctx ends.
func forEach[T any](ctx context.Context, items iter.Seq[T], concurrency int, f func(T)) int {
	if concurrency < 1 {
		concurrency = DefaultConcurrency
	}
	work := make(chan T)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for item := range work {
				f(item)
			}
		})
	}
	taken := 0
	for item := range items {
		if ctx.Err() != nil {
			break
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
