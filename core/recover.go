package core

import (
	"context"
	"fmt"
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
