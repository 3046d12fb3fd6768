package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core/pool"
)

// Recover ends every operation left pending: by an earlier run that
// crashed (read from the journal) or by this coordinator's operations whose
// compensation could not finish. It reads each one's nodes first: an
// operation complete on every node it names (a create's id held on each, a
// delete's id on none) is finished and reported Done, since it may have been
// reported done before a crash took its finish; a partial one is rolled back
// (a create is deleted where it holds its token, a delete is re-created
// with its pre-image) and reported RolledBack. The intents on one id are
// resolved newest first. An intent is reported Pending if a node could not
// be read or undone in time (it stays for the next run, or for the next
// operation on the id, which settles it first). If ctx ends, the intents
// not yet tried are reported Pending and ctx.Err() is returned.
//
// If the journal cannot be read, or holds entries it cannot read (damage)
// or intents of another cluster, Recover touches nothing and returns the
// journal's error with no results: a damaged part may hold the finish of
// an intent that can be read, and an intent of another cluster names
// other nodes. Operations refuse to run too until the damage is dealt with.
// Without a journal only this coordinator's own leftovers are resolved. It
// takes each id's lock, so it may run while operations do; it never
// touches a running operation's intent.
func (c *Coordinator) Recover(ctx context.Context, concurrency int) ([]Result, error) {
	if err := c.book.load(ctx, c.cfg.Journal, true, c.cfg.Tokens); err != nil {
		return nil, err
	}
	ids := c.book.ids()
	per := make([][]Result, len(ids))
	pool.ForEach(ctx, indexes(len(ids)), concurrency, func(i int) {
		per[i] = c.recoverID(ctx, ids[i])
	})
	var results []Result
	for i, rs := range per {
		if rs == nil {
			rs = c.pendingResults(ids[i], ctx.Err())
		}
		results = append(results, rs...)
	}
	return results, ctx.Err()
}

// recoverID resolves the intents left on id, newest first, and stops at
// the first that cannot be: the older ones wait for it.
func (c *Coordinator) recoverID(ctx context.Context, id GroupID) []Result {
	ctx, unlock, err := c.lockID(ctx, id)
	if err != nil {
		return c.pendingResults(id, err)
	}
	defer unlock()
	results := []Result{}
	var rn renames
	// Every request settling id carries a fence above every token begun
	// on it (lockID observed them): once a node has seen it, the requests
	// of a process that lost the id's lock are refused there.
	fence := c.cfg.Tokens.Next()
	for {
		in, ok := c.book.newest(id)
		if !ok {
			return results
		}
		r := &opRun{c: c, id: in.ID, token: in.Token, fence: fence}
		out, nodes, err := c.resolve(ctx, r, in, &rn)
		res, _ := r.result(in.Op, out, nodes, err)
		results = append(results, res)
		if out == Pending {
			for _, older := range c.book.intents(id)[1:] {
				r := &opRun{c: c, id: older.ID, token: older.Token}
				res, _ := r.result(older.Op, Pending, nil,
					fmt.Errorf("intent %s on %q must be settled first: %w", in.Token, id, err))
				results = append(results, res)
			}
			return results
		}
	}
}

// pendingResults reports every intent left on id as Pending for err.
func (c *Coordinator) pendingResults(id GroupID, err error) []Result {
	var results []Result
	for _, in := range c.book.intents(id) {
		r := &opRun{c: c, id: in.ID, token: in.Token}
		res, _ := r.result(in.Op, Pending, nil, err)
		results = append(results, res)
	}
	return results
}

func indexes(n int) func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// settle ends, newest first, the intents left on r.id (see resolve),
// counting its requests in r. Call it with the id's lock held.
func (c *Coordinator) settle(ctx context.Context, r *opRun) error {
	var rn renames
	for {
		in, ok := c.book.newest(r.id)
		if !ok {
			return nil
		}
		if _, _, err := c.resolve(ctx, r, in, &rn); err != nil {
			return fmt.Errorf("an earlier %s of %q (token %s) is still pending and could not be settled: %w", in.Op, in.ID, in.Token, err)
		}
	}
}

