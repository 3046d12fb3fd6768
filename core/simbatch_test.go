package core

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reliable-ops/rops/core/pool"
)

// Issue 20's batches in the simulation. In half the schedules of rops
// nodes from simBatchesFrom on, each process reaches its nodes as the HTTP
// client with batches does: its writes (Create, Delete, Remove) to one node
// are gathered by pool.Gatherer, the gathering the client runs, and go as
// one batch whose items the node runs at once, each under its own faults
// as if it came alone. On top of those, a batch may meet a fault of its
// own, at the schedule's fault rate:
//   - lost before it arrived: no item is applied, every item's answer is
//     a reset connection;
//   - lost after: every item is applied, and the answers never come;
//   - late: the batch waits in a queue the client cannot see, its items
//     are applied fakeLateDelay after it arrived (fenced by their own
//     fences), and the client gives up first;
//   - duplicated: it is applied and answered, and the items that were
//     applied are applied again fakeLateDelay later, as a duplicated
//     single request is (fakeNode's duplicate). A copy of an item the
//     node refused, landing later, is outside what rops trusts (README,
//     "Only an answer is certain"): -sim.fulldups models it, and finds
//     it unfenced.
//
// Its items are the single requests of the fault model; what a batch adds
// is that one fault strikes many ids at once, and that a call waits behind
// the batch on its way.

// simBatchesFrom is the first seed whose schedules may batch.
const simBatchesFrom = 1796671600000000000

// batchFault is what happens to one batch as a whole.
type batchFault int

const (
	batchPass batchFault = iota
	batchLostBefore
	batchLostAfter
	batchLate
	batchDuplicate
	numBatchFaults
)

func (f batchFault) String() string {
	return [...]string{"pass", "lostBefore", "lostAfter", "late", "duplicate"}[f]
}

// simBatchStats counts the batches of every schedule, for the log.
type simBatchStats struct {
	schedules, batches, items atomic.Int64
	gathered                  atomic.Int64 // batches of more than one write
	faults                    [numBatchFaults]atomic.Int64
}

// simBatches counts the batches of every schedule.
var simBatches simBatchStats

// simItem is one write waiting in, or carried by, a batch.
type simItem struct {
	ctx    context.Context
	method string // Create, Delete or Remove
	id     GroupID
	token  Token // the token, or Remove's before
	// removed and err are the item's answer, set by the batch's send;
	// applied is set once the node ran it.
	removed Token
	err     error
	applied atomic.Bool
}

// key names the item among a batch's for the draws.
func (it *simItem) key() string { return it.method + " " + string(it.id) }

// simBatcher is one process's batching transport to one node.
type simBatcher struct {
	node  *fakeNode
	p     *process
	rate  float64 // the chance of a batch-level fault
	st    *simBatchStats
	g     *pool.Gatherer[*simItem]
	mu    sync.Mutex
	count map[string]int // batches so far by their items' keys, for the draws
}

// batchesLimit is the most items a simulated batch holds: small, so that
// a few ids fill it and later calls wait for the next.
const batchesLimit = 3

func newSimBatcher(n *fakeNode, p *process, rate float64, st *simBatchStats) *simBatcher {
	b := &simBatcher{node: n, p: p, rate: rate, st: st, count: map[string]int{}}
	b.g = pool.NewGatherer(b.send, func() int { return batchesLimit })
	return b
}

// write sends one write in a batch and returns its answer: as the HTTP
// client's batched does, a call given up while it waited was never sent
// (EUnavailable), and one given up on its way has no answer (ctx's error).
func (b *simBatcher) write(ctx context.Context, method string, id GroupID, token Token) (Token, error) {
	it := &simItem{ctx: ctx, method: method, id: id, token: token}
	onTheWay, err := b.g.Do(ctx, it)
	switch {
	case err != nil && onTheWay:
		return "", err
	case err != nil:
		return "", &Error{Code: EUnavailable, Message: b.node.name + ": not sent: given up while it waited for a batch", Err: err}
	}
	return it.removed, it.err
}

// fault draws the batch-level fault of items, reproducibly from the keys
// of its items.
func (b *simBatcher) fault(items []*simItem) batchFault {
	keys := keysOf(items)
	slices.Sort(keys)
	k := strings.Join(keys, ",")
	b.mu.Lock()
	b.count[k]++
	n := b.count[k]
	b.mu.Unlock()
	if b.p.healed.Load() || drawMixed(b.p.seed, "batch", b.node.name, k, n) >= b.rate {
		return batchPass
	}
	return batchFault(1 + int(drawMixed(b.p.seed, "batchFault", b.node.name, k, n)*float64(numBatchFaults-1)))
}

// simBatchTrip is how long a batch takes to reach its node: the calls
// made meanwhile gather into the next.
const simBatchTrip = time.Millisecond

// send is the batch's trip to the node and back (see simBatchesFrom).
func (b *simBatcher) send(items []*simItem) {
	time.Sleep(simBatchTrip)
	f := b.fault(items)
	b.st.batches.Add(1)
	b.st.items.Add(int64(len(items)))
	if len(items) > 1 {
		b.st.gathered.Add(1)
	}
	b.st.faults[f].Add(1)
	b.p.logf("%s: batch to %s of %d (%v): %s", b.p.name, b.node.name, len(items), keysOf(items), f)
	switch f {
	case batchLostBefore:
		for _, it := range items {
			it.err = &Error{Code: ETransient, Message: b.node.name + ": POST /batch: connection reset by peer"}
		}
		return
	case batchLate:
		b.later(items, false)
		for _, it := range items {
			<-it.ctx.Done()
			it.err = it.ctx.Err()
		}
		return
	}
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Go(func() {
			ctx := context.WithValue(it.ctx, appliedKey{}, &it.applied)
			it.removed, it.err = b.node.write(ctx, it.method, it.id, it.token)
		})
	}
	wg.Wait()
	switch f {
	case batchLostAfter:
		for _, it := range items {
			it.removed = ""
			it.err = &Error{Code: ETransient, Message: b.node.name + ": POST /batch: connection reset by peer after the items ran"}
		}
	case batchDuplicate:
		if !*simFullDups {
			items = slices.DeleteFunc(slices.Clone(items), func(it *simItem) bool { return !it.applied.Load() })
		}
		b.later(items, !*simFullDups)
	}
}

// later runs items fakeLateDelay from now, each under its own fence,
// answering nobody: as they first came, each meeting a fault of its own,
// or, if replay, as copies of what was applied, which meet none.
func (b *simBatcher) later(items []*simItem, replay bool) {
	go func() {
		time.Sleep(fakeLateDelay)
		var wg sync.WaitGroup
		for _, it := range items {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(it.ctx), DefaultRequestTimeout)
				defer cancel()
				if replay {
					ctx = context.WithValue(ctx, replayKey{}, true)
				}
				_, _ = b.node.write(ctx, it.method, it.id, it.token)
			})
		}
		wg.Wait()
	}()
}

// write makes one write, Create, Delete or Remove (token is then its
// before), under the call's own faults.
func (n *fakeNode) write(ctx context.Context, method string, id GroupID, token Token) (Token, error) {
	switch method {
	case "Create":
		return "", n.Create(ctx, id, token)
	case "Delete":
		return "", n.Delete(ctx, id, token)
	case "Remove":
		return n.Remove(ctx, id, token)
	}
	panic(fmt.Sprintf("fakeNode: %s is no write", method))
}

func keysOf(items []*simItem) []string {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.key()
	}
	return keys
}
