package core

import (
	"context"
	"fmt"
)

// Recover rolls back every operation left in the journal, by an earlier run
// that crashed or by compensation that could not finish: a create is deleted
// where it holds its token, a delete is re-created with its pre-image. It
// returns one result per intent: RolledBack, or Pending if a node could not
// be reached in time (the intent stays for the next run). Without a journal
// it does nothing. Run it before new operations; it takes each id's lock.
func (c *Coordinator) Recover(ctx context.Context, concurrency int) ([]Result, error) {
	if c.cfg.Journal == nil {
		return nil, nil
	}
	intents, err := c.cfg.Journal.Pending(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal: cannot read pending intents: %w", err)
	}
	results := make([]Result, len(intents))
	forEach(ctx, indexes(len(intents)), concurrency, func(i int) {
		results[i] = c.recoverOne(ctx, intents[i])
	})
	return results, ctx.Err()
}

func (c *Coordinator) recoverOne(ctx context.Context, in Intent) Result {
	unlock := c.locks.lock(in.ID)
	defer unlock()
	r := &opRun{c: c, id: in.ID, token: in.Token}
	byName := make(map[string]Node, len(c.cfg.Nodes))
	for _, n := range c.cfg.Nodes {
		byName[n.Name()] = n
	}
	var nodes []*nodeRun
	for _, name := range in.Nodes {
		if _, held := in.PreImage[name]; in.Op == OpDelete && !held {
			continue
		}
		n, ok := byName[name]
		if !ok {
			res, _ := r.result(in.Op, Pending, nodes, Errorf(EInvalid,
				"intent %s for %q names node %q, which this target does not have: recover with the target the job ran on", in.Token, in.ID, name))
			return res
		}
		nodes = append(nodes, &nodeRun{node: n})
	}
	if err := c.undo(ctx, r, in, nodes); err != nil {
		res, _ := r.result(in.Op, Pending, nodes, err)
		return res
	}
	if err := c.finish(ctx, in.Token); err != nil {
		res, _ := r.result(in.Op, Pending, nodes, err)
		return res
	}
	res, _ := r.result(in.Op, RolledBack, nodes, nil)
	return res
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