// renames maps, per node, the token of a record an undone delete removed to
// the token it re-created it under, so that an older create on the same id,
// undone next, deletes the record under its new name.
type renames map[string]map[Token]Token

// resolve ends the intent in left behind by an operation that crashed or
// ended pending. It reads the nodes in names first: if the operation is
// complete on every one of them (a create's id is held on each, as the
// create itself would have counted it done; a delete's id is on none), it
// finishes the intent and returns Done: a complete operation may have been
// reported done, and undoing it would undo a reported operation. If some
// node shows it partial, or the operation was reported pending (RollBack),
// it rolls it back (see rollback) and returns RolledBack. If the reads cannot tell (a node does not answer), it touches
// nothing and returns Pending with the reads' error. The parts returned
// say what each node holds. Intents on one id are resolved newest first,
// with one rn.
func (c *Coordinator) resolve(ctx context.Context, r *opRun, in Intent, rn *renames) (Outcome, []*part, error) {
	var parts []*part
	for _, name := range in.Nodes {
		n, err := c.intentNode(in, name)
		if err != nil {
			return Pending, nil, err
		}
		parts = append(parts, &part{node: n, st: stUnknown})
	}
	if in.Blind && !in.RollBack {
		return c.rollForward(ctx, r, in, rn)
	}
	var complete bool
	var err error
	if !in.RollBack {
		complete, err = c.complete(ctx, r, in, parts)
	}
	switch {
	case complete:
		if err := c.finish(ctx, in.Token); err != nil {
			return Pending, parts, err
		}
		c.book.drop(in)
		return Done, parts, nil
	case err != nil:
		return Pending, parts, fmt.Errorf("cannot tell whether the %s of %q (token %s) completed: %w", in.Op, in.ID, in.Token, err)
	}
	parts, err = c.rollback(ctx, r, in, rn)
	if err != nil {
		return Pending, parts, err
	}
	return RolledBack, parts, nil
}

// rollForward ends the Blind delete in, which was not reported pending, by
// sending Remove again on every node it names: its answers say what the
// delete removed, and every node ends without the id (Done). If a node
// refuses (it holds a newer record) or cannot be reached, the delete is
// marked for roll back, in the journal and the ledger, and rolled back.
func (c *Coordinator) rollForward(ctx context.Context, r *opRun, in Intent, rn *renames) (Outcome, []*part, error) {
	var parts []*part
	for _, name := range in.Nodes {
		n, ok := c.byName[name]
		if _, removes := n.(Remover); !ok || !removes {
			// Removes is not asked: a node over HTTP says it only once
			// it has answered.
			return Pending, parts, Errorf(EInvalid,
				"intent %s for %q names node %q, which this target does not have or which cannot delete without a read: recover with the target the job ran on", in.Token, in.ID, name)
		}
		// The crashed process may have sent it: maybe removed.
		parts = append(parts, &part{node: n, st: stMaybeRemoved, restore: in.Token})
	}
	fctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	err := r.forward(fctx, OpDelete, parts, stMaybeRemoved)
	cancel()
	if err == nil {
		if err := c.finish(ctx, in.Token); err != nil {
			return Pending, parts, err
		}
		c.book.drop(in)
		return Done, parts, nil
	}
	marked := in
	if merr := c.markRollBack(ctx, &marked, parts); merr != nil {
		return Pending, parts, fmt.Errorf("%w; then could not undo it: %w", err, merr)
	}
	// The ledger must not roll it forward again either.
	c.book.drop(in)
	// Marked already: end writes nothing to the journal.
	_ = c.book.end(ctx, &opRun{c: c, token: in.Token, intent: &marked})
	parts, err = c.rollback(ctx, r, marked, rn)
	if err != nil {
		return Pending, parts, err
	}
	return RolledBack, parts, nil
}

