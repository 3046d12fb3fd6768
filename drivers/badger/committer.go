package badger

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/reliable-ops/rops/core"
)

// committer is the only writer of a Store's badger database. It does
// group commit.
//
// badger syncs its write-ahead log once per transaction, even for
// transactions that reach its write pipeline together (it shares only the
// value log's sync among them), so callers that each committed their own
// transaction would each pay a sync. Instead every write goes to the
// committer goroutine, which takes all the writes queued while its previous
// commit was syncing, applies them in one transaction, syncs once for all of
// them and wakes their callers. It never waits for more writes to come: a
// lone caller pays one sync, and a bulk job's workers share one. The syncs
// are most of a write's cost (a commit syncs both badger's log and its
// value log), so sharing them is what makes the stores keep up with a
// job's concurrency: BenchmarkCreate (writes per commit) and
// BenchmarkTxnPerWrite measure it against a transaction per write
// (BENCHMARKS.md).
//
// The writes of a batch are applied one after another, in the order they
// were queued, to a transaction that reads its own writes, so each one sees
// the effect of those before it exactly as if each had been committed
// alone. Being the only writer, the committer never meets a transaction
// conflict, so a read-then-write (a check-and-set) needs no retry.
type committer struct {
	db *badgerdb.DB
	// broken turns the error of a failed commit into what that commit's
	// writes and every later one return.
	broken func(err error) error
	// closedErr is what a write queued after close returns.
	closedErr error

	mu      sync.Mutex
	queue   []*write      // writes waiting for the committer
	closed  bool          // no more writes are queued
	wake    chan struct{} // holds a token while the queue may be non-empty
	stopped chan struct{} // closed when the committer has returned

	failed  error         // set by a failed commit; committer goroutine only
	commits atomic.Uint64 // transactions committed, for tests and benchmarks
}

// batchOp is what a write does to the database; the committer goroutine
// calls its methods, so that they may use state it alone owns.
type batchOp interface {
	// apply writes into txn, which holds the batch's earlier writes, and
	// reports whether it wrote anything, error or not. A *core.Error is
	// the caller's outcome, and may come with writes (a delete that finds
	// nothing still leaves a tombstone); any other error is badger's, and
	// passes through fail. On badger's errors txn must not have changed,
	// except that on ErrTxnTooBig it may hold a part of the op's writes,
	// which the committer then commits before it applies the op again:
	// applying it again after that part must give the op's outcome.
	apply(txn *badgerdb.Txn) (wrote bool, err error)
	// fail turns an error of badger's that apply returned into the
	// caller's, such as badgerdb.ErrTxnTooBig for a write too large for a
	// transaction of its own.
	fail(err error) error
}

// write is one batchOp waiting for the committer.
type write struct {
	ctx  context.Context
	op   batchOp
	err  error // the outcome, set before done is closed
	done chan struct{}
}

// newCommitter starts the committer goroutine of db; broken and closedErr
// are as in committer. Stop it with close before closing db.
func newCommitter(db *badgerdb.DB, broken func(error) error, closedErr error) *committer {
	c := &committer{
		db:        db,
		broken:    broken,
		closedErr: closedErr,
		wake:      make(chan struct{}, 1),
		stopped:   make(chan struct{}),
	}
	go c.run()
	return c
}

// do queues op for the committer and waits for its outcome, which is
// synced to disk if op wrote. A ctx that has ended before the committer
// takes op means nothing is written and ctx's error is returned. Once
// queued, op is not abandoned when ctx ends, which would leave its outcome
// unknown: the committer skips it if ctx has ended by the time it gets
// there, and otherwise the wait is at most two commits.
func (c *committer) do(ctx context.Context, op batchOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &write{ctx: ctx, op: op, done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closedErr
	}
	c.queue = append(c.queue, w)
	select {
	case c.wake <- struct{}{}:
	default: // the committer is awake already
	}
	c.mu.Unlock()
	<-w.done
	return w.err
}

// close refuses later writes and waits until the queued ones are done.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.wake)
	}
	c.mu.Unlock()
	<-c.stopped
}

// run is the committer goroutine: it writes the queued ops a batch at a
// time until close, then writes what is left and returns.
func (c *committer) run() {
	defer close(c.stopped)
	for range c.wake {
		for {
			// Let the callers that the last commit woke queue their next
			// writes first: without this yield the committer, woken by
			// the first of them, takes one or two writes and the rest wait
			// a whole sync for the next batch.
			runtime.Gosched()
			c.mu.Lock()
			batch := c.queue
			c.queue = nil
			c.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			c.commitBatch(batch)
		}
	}
}

// commitBatch applies batch in one transaction, or in as few as badger's
// transaction size limit allows, and ends each write with its outcome.
func (c *committer) commitBatch(batch []*write) {
	txn := c.db.NewTransaction(true)
	// The writes applied to txn end when it commits, even those that wrote
	// nothing: their outcome may rest on the ones before them (a Create
	// refused as it finds a record created earlier in txn), so it is not
	// theirs to report until those are durable.
	var applied []*write
	writes := 0
	flush := func() {
		var err error
		if writes > 0 {
			err = txn.Commit()
			c.commits.Add(1)
		}
		txn.Discard()
		if err != nil && c.failed == nil {
			// What badger holds is now unknown (a failed sync may leave
			// the writes readable but not on disk), so refuse every later
			// write rather than answer from it.
			c.failed = c.broken(err)
		}
		for _, w := range applied {
			if err != nil {
				// Even a write that wrote nothing: its outcome may rest
				// on writes that are now lost.
				w.err = c.failed
			}
			close(w.done)
		}
		applied, writes = applied[:0], 0
	}
	for _, w := range batch {
		if c.failed != nil {
			w.err = c.failed
			close(w.done)
			continue
		}
		if err := w.ctx.Err(); err != nil {
			w.err = err
			close(w.done)
			continue
		}
		wrote, err := w.op.apply(txn)
		if errors.Is(err, badgerdb.ErrTxnTooBig) && writes > 0 {
			// Commit what fits and give w a transaction of its own; it
			// reads the writes just committed as it read them in txn.
			flush()
			txn = c.db.NewTransaction(true)
			wrote, err = w.op.apply(txn)
		}
		if _, ok := errors.AsType[*core.Error](err); err != nil && !ok {
			err = w.op.fail(err)
		}
		w.err = err
		if wrote {
			writes++
		}
		applied = append(applied, w)
	}
	flush()
}
