// Package faults is the faulty cluster: a Node is a core.Store seen through
// injected faults (random 500s and 408s, lost acknowledgements, latency,
// hangs, a node that is down, writes applied late or twice, connections
// reset after the write, a proxy's 502, 503 and 504), drawn from a seed so
// that a run can be replayed exactly, concurrent or not. The same faults
// serve embedded nodes and the HTTP server:
//
//	node := faults.New("node01", memory.New(), faults.Options{Faults: faults.Faults{ErrorRate: 0.2}, Seed: 1})
//
// It is a package of its own, apart from the stores in drivers/..., so that a
// store or driver imports the faults without the other stores, and the
// faults without the request log (package reqlog).
package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reliable-ops/rops/core"
)

// Options configures a Node.
type Options struct {
	// Faults are the faults the node starts with; see Faults.Validate.
	Faults Faults
	// Seed seeds the node's RNG: the same seed and calls give the same
	// faults.
	Seed uint64
	// Clock sleeps the latency and times late and duplicate applies. Nil
	// means core.SystemClock.
	Clock core.Clock
}

// Node is a core.Node made of a core.Store and faults. Faults apply in this
// order: Down fails at once; Latency and Jitter delay; then, for Create,
// Delete and Get only (the original's group routes), the first of HangRate,
// ErrorRate, GatewayRate and LateRate that fires decides the call; if none
// does, the call is applied, DuplicateRate may apply it again later, and
// ResetRate or else AmbiguousRate may lose its answer. List and Count see
// only Down and the delay. Errors of the store pass through unchanged.
//
// Late and duplicate applies run in the background on the node's clock,
// under the fence of the request they copy (core.WithFence); Settle waits
// for them and Close drops those still waiting. A Node with these faults
// must be closed. A Node is safe for concurrent use, including SetFaults
// while calls run.
type Node struct {
	name  string
	store core.Store
	clock core.Clock

	seed uint64

	// bg is the context of background applies; stop ends it, at Close.
	bg   context.Context
	stop context.CancelFunc

	// inert is faults.inert(), which calls read without taking mu: a
	// node at 0 faults (rops serve's by default) then locks nothing.
	inert atomic.Bool

	mu      sync.Mutex // guards the fields below
	faults  Faults
	calls   map[callKey]uint64 // calls so far per method and id, this generation
	older   map[callKey]uint64 // the generation before: calls not seen since it ended
	closed  bool
	pending int           // background applies not yet run or dropped
	idle    chan struct{} // closed when pending falls to zero
}

// callKey names the calls whose faults form one reproducible sequence: the
// FNV-1a hash of their method and id (callHash), which seeds their draws.
// A number, not the strings: the counts, up to twice maxTrackedCalls per
// node, hold no pointer for the collector to mark and keep no id alive
// (BenchmarkCallCounts). Two sequences whose hashes collide share one
// count: their draws shift, and a run still replays the same from its
// seed.
type callKey uint64

// maxTrackedCalls bounds the call counts of one generation. A full
// generation becomes the older one and the one before it is dropped, so a
// long-running node keeps at most twice this many, and an id called in
// either generation (one in the middle of its retries) goes on with its
// count. Only an id left alone for a whole generation starts again from
// zero, which shifts which of its calls fail and nothing else. Clearing
// every count at once instead set every id in flight back to its first
// draws: an id whose first draws fail drew them again, and at 0.2 an
// operation now and then failed eleven times in a row on one node and was
// rolled back (3 of 200,000 creates, where chance gives 1 in 80 jobs).
const maxTrackedCalls = 1 << 17

var (
	_ core.Node            = (*Node)(nil)
	_ core.Fencer          = (*Node)(nil)
	_ core.TombstoneKeeper = (*Node)(nil)
	_ core.Scanner         = (*Node)(nil)
	_ core.Remover         = (*Node)(nil)
)

