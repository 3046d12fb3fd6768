// Package nodes is the faulty cluster: a Node is a core.Store seen through
// injected faults (random 500s and 408s, lost acknowledgements, latency,
// hangs, a node that is down), drawn from a seed so that a run can be
// replayed exactly, concurrent or not. The same faults serve embedded
// nodes and the HTTP server. Logged wraps any core.Node with a request log.
package nodes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/reliable-ops/rops/core"
)

// Options configures a Node.
type Options struct {
	// Faults are the faults the node starts with; see Faults.Validate.
	Faults Faults
	// Seed seeds the node's RNG: the same seed and calls give the same
	// faults.
	Seed uint64
	// Clock sleeps the latency. Nil means core.SystemClock.
	Clock core.Clock
}

// Node is a core.Node made of a core.Store and faults. Faults apply in this
// order: Down fails at once; Latency and Jitter delay; then, for Create,
// Delete and Get only (the original's group routes), HangRate, ErrorRate and
// AmbiguousRate. List and Count see only Down and the delay. Errors of the
// store pass through unchanged. A Node is safe for concurrent use, including
// SetFaults while calls run.
type Node struct {
	name  string
	store core.Store
	clock core.Clock

	seed uint64

	mu     sync.Mutex // guards faults and calls
	faults Faults
	calls  map[callKey]uint64 // calls so far per method and id
}

// callKey names the calls whose faults form one reproducible sequence.
type callKey struct {
	method string
	id     core.GroupID
}

// maxTrackedCalls bounds the call counts a long-running node keeps; past it
// they start again from zero, which only shifts which calls fail.
const maxTrackedCalls = 1 << 17

var _ core.Node = (*Node)(nil)

// New returns a Node named name over store. It panics if opts.Faults is
// invalid: check input with Faults.Validate first.
func New(name string, store core.Store, opts Options) *Node {
	if err := opts.Faults.Validate(); err != nil {
		panic("nodes.New: " + err.Error())
	}
	if opts.Clock == nil {
		opts.Clock = core.SystemClock{}
	}
	return &Node{
		name:   name,
		store:  store,
		clock:  opts.Clock,
		seed:   opts.Seed,
		faults: opts.Faults,
		calls:  make(map[callKey]uint64),
	}
}

// Faulty returns the *Node inside n, looking through Logged and any other
// wrapper with an Unwrap() core.Node method, so that faults can be changed on
// a node that is wrapped.
func Faulty(n core.Node) (*Node, bool) {
	for n != nil {
		switch v := n.(type) {
		case *Node:
			return v, true
		case interface{ Unwrap() core.Node }:
			n = v.Unwrap()
		default:
			return nil, false
		}
	}
	return nil, false
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Faults returns the faults now in force.
func (n *Node) Faults() Faults {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.faults
}

// SetFaults replaces the faults for calls that start from now on; calls
// already running keep the faults they started with. It returns an EInvalid
// error, and changes nothing, if f is invalid.
func (n *Node) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults = f
	return nil
}

// Create creates the record on the store, subject to all faults.
func (n *Node) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	return n.group(ctx, "create", id, func(ctx context.Context) error {
		return n.store.Create(ctx, id, token)
	})
}

// Delete deletes the record from the store, subject to all faults.
func (n *Node) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	return n.group(ctx, "delete", id, func(ctx context.Context) error {
		return n.store.Delete(ctx, id, token)
	})
}

// Get reads the record from the store, subject to all faults.
func (n *Node) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	var rec core.Record
	err := n.group(ctx, "get", id, func(ctx context.Context) error {
		var err error
		rec, err = n.store.Get(ctx, id)
		return err
	})
	if err != nil {
		return core.Record{}, err
	}
	return rec, nil
}

// List lists the store's records, subject to Down and the delay only.
func (n *Node) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	if _, _, err := n.enter(ctx, "list", after); err != nil {
		return nil, err
	}
	return n.store.List(ctx, after, limit)
}

// Count counts the store's records, subject to Down and the delay only.
func (n *Node) Count(ctx context.Context) (int, error) {
	if _, _, err := n.enter(ctx, "count", ""); err != nil {
		return 0, err
	}
	return n.store.Count(ctx)
}

// group runs do, a call on one of the original's group routes, under every
// fault.
func (n *Node) group(ctx context.Context, method string, id core.GroupID, do func(ctx context.Context) error) error {
	f, r, err := n.enter(ctx, method, id)
	if err != nil {
		return err
	}
	if r.hang < f.HangRate {
		<-ctx.Done()
		return n.unanswered(ctx.Err())
	}
	if r.fail < f.ErrorRate {
		return randomError(r.failStatus)
	}
	err = do(ctx)
	if r.lost < f.AmbiguousRate {
		// The answer, success or failure, never reaches the caller.
		return randomError(r.lostStatus)
	}
	return err
}

// enter takes this call's faults and draws, and applies the faults every
// call sees: Down, then the delay. The draws come from the seed, the method,
// the id and how many such calls came before, not from one shared stream, so
// concurrent operations on other ids cannot change them: a concurrent run
// replays exactly from its seed.
func (n *Node) enter(ctx context.Context, method string, id core.GroupID) (Faults, roll, error) {
	key := callKey{method, id}
	n.mu.Lock()
	f := n.faults
	k := n.calls[key]
	if len(n.calls) >= maxTrackedCalls {
		clear(n.calls)
	}
	n.calls[key] = k + 1
	n.mu.Unlock()
	rng := rand.NewPCG(n.seed, callHash(method, id, k))
	r := roll{
		hang:       unit(rng.Uint64()),
		fail:       unit(rng.Uint64()),
		lost:       unit(rng.Uint64()),
		failStatus: status(rng.Uint64()),
		lostStatus: status(rng.Uint64()),
		jitter:     unit(rng.Uint64()),
	}
	if f.Down {
		// A refused connection answers at once: the delay models the path
		// to a server that is there.
		return f, r, &core.Error{Code: core.EUnavailable, Message: fmt.Sprintf("%s is down (connection refused)", n.name)}
	}
	if d := f.delay(r); d > 0 {
		if err := n.clock.Sleep(ctx, d); err != nil {
			return f, r, n.unanswered(err)
		}
	}
	return f, r, nil
}

// callHash is FNV-1a over method, id and k, written out so that the hot
// path allocates nothing.
func callHash(method string, id core.GroupID, k uint64) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for _, s := range [...]string{method, "\x00", string(id), "\x00"} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
	}
	for range 8 {
		h = (h ^ k&0xff) * prime
		k >>= 8
	}
	return h
}

// unit maps a random uint64 to [0, 1), as rand.Float64 does.
func unit(u uint64) float64 { return float64(u>>11) / (1 << 53) }

// unanswered is the error of a call whose caller stopped waiting (err is
// the context's error). It is transient: as far as the caller knows, the call
// may have been applied.
func (n *Node) unanswered(err error) error {
	return &core.Error{Code: core.ETransient, Message: fmt.Sprintf("%s did not answer: %v", n.name, err), Err: err}
}

// status picks 500 or 408, half each, from one draw.
func status(u uint64) int {
	if u&1 == 0 {
		return 500
	}
	return 408
}
