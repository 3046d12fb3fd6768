package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Policy chooses how Plan fixes an id that some nodes hold and others do not.
type Policy string

// Policies.
const (
	// PolicyMajority creates the id where it is missing if more than half
	// of the nodes hold it (exactly half is not a majority), and otherwise
	// deletes it where it is present. The default.
	PolicyMajority Policy = "majority"
	// PolicyUnion creates the id wherever it is missing: no record any node
	// holds is lost.
	PolicyUnion Policy = "union"
	// PolicyIntersection deletes the id wherever it is present: only what
	// every node holds stays.
	PolicyIntersection Policy = "intersection"
)

// ParsePolicy returns the policy named s; "" is PolicyMajority. Any other
// name fails with EInvalid.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case "":
		return PolicyMajority, nil
	case PolicyMajority, PolicyUnion, PolicyIntersection:
		return p, nil
	}
	return "", Errorf(EInvalid, "unknown repair policy %q: use %s, %s or %s", s, PolicyMajority, PolicyUnion, PolicyIntersection)
}

// Fix is what Plan chooses for one divergent id: create it on the nodes that
// lack it, or delete it from the nodes that hold it.
type Fix struct {
	ID GroupID `json:"id"` // the divergent id
	Op Op      `json:"op"` // OpCreate or OpDelete
	// Token is, for a create, the token most holders hold (a tie goes to
	// the smallest), for a person reading the plan; empty if the holders
	// do not say (the original server). Apply writes its own token: the
	// holders' may be tombstoned on a node that lacks the id (a delete of
	// it was undone there), which would refuse it for good.
	Token Token `json:"token,omitempty"`
	// Nodes are, in the coordinator's order, the nodes that lack the id
	// (create) or hold it (delete): the only nodes the fix writes to.
	Nodes []string `json:"nodes"`
}

// fix returns the fix p chooses for d on nodes, which are every node in
// report order.
func (p Policy) fix(d Divergence, nodes []Node) Fix {
	op := OpDelete
	if p == PolicyUnion || p == PolicyMajority && 2*len(d.On) > len(nodes) {
		op = OpCreate
	}
	f := Fix{ID: d.ID, Op: op, Nodes: []string{}}
	for _, n := range nodes {
		if _, held := d.On[n.Name()]; held == (op == OpDelete) {
			f.Nodes = append(f.Nodes, n.Name())
		}
	}
	if op == OpCreate {
		f.Token = commonToken(d.On)
	}
	return f
}

// commonToken returns the token held most often in on, the smallest of
// those on a tie so that plans are deterministic, and "" if none is known.
func commonToken(on map[string]Token) Token {
	votes := map[Token]int{}
	for _, t := range on {
		if t != "" {
			votes[t]++
		}
	}
	var best Token
	for t, v := range votes {
		if v > votes[best] || v == votes[best] && t < best {
			best = t
		}
	}
	return best
}

// Plan calls fn, in id order, with the fix policy chooses for every id that
// some nodes hold and others do not ("" means PolicyMajority). It streams
// the nodes' records page by page as Stats does, so it covers every such id
// in memory bounded by the page size, and it stops at fn's first error and
// returns it. Plan writes nothing: it is the dry run of Repair.
//
// Nodes are compared as sets of ids, as Stats compares them: an id every
// node holds is left alone even if the nodes hold it under different
// tokens: a token only names the operation that wrote the record, and the
// nodes agree that the id exists. Run Recover first: an operation left half-done shows up here as
// a divergent id (Apply settles it before it writes anything). Plan fails
// with an ErrUnsupported error if a node cannot list its records.
func (c *Coordinator) Plan(ctx context.Context, policy Policy, fn func(Fix) error) error {
	policy, err := ParsePolicy(string(policy))
	if err != nil {
		return err
	}
	_, err = c.divergences(ctx, DefaultPageSize, func(d Divergence) error {
		return fn(policy.fix(d, c.cfg.Nodes))
	})
	if errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("cannot plan a repair without every node's list of records: %w", err)
	}
	return err
}

