package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Checker judges a history of operations against what the nodes hold, as
// Jepsen's set checker does: it keeps, for every id, what the outcomes
// reported so far allow the nodes to hold, and Verify compares that with
// the nodes. It finds ids that are lost (a done create, or an earlier
// state a rollback promised, is missing), unexpected (present though
// rolled back or deleted) and divergent (some nodes hold it, others do
// not, and no operation on it is pending). The simulation tests and `rops
// check` share it.
//
// Record the outcomes of the operations on one id in the order they ran:
// run at most one operation per id at a time. A Checker is safe for
// concurrent use.
type Checker struct {
	mu  sync.Mutex
	ids map[GroupID]*expectation
}

// presence is a set of what an id may be: absent, present, or either.
type presence uint8

const (
	mayBeAbsent presence = 1 << iota
	mayBePresent
)

// expectation is what the history allows one id to be.
type expectation struct {
	allowed presence // what the nodes may agree on now
	pending bool     // an operation on it is unresolved: nodes may disagree
	base    presence // what rolling the pending operations back restores
	maybe   presence // what a crashed operation may have left, done
}

// NewChecker returns a Checker for which every id starts absent.
func NewChecker() *Checker { return &Checker{ids: map[GroupID]*expectation{}} }

func (c *Checker) get(id GroupID) *expectation {
	e := c.ids[id]
	if e == nil {
		e = &expectation{allowed: mayBeAbsent, base: mayBeAbsent}
		c.ids[id] = e
	}
	return e
}

func target(op Op) presence {
	if op == OpCreate {
		return mayBePresent
	}
	return mayBeAbsent
}

// Record notes the outcome of an operation. Done and Unchanged set the id to
// the operation's end state; RolledBack to what it was before the
// operation (and before any pending one it settled); Pending leaves it
// unresolved until Resolve (and, with ErrIntentUnsure, allows what the
// operation would have done, as Crashed does).
func (c *Checker) Record(res Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.get(res.ID)
	switch res.Outcome {
	case Done, Unchanged:
		*e = expectation{allowed: target(res.Op), base: target(res.Op)}
	case RolledBack:
		// As before: before any pending operation it settled, or as a
		// crashed one may have left it.
		was := e.base | e.maybe
		*e = expectation{allowed: was, base: was}
	case Pending:
		e.pending = true
		if errors.Is(res.Err, ErrIntentUnsure) {
			// Recover may finish it, as a crashed operation.
			e.maybe |= target(res.Op)
		}
	}
}

// Crashed notes an operation whose outcome was never reported: its process
// died. Until Resolve, the nodes may disagree on the id; after, they may
// hold what it would have done, or what was there before.
func (c *Checker) Crashed(op Op, id GroupID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.get(id)
	e.pending = true
	e.maybe |= target(op)
}

// Resolve notes that Recover ran and left pending only the ids in
// stillPending: every other unresolved id is back to what it was before
// its pending operations, or to what a crashed one would have done.
func (c *Checker) Resolve(stillPending []GroupID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.ids {
		if e.pending && !slices.Contains(stillPending, id) {
			allowed := e.base | e.maybe
			*e = expectation{allowed: allowed, base: allowed}
		}
	}
}

// Violations are what Verify found, as sorted ids.
type Violations struct {
	Lost       []GroupID `json:"lost"`       // missing though a reported outcome needs it
	Unexpected []GroupID `json:"unexpected"` // present though a reported outcome excludes it
	Divergent  []GroupID `json:"divergent"`  // held by some nodes only, and not pending
}

// OK reports whether nothing was found.
func (v Violations) OK() bool {
	return len(v.Lost)+len(v.Unexpected)+len(v.Divergent) == 0
}

// Verify compares the ids the checker knows, and any other id in extra,
// with holders(id), the number of nodes that hold id, out of nodes. Once an
// id is seen agreed and allowed, what it may be narrows to what it is.
func (c *Checker) Verify(nodes int, holders func(GroupID) int, extra []GroupID) Violations {
	c.mu.Lock()
	defer c.mu.Unlock()
	var v Violations
	ids := make([]GroupID, 0, len(c.ids)+len(extra))
	for id := range c.ids {
		ids = append(ids, id)
	}
	for _, id := range extra {
		if c.ids[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		e := c.get(id)
		h := holders(id)
		if e.pending {
			continue
		}
		switch {
		case h > 0 && h < nodes:
			v.Divergent = append(v.Divergent, id)
		case h == 0 && e.allowed&mayBeAbsent == 0:
			v.Lost = append(v.Lost, id)
		case h == nodes && e.allowed&mayBePresent == 0:
			v.Unexpected = append(v.Unexpected, id)
		case h == 0:
			e.allowed, e.base = mayBeAbsent, mayBeAbsent
		default:
			e.allowed, e.base = mayBePresent, mayBePresent
		}
	}
	return v
}

// Pending returns the ids with an unresolved operation, sorted.
func (c *Checker) Pending() []GroupID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []GroupID
	for id, e := range c.ids {
		if e.pending {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Holders returns how many nodes hold id, reading every node with the
// coordinator's retries; it fails if a node cannot be read. It is the
// reading that Verify needs of a live cluster. Its reads are retried as
// every request is (see retry), through the Breaker.
func (c *Coordinator) Holders(ctx context.Context, id GroupID) (int, error) {
	r := &opRun{c: c, id: id}
	n := 0
	for _, node := range c.cfg.Nodes {
		_, err := fetch(ctx, r, node, func(ctx context.Context) (Record, error) { return node.Get(ctx, id) })
		switch {
		case err == nil:
			n++
		case ErrorCode(err) != ENotFound:
			return 0, fmt.Errorf("cannot read %q on %s: %w", id, node.Name(), err)
		}
	}
	return n, nil
}