// New returns a Node named name over store. It panics if opts.Faults is
// invalid: check input with Faults.Validate first.
func New(name string, store core.Store, opts Options) *Node {
	if err := opts.Faults.Validate(); err != nil {
		panic("faults.New: " + err.Error())
	}
	if opts.Clock == nil {
		opts.Clock = core.SystemClock{}
	}
	// Background applies must not end with the call that scheduled them:
	// they stand for requests the caller has given up on.
	bg, stop := context.WithCancel(context.Background())
	n := &Node{
		name:   name,
		store:  store,
		clock:  opts.Clock,
		seed:   opts.Seed,
		bg:     bg,
		stop:   stop,
		faults: opts.Faults,
		calls:  make(map[callKey]uint64),
	}
	n.inert.Store(opts.Faults.inert())
	return n
}

// Faulty returns the *Node inside n, looking through reqlog.Wrap and any other
// wrapper with an Unwrap() core.Node method, so that faults can be changed on
// a node that is wrapped.
func Faulty(n core.Node) (*Node, bool) { return core.NodeAs[*Node](n) }

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Fences reports whether the node's store keeps tombstones (core.Fencer):
// faults never undo a tombstone, so the node fences as its store does.
func (n *Node) Fences() bool {
	f, ok := n.store.(core.Fencer)
	return ok && f.Fences()
}

// TombstoneTTL returns how long the node's store keeps a tombstone, if it
// says (core.DefaultTombstoneTTL if not); meaningful only if Fences.
func (n *Node) TombstoneTTL() time.Duration {
	if t, ok := n.store.(core.TombstoneKeeper); ok {
		return t.TombstoneTTL()
	}
	return core.DefaultTombstoneTTL
}

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
	n.inert.Store(f.inert())
	return nil
}

// Create creates the record on the store, subject to all faults.
func (n *Node) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	_, err := n.group(ctx, call{op: opCreate, id: id, token: token})
	return err
}

// Delete deletes the record from the store, subject to all faults.
func (n *Node) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	_, err := n.group(ctx, call{op: opDelete, id: id, token: token})
	return err
}

// Removes reports whether the node's store serves Remove (core.Remover).
func (n *Node) Removes() bool {
	r, ok := n.store.(core.Remover)
	return ok && r.Removes()
}

// Remove removes the record from the store if it is older than before,
// subject to all faults, as a Delete is (it is one on the original's
// routes). It returns an EUnsupported error if the store does not serve
// Remove.
func (n *Node) Remove(ctx context.Context, id core.GroupID, before core.Token) (core.Token, error) {
	if !n.Removes() {
		return "", core.Errorf(core.EUnsupported, "%s cannot delete without a read: its store keeps no tombstones", n.name)
	}
	rec, err := n.group(ctx, call{op: opRemove, id: id, token: before})
	return rec.Token, err
}

// Get reads the record from the store, subject to all faults.
func (n *Node) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	return n.group(ctx, call{op: opGet, id: id})
}

// List lists the store's records, subject to Down and the delay only.
func (n *Node) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	if _, _, err := n.enter(ctx, "list", after); err != nil {
		return nil, err
	}
	return n.store.List(ctx, after, limit)
}

// Scan streams the store's records (core.Scanner), subject to Down and the
// delay only, as List; a store that cannot stream is read page by page.
func (n *Node) Scan(ctx context.Context, after core.GroupID, fn func(core.Record) bool) error {
	if _, _, err := n.enter(ctx, "scan", after); err != nil {
		return err
	}
	return core.Scan(ctx, n.store, after, fn)
}

// Count counts the store's records, subject to Down and the delay only.
func (n *Node) Count(ctx context.Context) (int, error) {
	if _, _, err := n.enter(ctx, "count", ""); err != nil {
		return 0, err
	}
	return n.store.Count(ctx)
}

// op is a call on one of the original's group routes.
type op int

const (
	opCreate op = iota
	opDelete
	opRemove // a Delete without a read (core.Remover)
	opGet
)