// Apply applies fix as one reliable, journaled operation, as Create and
// Delete do, but writing only to fix.Nodes: a create writes the id under
// its own token where it is missing, and a failure deletes it from those
// nodes alone, never from the nodes that held the id before; a delete reads
// each record first and a failure restores it.
//
// Under the id's lock it first reads every node, since the nodes may have
// changed since Plan: if they agree on the id by then, the result is
// Unchanged; if the id is held elsewhere than the plan saw, nothing is
// written and the result is RolledBack with an EInvalid error (plan again).
// Otherwise the outcomes and errors are those of Create and Delete. A fix that is not one Plan could
// make (unknown op or node, no node, every node) fails with EInvalid.
func (c *Coordinator) Apply(ctx context.Context, fix Fix) (Result, error) {
	r := c.start(fix.ID)
	// A delete reads the records it deletes; a create, where to write.
	from := map[Op]state{OpCreate: stSurveying, OpDelete: stProbing}[fix.Op]
	parts := r.newParts(from)
	if err := c.checkFix(fix); err != nil {
		return r.result(fix.Op, RolledBack, parts, err)
	}
	ctx, unlock, res, err := c.prepare(ctx, fix.Op, r, parts)
	if unlock == nil {
		return res, err
	}
	defer unlock()
	fctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	// The plan was made without the id's lock. Writing to some nodes only
	// is safe only if the others still hold what the plan saw: a create
	// on the rest of the nodes after the holders lost the id would make the
	// nodes disagree again.
	if err := r.forward(fctx, fix.Op, parts, from); err != nil {
		return r.result(fix.Op, RolledBack, parts, err)
	}
	named := make(map[string]bool, len(fix.Nodes))
	for _, name := range fix.Nodes {
		named[name] = true
	}
	var holders []*part
	stale := false
	for _, p := range parts {
		if p.had {
			holders = append(holders, p)
		}
		// The plan saw the id on the nodes a delete names and a create
		// does not.
		stale = stale || p.had != (named[p.Name()] == (fix.Op == OpDelete))
	}
	switch {
	case len(holders) == 0 || len(holders) == len(parts):
		return r.result(fix.Op, Unchanged, parts, nil)
	case stale:
		return r.result(fix.Op, RolledBack, parts, Errorf(EInvalid,
			"cannot %s %q on %s: the nodes changed since the plan, it is now held on %s; plan again",
			fix.Op, fix.ID, strings.Join(fix.Nodes, ","), strings.Join(names(holders), ",")))
	case fix.Op == OpCreate:
		return c.create(ctx, fctx, r, parts)
	}
	return c.delete(ctx, fctx, r, parts)
}

// checkFix says why fix is not one Plan could make for these nodes.
func (c *Coordinator) checkFix(fix Fix) error {
	if fix.Op != OpCreate && fix.Op != OpDelete {
		return Errorf(EInvalid, "invalid fix for %q: unknown op %q", fix.ID, fix.Op)
	}
	if len(fix.Nodes) == 0 || len(fix.Nodes) >= len(c.cfg.Nodes) {
		return Errorf(EInvalid, "invalid fix for %q: it names %d of %d nodes; a fix names some nodes, not none or all", fix.ID, len(fix.Nodes), len(c.cfg.Nodes))
	}
	all := names(c.cfg.Nodes)
	for i, name := range fix.Nodes {
		if !slices.Contains(all, name) {
			return Errorf(EInvalid, "invalid fix for %q: no node %q in this target", fix.ID, name)
		}
		if slices.Contains(fix.Nodes[:i], name) {
			return Errorf(EInvalid, "invalid fix for %q: node %q appears twice", fix.ID, name)
		}
	}
	return nil
}

// errStopPlan ends a Plan whose consumer stopped taking fixes.
var errStopPlan = errors.New("repair stopped")

// Repair plans as Plan does and applies every fix as Apply does, as soon as
// it is planned, on at most concurrency goroutines (DefaultConcurrency if
// < 1), and reports the sum with Command "repair". If each is not nil it is
// called with every fix and its result, one at a time, as they end. Once ctx
// ends no new fix starts. It returns Plan's error, or ctx.Err(); the report
// counts what was applied until then. Repeated runs converge: once the nodes
// agree, Repair plans nothing and writes nothing. It is safe to run while
// other operations do; a fix whose id changed meanwhile is rolled back
// untouched (see Apply).
func (c *Coordinator) Repair(ctx context.Context, policy Policy, concurrency int, each func(Fix, Result)) (Report, error) {
	ctx, stop := withCrew(ctx)
	defer stop()
	var planErr error
	// Applying while the plan goes on is safe: a fix writes only its own
	// id, which every node's listing has already passed.
	fixes := func(yield func(Fix) bool) {
		planErr = c.Plan(ctx, policy, func(f Fix) error {
			if !yield(f) {
				return errStopPlan
			}
			return nil
		})
	}
	rep := runAll(ctx, c.cfg.Clock, "repair", fixes, concurrency, func(f Fix) Result {
		res, _ := c.Apply(ctx, f)
		return res
	}, each)
	if planErr != nil && !errors.Is(planErr, errStopPlan) {
		return rep, planErr
	}
	return rep, ctx.Err()
}
