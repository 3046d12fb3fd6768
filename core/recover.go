package core

import (
	"context"
	"errors"
	"fmt"
)

// Recover rolls back every operation left pending: by an earlier run that
// crashed (read from the journal) or by this coordinator's operations whose
// compensation could not finish. A create is deleted where it holds its
// token, a delete is re-created with its pre-image; the intents on one id are
// undone newest first. It returns one result per intent, grouped by id:
// RolledBack, or Pending if a node could not be reached in time (the intent
// stays for the next run, or for the next operation on the id, which settles
// it first). If ctx ends, the intents not yet tried are reported Pending and
// ctx.Err() is returned. If the journal holds entries it cannot read, the
// readable intents are still rolled back and the journal's error is
// returned; operations refuse to run until those entries are removed. Without a journal only this coordinator's own
// leftovers are rolled back. It takes each id's lock, so it may run while
// operations do; it never touches a running operation's intent.
func (c *Coordinator) Recover(ctx context.Context, concurrency int) ([]Result, error) {
	// A journal entry that cannot be read is reported after the intents
	// that can be are rolled back.
	loadErr := c.book.load(ctx, c.cfg.Journal, true)
	ids := c.book.ids()
	per := make([][]Result, len(ids))
	forEach(ctx, indexes(len(ids)), concurrency, func(i int) {
		per[i] = c.recoverID(ctx, ids[i])
	})
	var results []Result
	for i, rs := range per {
		if rs == nil {
			rs = c.pendingResults(ids[i], ctx.Err())
		}
		results = append(results, rs...)
	}
	return results, errors.Join(loadErr, ctx.Err())
}

// recoverID rolls back the intents left on id, newest first, and stops at
// the first that cannot be: the older ones wait for it.
func (c *Coordinator) recoverID(ctx context.Context, id GroupID) []Result {
	unlock, err := c.locks.lock(ctx, id)
	if err != nil {
		return c.pendingResults(id, err)
	}
	defer unlock()
	results := []Result{}
	var rn renames
	for {
		in, ok := c.book.newest(id)
		if !ok {
			return results
		}
		r := &opRun{c: c, id: in.ID, token: in.Token}
		nodes, err := c.rollback(ctx, r, in, &rn)
		if err != nil {
			res, _ := r.result(in.Op, Pending, nodes, err)
			results = append(results, res)
			for _, older := range c.book.intents(id)[1:] {
				r := &opRun{c: c, id: older.ID, token: older.Token}
				res, _ := r.result(older.Op, Pending, nil,
					fmt.Errorf("intent %s on %q must be rolled back first: %w", in.Token, id, err))
				results = append(results, res)
			}
			return results
		}
		res, _ := r.result(in.Op, RolledBack, nodes, nil)
		results = append(results, res)
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