// complete reads in.ID on every part's node, in parallel, and reports
// whether in's operation is complete on all of them; each part's state
// then says what the node holds, for the report. If a node shows the
// operation partial, it returns false and nil; if a node cannot be read and
// none shows it partial, false and the node's error.
func (c *Coordinator) complete(ctx context.Context, r *opRun, in Intent, parts []*part) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	var mu sync.Mutex
	partial := false
	var errs []error
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() {
			ev, rec, err := r.read(ctx, p.node, in.written())
			_, removed := in.PreImage[p.Name()]
			st, done, answered := settledState(in.Op, ev, removed)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !answered:
				p.err = err
				errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
			case !done:
				partial = true
			default:
				p.st = st
			}
			if rec.Token != "" {
				c.cfg.Tokens.Observe(rec.Token)
			}
		})
	}
	wg.Wait()
	if partial {
		return false, nil
	}
	return len(errs) == 0, errors.Join(errs...)
}

// read reads r.id on node, retried as every request is (see retry), and
// returns the read's event: whether the node holds want (evReadOurs),
// another token, none told, or nothing.
func (r *opRun) read(ctx context.Context, node Node, want Token) (event, Record, error) {
	type answer struct {
		ev  event
		rec Record
	}
	a, err := retry(ctx, r.c.cfg.Clock, r.c.answered(node), r.c.cfg.NewBackoff, func(ctx context.Context, attempt int) (answer, error) {
		ev, rec, err := r.send(ctx, nil, node, reqGet, want, attempt > 0)
		return answer{ev, rec}, retryable(err)
	})
	return a.ev, a.rec, err
}

// rollback undoes in on the nodes it names, finishes it in the journal and
// drops it from the ledger. It returns the parts it visited, with their
// states. Every node the intent names may hold its write: the process that
// wrote it is gone, or gave up on it. Intents on one id are rolled back
// newest first, with one rn.
func (c *Coordinator) rollback(ctx context.Context, r *opRun, in Intent, rn *renames) ([]*part, error) {
	var parts []*part
	for _, name := range in.Nodes {
		pre, held := in.PreImage[name]
		if in.Op == OpDelete && !held && !in.Blind {
			continue
		}
		n, err := c.intentNode(in, name)
		if err != nil {
			return parts, err
		}
		write := in.written()
		if w, ok := (*rn)[name][write]; ok {
			write = w
		}
		st := resumeState(in, held, in.Blind && c.removalForgotten(n, in.Token))
		parts = append(parts, &part{node: n, st: st, write: write, pre: pre, restore: in.Token, had: held})
	}
	if err := r.undo(ctx, in.Op, parts); err != nil {
		return parts, err
	}
	for _, p := range parts {
		// A Blind delete's node that removed nothing has nothing renamed.
		if in.Op == OpDelete && p.st == stRewritten {
			if *rn == nil {
				*rn = renames{}
			}
			if (*rn)[p.Name()] == nil {
				(*rn)[p.Name()] = map[Token]Token{}
			}
			(*rn)[p.Name()][p.pre] = in.Token
		}
	}
	if err := c.finish(ctx, in.Token); err != nil {
		return parts, err
	}
	c.book.drop(in)
	return parts, nil
}

// intentNode returns the node named name in intent in, or an EInvalid
// error if the coordinator has no such node.
func (c *Coordinator) intentNode(in Intent, name string) (Node, error) {
	if n, ok := c.byName[name]; ok {
		return n, nil
	}
	return nil, Errorf(EInvalid,
		"intent %s for %q names node %q, which this target does not have: recover with the target the job ran on", in.Token, in.ID, name)
}

// removalForgotten reports whether n may have forgotten what a Remove
// with token removed: its records of removals live as long as its
// tombstones (TombstoneTTL, if n says; else DefaultTombstoneTTL), and token
// is the time the Remove was first sent, at the latest.
func (c *Coordinator) removalForgotten(n Node, token Token) bool {
	us, ok := token.micros()
	if !ok {
		return false
	}
	ttl := DefaultTombstoneTTL
	if t, ok := NodeAs[TombstoneKeeper](n); ok && t.TombstoneTTL() > 0 {
		ttl = t.TombstoneTTL()
	}
	return c.cfg.Clock.Now().Sub(time.UnixMicro(us)) >= ttl
}