// call is one call on a group route: a value, which group runs and a late
// or duplicate apply runs again in the background, so that a call that
// meets neither allocates nothing.
type call struct {
	op    op
	id    core.GroupID
	token core.Token // a Create's or Delete's token, a Remove's bound
}

// method names c's route as the faults' draws know it (callKey).
func (c call) method() string {
	switch c.op {
	case opCreate:
		return "create"
	case opGet:
		return "get"
	}
	return "delete"
}

// apply runs c on the store.
func (n *Node) apply(ctx context.Context, c call) (core.Record, error) {
	switch c.op {
	case opCreate:
		return core.Record{}, n.store.Create(ctx, c.id, c.token)
	case opDelete:
		return core.Record{}, n.store.Delete(ctx, c.id, c.token)
	case opRemove:
		// Remove checked that the store serves it.
		tok, err := n.store.(core.Remover).Remove(ctx, c.id, c.token)
		return core.Record{Token: tok}, err
	}
	return n.store.Get(ctx, c.id)
}

// group runs c, a call on one of the original's group routes, under every
// fault.
func (n *Node) group(ctx context.Context, c call) (core.Record, error) {
	f, r, err := n.enter(ctx, c.method(), c.id)
	if err != nil {
		return core.Record{}, err
	}
	switch {
	case r.hang < f.HangRate:
		note(ctx, FaultHang)
		<-ctx.Done()
		return core.Record{}, n.unanswered(ctx.Err())
	case r.fail < f.ErrorRate:
		note(ctx, randomFault(r.failStatus, false))
		return core.Record{}, randomError(r.failStatus)
	case r.gateway < f.GatewayRate:
		note(ctx, FaultGateway)
		if r.forwarded {
			// The proxy passed the request on and lost the answer.
			_, _ = n.apply(ctx, c)
		}
		return core.Record{}, n.gatewayError(r.gatewayStatus)
	case r.late < f.LateRate:
		note(ctx, FaultLate)
		// The request waits in the node's queue past the caller's
		// patience, then runs with nobody listening.
		n.later(ctx, time.Duration(f.LateDelay), c)
		<-ctx.Done()
		return core.Record{}, n.unanswered(ctx.Err())
	}
	rec, err := n.apply(ctx, c)
	if r.duplicate < f.DuplicateRate {
		note(ctx, FaultDuplicate)
		n.later(ctx, f.duplicateDelay(), c)
	}
	switch {
	case r.reset < f.ResetRate:
		note(ctx, FaultReset)
		return core.Record{}, n.resetError()
	case r.lost < f.AmbiguousRate:
		// The answer, success or failure, never reaches the caller.
		note(ctx, randomFault(r.lostStatus, true))
		return core.Record{}, randomError(r.lostStatus)
	}
	// An error may come with a record: a Remove's refusal names the
	// token held.
	return rec, err
}

// later applies c in the background after d on the node's clock, with the
// node's own context, unless the node is closed first. That context carries
// the fence of ctx, the request's (core.WithFence): a request that lands
// late is checked against the id's fence when it lands, as a real delayed
// request is, so a store that fences refuses it once a later holder of the
// id has been there.
func (n *Node) later(ctx context.Context, d time.Duration, c call) {
	bg := core.WithFence(n.bg, core.FenceOf(ctx))
	n.after(d, func() { _, _ = n.apply(bg, c) })
}

// after runs fn in the background after d on the node's clock, unless the
// node is closed first; Settle waits for it.
func (n *Node) after(d time.Duration, fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		// A stopped process runs nothing it had queued.
		return
	}
	if n.pending == 0 {
		n.idle = make(chan struct{})
	}
	n.pending++
	go func() {
		defer n.settled()
		if n.clock.Sleep(n.bg, d) == nil {
			fn()
		}
	}()
}

