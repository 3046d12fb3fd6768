package core

import (
	"context"
	"errors"
	"iter"
	"sync"

	"github.com/reliable-ops/rops/core/pool"
)

// The concurrency of bulk jobs: see package pool.
const (
	DefaultConcurrency = pool.DefaultConcurrency
	MaxConcurrency     = pool.MaxConcurrency
	AutoConcurrency    = pool.AutoConcurrency
)

// Report sums up a bulk job.
type Report struct {
	Command    string  `json:"command"`
	Requested  int     `json:"requested"`   // ids taken from the input
	Done       int     `json:"done"`        // operations done
	Unchanged  int     `json:"unchanged"`   // ids already in the wanted state
	RolledBack int     `json:"rolled_back"` // operations undone everywhere
	Pending    int     `json:"pending"`     // operations left for Recover
	Requests   int     `json:"requests"`    // requests sent to nodes
	Retries    int     `json:"retries"`     // requests that repeated a failed one
	Seconds    float64 `json:"seconds"`     // wall time
	// RolledBackIDs lists the ids whose operations were rolled back.
	RolledBackIDs []GroupID `json:"rolled_back_ids,omitempty"`
	// PendingIDs lists the ids whose operations are pending.
	PendingIDs []GroupID `json:"pending_ids,omitempty"`
}

// Add counts res into the report.
func (r *Report) Add(res Result) {
	switch res.Outcome {
	case Done:
		r.Done++
	case Unchanged:
		r.Unchanged++
	case RolledBack:
		r.RolledBack++
		r.RolledBackIDs = append(r.RolledBackIDs, res.ID)
	case Pending:
		r.Pending++
		r.PendingIDs = append(r.PendingIDs, res.ID)
	}
	r.Requests += res.Requests
	r.Retries += res.Retries
}

// Bulk runs op (OpCreate or OpDelete) for every id, concurrency at once
// (MaxConcurrency at most), and reports the sum. With AutoConcurrency (or
// any concurrency < 1) a Limiter chooses how many run at once, from
// DefaultConcurrency up to MaxConcurrency. If each is not
// nil it is called with every result, one at a time. Ids must be valid; an
// invalid one ends rolled back. Once ctx ends no new operation starts;
// Requested counts the ids that were started.
func (c *Coordinator) Bulk(ctx context.Context, op Op, ids iter.Seq[GroupID], concurrency int, each func(Result)) Report {
	ctx, stop := withCrew(ctx)
	defer stop()
	run := c.Create
	if op == OpDelete {
		run = c.Delete
	}
	var hook func(GroupID, Result)
	if each != nil {
		hook = func(_ GroupID, res Result) { each(res) }
	}
	do := func(id GroupID) Result {
		res, _ := run(ctx, id)
		return res
	}
	if concurrency < 1 {
		lim := pool.NewLimiter(DefaultConcurrency, MaxConcurrency)
		raised := false // hooks run one at a time
		return runLimited(ctx, c.cfg.Clock, string(op), ids, lim, do, func(id GroupID, res Result) {
			if !raised {
				raised = raiseForBatches(lim, c.cfg.Nodes)
			}
			if hook != nil {
				hook(id, res)
			}
		})
	}
	return runAll(ctx, c.cfg.Clock, string(op), ids, concurrency, do, hook)
}

// raiseForBatches raises lim's floor to two batches' worth of operations
// once every node sends its writes in batches (see Batcher): a node learns
// that from its first answer, so the job starts at DefaultConcurrency and
// is raised when its first operation ends. Below two batches' worth, the
// batches go out part-empty and every operation pays a larger share of
// each round trip, and at 0.2 faults the limiter, which sees the batches'
// queueing as rising latency, settled well below where throughput peaks
// (BENCHMARKS.md, "Two batches' worth in flight"). It reports whether it
// raised the floor.
func raiseForBatches(lim *pool.Limiter, nodes []Node) bool {
	size := batchSize(nodes)
	if size > 0 {
		lim.RaiseFloor(min(2*size, MaxConcurrency))
	}
	return size > 0
}

// runLimited is runAll with as many items at once as lim allows, each
// result told to lim.
func runLimited[T any](ctx context.Context, clock Clock, command string, items iter.Seq[T], lim *pool.Limiter, run func(T) Result, each func(T, Result)) Report {
	start := clock.Now()
	rep := Report{Command: command}
	var mu sync.Mutex
	taken := pool.ForEachLimited(ctx, items, lim, func(item T) pool.Sample {
		t := clock.Now()
		res := run(item)
		s := pool.Sample{Latency: clock.Now().Sub(t), Clean: res.Retries == 0 && res.Err == nil, Overload: overloaded(res)}
		mu.Lock()
		defer mu.Unlock()
		rep.Add(res)
		if each != nil {
			each(item, res)
		}
		return s
	})
	rep.Requested = taken
	rep.Seconds = clock.Now().Sub(start).Seconds()
	return rep
}

// overloaded says whether res saw a sign of load: a node asked to slow down
// (429 Too Many Requests, or a Retry-After such as a busy rops node's 503 carries) or a
// request timed out. A 500 or an injected 408 is not one.
func overloaded(res Result) bool {
	if isOverload(res.Err) {
		return true
	}
	for _, n := range res.Nodes {
		if isOverload(n.Err) {
			return true
		}
	}
	return false
}

// isOverload reports whether err is a sign of load: the node asked to slow
// down (Error.Overloaded, or a RetryAfter) or the request timed out.
func isOverload(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && (e.Overloaded || e.RetryAfter > 0)
}

// runAll calls run for every item on at most concurrency goroutines and sums
// the results into a report for command; each, if not nil, sees every item
// and its result, one at a time. Once ctx ends no new item starts; Requested
// counts the items started.
func runAll[T any](ctx context.Context, clock Clock, command string, items iter.Seq[T], concurrency int, run func(T) Result, each func(T, Result)) Report {
	start := clock.Now()
	rep := Report{Command: command}
	var mu sync.Mutex
	taken := pool.ForEach(ctx, items, concurrency, func(item T) {
		res := run(item)
		mu.Lock()
		defer mu.Unlock()
		rep.Add(res)
		if each != nil {
			each(item, res)
		}
	})
	rep.Requested = taken
	rep.Seconds = clock.Now().Sub(start).Seconds()
	return rep
}
