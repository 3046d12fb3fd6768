package pool

import (
	"context"
	"sync"
)

// Gatherer gathers calls into batches as a group commit does: one batch is
// on its way at a time, and the calls that come meanwhile wait to go
// together in the next. A call that comes while none is on its way leaves
// at once, alone: gathering adds no wait to an idle sender.
//
// Both the HTTP client's batches and the simulation's batching transport
// use it, so that the simulation judges the gathering that runs.
type Gatherer[T any] struct {
	send  func([]T)
	limit func() int

	mu      sync.Mutex
	pending []*gathered[T]
	running bool // a goroutine is sending batches (flush)
}

// gathered is one call waiting in a Gatherer.
type gathered[T any] struct {
	v     T
	taken bool // in a batch on its way; guarded by Gatherer.mu
	done  chan struct{}
}

// NewGatherer returns a Gatherer that sends a batch with send, which must
// have given every call of the batch its outcome when it returns. limit
// says, before each batch, the most calls it may hold (at least one is
// sent whatever it says).
func NewGatherer[T any](send func(batch []T), limit func() int) *Gatherer[T] {
	return &Gatherer[T]{send: send, limit: limit}
}

// Do puts v in the next batch and waits until send has returned for the
// batch that carried it: then it returns false and nil. If ctx ends first,
// Do returns ctx's error at once, and onTheWay says whether v was in a
// batch already handed to send (it may arrive) or still waiting (it is
// taken out and never sent).
func (g *Gatherer[T]) Do(ctx context.Context, v T) (onTheWay bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	c := &gathered[T]{v: v, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	start := !g.running
	g.running = true
	g.mu.Unlock()
	if start {
		go g.flush()
	}
	select {
	case <-c.done:
		return false, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !c.taken {
		for i, p := range g.pending {
			if p == c {
				g.pending = append(g.pending[:i], g.pending[i+1:]...)
				break
			}
		}
	}
	return c.taken, ctx.Err()
}

// flush sends the pending calls in batches until none is left.
func (g *Gatherer[T]) flush() {
	for {
		g.mu.Lock()
		n := min(len(g.pending), max(g.limit(), 1))
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		batch := make([]*gathered[T], n)
		copy(batch, g.pending)
		vs := make([]T, n)
		for i, c := range batch {
			c.taken = true
			vs[i] = c.v
		}
		g.pending = append(g.pending[:0], g.pending[n:]...)
		g.mu.Unlock()
		g.send(vs)
		for _, c := range batch {
			close(c.done)
		}
	}
}

// Waiting returns how many calls wait for the next batch.
func (g *Gatherer[T]) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}
