package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/reliable-ops/rops/core"
)

// Limits of one shared transaction.
const (
	// maxTxnOps is etcd's default --max-txn-ops. etcd counts the
	// operations of a nested transaction against what its parent leaves:
	// n writes, the deepest of which nests w operations, need n+w of it.
	maxTxnOps = 128
	// maxTxnBytes bounds the keys and values of a transaction, well under
	// etcd's default --max-request-bytes (1.5 MiB).
	maxTxnBytes = 512 << 10
)

// A committer writes the journal's and the locks' writes (a lock's key,
// an intent, a finish, an unlock) in shared etcd transactions, a group
// commit as journals/wal's: one transaction is in flight at a time, and
// the writes that arrive meanwhile go together in the next. Each write is
// a nested transaction of its own, with its own comparisons and its own
// result, in the Then of one transaction that compares nothing: a write
// whose comparison fails (a lost lock, an intent recorded already) fails
// alone. A transaction holds at most one write per id, so the writes of
// one transaction touch disjoint keys, as etcd requires, and each write
// sees the keys of its id as they were before the transaction (etcd
// evaluates every comparison first). It is safe for concurrent use.
type committer struct {
	kv      pb.KVClient
	timeout time.Duration

	mu      sync.Mutex
	queue   []*write
	limit   int // operations per transaction, lowered if etcd refuses as too many
	gate    int // tests: the writes to wait for before the next transaction
	closed  bool
	wake    chan struct{}
	stopped chan struct{}

	txns, writes atomic.Int64
}

// write is one write on an id, for the committer.
type write struct {
	id core.GroupID
	op *pb.RequestOp
	// ctx, if set, withdraws the write if it ends before the write is
	// sent: nothing of it is written then.
	ctx context.Context
	// after, if set, is called with the outcome, from the committer.
	after func(*write)

	// The outcome, set before done is closed and after is called: the
	// write's response in the transaction and the transaction's revision
	// (the revision of its writes), or the error that failed the whole
	// transaction, or ctx's if it was withdrawn (sent false).
	resp *pb.ResponseOp
	rev  int64
	err  error
	sent bool
	done chan struct{}
}

func newCommitter(cli *clientv3.Client, timeout time.Duration) *committer {
	c := &committer{kv: clientv3.RetryKVClient(cli), timeout: timeout, limit: maxTxnOps, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go c.run()
	return c
}

// do queues w and waits for its outcome.
func (c *committer) do(w *write) error {
	w.done = make(chan struct{})
	c.send(w)
	<-w.done
	return w.err
}

// send queues w without waiting: w.after gets its outcome.
func (c *committer) send(w *write) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		w.end(nil, 0, core.Errorf(core.EInternal, "the etcd journal is closed"))
		return
	}
	c.queue = append(c.queue, w)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (w *write) end(resp *pb.ResponseOp, rev int64, err error) {
	w.resp, w.rev, w.err = resp, rev, err
	if w.done != nil {
		close(w.done)
	}
	if w.after != nil {
		w.after(w)
	}
}

// close writes what is queued, then stops the committer. Once a
// transaction fails, the writes still queued fail with its error rather
// than each wait out a request's time.
func (c *committer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.stopped
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.wake)
	<-c.stopped
}

// run is the committer goroutine.
func (c *committer) run() {
	defer close(c.stopped)
	var failed error
	drain := func() {
		for {
			// Let the callers the last transaction woke queue their
			// next writes first, so that they share the next one.
			runtime.Gosched()
			batch := c.take()
			if len(batch) == 0 {
				return
			}
			if failed != nil {
				for _, w := range batch {
					w.end(nil, 0, failed)
				}
				continue
			}
			if err := c.commit(batch); err != nil && c.isClosed() {
				failed = err
			}
		}
	}
	for range c.wake {
		drain()
	}
	drain()
}

func (c *committer) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// take takes the next transaction's writes from the queue, oldest first:
// at most one per id (a later one waits for the next transaction, in
// order), within etcd's limits. It ends the writes withdrawn meanwhile.
func (c *committer) take() []*write {
	var batch, withdrawn []*write
	c.mu.Lock()
	if len(c.queue) < c.gate && !c.closed {
		c.mu.Unlock()
		return nil
	}
	c.gate = 0
	ids := make(map[core.GroupID]bool, len(c.queue))
	var rest []*write
	depth, size, full := 0, 0, false
	for _, w := range c.queue {
		if w.ctx != nil && w.ctx.Err() != nil {
			withdrawn = append(withdrawn, w)
			continue
		}
		d, s := weigh(w.op)
		if !full && !ids[w.id] && len(batch) > 0 && (len(batch)+1+max(depth, d) > c.limit || size+s > maxTxnBytes) {
			full = true
		}
		if full || ids[w.id] {
			rest = append(rest, w)
			continue
		}
		ids[w.id] = true
		batch = append(batch, w)
		depth, size = max(depth, d), size+s
	}
	c.queue = rest
	c.mu.Unlock()
	for _, w := range withdrawn {
		w.end(nil, 0, context.Cause(w.ctx))
	}
	return batch
}

// weigh returns how many operations op nests along its deepest path, as
// etcd counts them against --max-txn-ops, and the bytes of its keys and
// values.
func weigh(op *pb.RequestOp) (depth, size int) {
	switch r := op.Request.(type) {
	case *pb.RequestOp_RequestPut:
		return 0, len(r.RequestPut.Key) + len(r.RequestPut.Value)
	case *pb.RequestOp_RequestDeleteRange:
		return 0, len(r.RequestDeleteRange.Key) + len(r.RequestDeleteRange.RangeEnd)
	case *pb.RequestOp_RequestRange:
		return 0, len(r.RequestRange.Key) + len(r.RequestRange.RangeEnd)
	case *pb.RequestOp_RequestTxn:
		t := r.RequestTxn
		deepest := 0
		for _, c := range t.Compare {
			size += len(c.Key) + len(c.GetValue())
		}
		for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
			for _, o := range ops {
				d, s := weigh(o)
				deepest, size = max(deepest, d), size+s
			}
		}
		return max(len(t.Compare), len(t.Success), len(t.Failure)) + deepest, size
	}
	return 0, 0
}

// commit writes batch in one transaction and ends each write with its
// outcome. It returns the error that failed the transaction, if one did.
func (c *committer) commit(batch []*write) error {
	ops := make([]*pb.RequestOp, len(batch))
	for i, w := range batch {
		ops[i] = w.op
		w.sent = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	// As clientv3's KV: wait for a connection, and take answers of any size.
	resp, err := c.kv.Txn(ctx, &pb.TxnRequest{Success: ops}, grpc.WaitForReady(true), grpc.MaxCallRecvMsgSize(math.MaxInt32))
	err = clientv3.ContextError(ctx, err)
	cancel()
	if err != nil && len(batch) > 1 && (errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge)) {
		// An etcd set to smaller limits refused it whole, having
		// written nothing: send it again in smaller transactions.
		c.mu.Lock()
		c.limit = max(2, min(c.limit, len(batch))/2)
		c.queue = append(batch, c.queue...)
		c.mu.Unlock()
		for _, w := range batch {
			w.sent = false
		}
		return nil
	}
	if err == nil && len(resp.Responses) != len(batch) {
		err = fmt.Errorf("etcd answered %d of a transaction's %d writes", len(resp.Responses), len(batch))
	}
	c.txns.Add(1)
	c.writes.Add(int64(len(batch)))
	for i, w := range batch {
		if err != nil {
			w.end(nil, 0, err)
			continue
		}
		w.end(resp.Responses[i], resp.Header.Revision, nil)
	}
	return err
}