// settled counts one background apply as run or dropped.
func (n *Node) settled() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending--
	if n.pending == 0 {
		close(n.idle)
	}
}

// Settle waits until no late or duplicate apply is waiting or running in
// the background: each has been applied, or dropped by Close. It returns
// ctx.Err() if ctx ends first. Applies scheduled while it waits are waited
// for too. It is safe for concurrent use.
func (n *Node) Settle(ctx context.Context) error {
	for {
		n.mu.Lock()
		pending, idle := n.pending, n.idle
		n.mu.Unlock()
		if pending == 0 {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close drops the late and duplicate applies still waiting, as a process
// that dies loses its queued requests, and waits for those already running
// to return. Calls after Close still reach the store but schedule nothing in
// the background, so the store may be closed after the Node. Close returns
// nil; it is safe to call more than once, and concurrently with calls.
func (n *Node) Close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.stop()
	return n.Settle(context.Background())
}

// enter takes this call's faults and draws, and applies the faults every
// call sees: Down, then the delay. The draws come from the seed, the method,
// the id and how many such calls came before, not from one shared stream, so
// concurrent operations on other ids cannot change them: a concurrent run
// replays exactly from its seed.
func (n *Node) enter(ctx context.Context, method string, id core.GroupID) (Faults, roll, error) {
	f, rng := n.draws(method, id)
	if rng == nil {
		return f, roll{}, nil
	}
	r := roll{
		hang:       unit(rng.Uint64()),
		fail:       unit(rng.Uint64()),
		lost:       unit(rng.Uint64()),
		failStatus: status(rng.Uint64()),
		lostStatus: status(rng.Uint64()),
		jitter:     unit(rng.Uint64()),
		// Later faults' draws come after, so that adding them did not
		// change the earlier faults' seeded runs.
		late:          unit(rng.Uint64()),
		reset:         unit(rng.Uint64()),
		duplicate:     unit(rng.Uint64()),
		gateway:       unit(rng.Uint64()),
		gatewayStatus: 502 + int(rng.Uint64()%3),
		forwarded:     rng.Uint64()&1 == 0,
	}
	if f.Down {
		note(ctx, FaultDown)
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

// draws returns the faults in force and the random source of this call, the
// k-th of method on id: the same seed, method, id and k give the same draws.
// It returns a nil source, and counts nothing, if the faults are inert.
func (n *Node) draws(method string, id core.GroupID) (Faults, *rand.PCG) {
	if n.inert.Load() {
		// No fault can fire: nothing to draw, and the zero Faults do what
		// inert ones do. The calls go uncounted, so the draws of faults
		// set later at run time (admin API) start anew; a seeded run sets
		// its faults before the first call.
		return Faults{}, nil
	}
	key := callHash(method, id)
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.faults
	if f.inert() {
		return f, nil // set inert since the check above
	}
	k, ok := n.calls[key]
	if !ok {
		k = n.older[key]
		if len(n.calls) >= maxTrackedCalls {
			n.older, n.calls = n.calls, make(map[callKey]uint64, len(n.calls))
		}
	}
	n.calls[key] = k + 1
	return f, rand.NewPCG(n.seed, key.seed(k))
}

// fnvPrime is FNV-1a's 64-bit prime.
const fnvPrime = 1099511628211

// callHash is FNV-1a over method and id, each ended by a zero byte,
// written out so that the hot path allocates nothing.
func callHash(method string, id core.GroupID) callKey {
	h := uint64(14695981039346656037)
	for _, s := range [...]string{method, "\x00", string(id), "\x00"} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * fnvPrime
		}
	}
	return callKey(h)
}

// seed returns the seed of the k-th call's draws: the FNV-1a hash of its
// method, id and k's eight bytes, least significant first, carried on
// from the hash of the method and id that key is.
func (key callKey) seed(k uint64) uint64 {
	h := uint64(key)
	for range 8 {
		h = (h ^ k&0xff) * fnvPrime
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
