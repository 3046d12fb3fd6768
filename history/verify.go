package history

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// Result is what Verify found.
type Result struct {
	Ops     int // operations judged: creates, deletes and reads
	IDs     int // the ids they name
	Nemeses int // fault windows, which are not judged
	// Failures are the ids whose operations no order explains, the one
	// whose first unexplained operation returned first, first. Empty if
	// the history is linearizable.
	Failures []Failure

	ops     []Op                    // the history, which Metadata indexes
	parts   [][]porcupine.Operation // the operations that returned, by id, as partition splits them
	clients map[int]int             // porcupine's row of each process
}

// Failure is an id whose operations cannot be linearized.
type Failure struct {
	ID string
	// Op is the first operation that cannot be explained: of all the
	// orders of the id's operations that respect their times and the
	// model, up to where each stops, the one that goes furthest stops at
	// Op. It is the operation to look at first, not always the wrong one:
	// a read that finds absent what a done create made present is named,
	// though the create may be what lied.
	Op Op
	// Explained is how many of the id's Total operations that order
	// placed, and State what the id was then: "absent", "present", or
	// "absent or present" (before anything said).
	Explained, Total int
	State            string

	part, index int // Op's partition, and its index there
}

// OK reports whether the history is linearizable.
func (r Result) OK() bool { return len(r.Failures) == 0 }

// Verify checks ops for linearizability, one id at a time, against the
// model of one id as a set-membership register (see README, "Histories and
// rops verify"). An operation with no return (pending) may take effect at
// any time after its call, or never. Every id starts unknown. It returns
// an error only if an Op is not valid.
func Verify(ops []Op) (Result, error) {
	clients := map[int]int{}
	res := Result{ops: ops, clients: clients}
	for _, op := range ops {
		if op.Kind != Nemesis {
			clients[op.Process] = 0
		}
	}
	for i, p := range slices.Sorted(maps.Keys(clients)) {
		clients[p] = i // dense, in order: porcupine draws one row each
	}
	pend := map[string]*pendings{}
	for i, op := range ops {
		if err := op.Validate(); err != nil {
			if op.Line > 0 {
				return Result{}, &LineError{Line: op.Line, Err: err}
			}
			return Result{}, fmt.Errorf("operation %d: %w", i, err)
		}
		if op.Kind == Nemesis {
			res.Nemeses++
			continue
		}
		res.Ops++
		p := pend[op.ID]
		if p == nil {
			p = &pendings{}
			pend[op.ID] = p
		}
		switch {
		case op.Outcome == Pending && op.Kind == Create:
			p.creates = append(p.creates, int64(op.Call))
		case op.Outcome == Pending:
			p.deletes = append(p.deletes, int64(op.Call))
		}
	}
	for _, p := range pend {
		slices.Sort(p.creates)
		slices.Sort(p.deletes)
	}
	// The operations that returned go to porcupine; the pending ones are
	// folded into the model (see pendings).
	hist := make([]porcupine.Operation, 0, res.Ops)
	for i, op := range ops {
		if op.Kind == Nemesis || op.Outcome == Pending {
			continue
		}
		hist = append(hist, porcupine.Operation{
			ClientId: clients[op.Process],
			Input:    input{kind: op.Kind, id: op.ID, ret: int64(op.Return), pend: pend[op.ID]},
			Call:     int64(op.Call),
			Output:   op.Outcome,
			Return:   int64(op.Return),
			Metadata: i,
		})
	}
	m := newModel(ops)
	res.parts = partition(hist)
	res.IDs = len(pend)
	if porcupine.CheckOperations(m, hist) {
		return res, nil
	}
	for i, p := range res.parts {
		if !porcupine.CheckOperations(m, p) {
			res.Failures = append(res.Failures, explain(m, ops, p, i))
		}
	}
	slices.SortFunc(res.Failures, func(a, b Failure) int {
		return byReturn(res.parts[a.part][a.index], res.parts[b.part][b.index])
	})
	return res, nil
}

// returnTime is when an operation returned, for drawing: an unknown effect
// may land any time after its call, so it returns at infinity, as etcd's
// robustness tests take a request that failed.
func returnTime(ret time.Duration) int64 {
	if ret == NoReturn {
		return math.MaxInt64
	}
	return int64(ret)
}

// byReturn orders operations by return, then call, then line.
func byReturn(a, b porcupine.Operation) int {
	return cmp.Or(cmp.Compare(a.Return, b.Return), cmp.Compare(a.Call, b.Call), cmp.Compare(a.Metadata.(int), b.Metadata.(int)))
}

// explain finds the first operation of partition p that cannot be
// explained. Porcupine gives, for each operation, the longest order of
// operations that it could place through it; each such order stops at the
// operation it did not place that returns first, since every operation must
// be placed before it returns. Of these, the one that stops latest is
// chosen.
func explain(m porcupine.Model, ops []Op, p []porcupine.Operation, part int) Failure {
	_, info := porcupine.CheckOperationsVerbose(m, p, 0)
	orders := info.PartialLinearizations()[0]
	// Porcupine returns them in no fixed order: sort, so that ties
	// between stops are broken the same way every time.
	slices.SortFunc(orders, func(a, b []int) int { return cmp.Or(cmp.Compare(len(b), len(a)), slices.Compare(a, b)) })
	best, bestOrder := -1, []int(nil)
	placed := make([]bool, len(p))
	for _, order := range orders {
		clear(placed)
		for _, k := range order {
			placed[k] = true
		}
		stop := firstUnplaced(p, placed)
		if stop >= 0 && (best < 0 || byReturn(p[best], p[stop]) < 0) {
			best, bestOrder = stop, order
		}
	}
	if best < 0 { // nothing could be placed at all
		clear(placed)
		best = firstUnplaced(p, placed)
	}
	s := unknown
	for _, k := range bestOrder {
		_, next := m.Step(s, p[k].Input, p[k].Output)
		s = next.(states)
	}
	op := ops[p[best].Metadata.(int)]
	return Failure{ID: op.ID, Op: op, Explained: len(bestOrder), Total: len(p), State: s.String(), part: part, index: best}
}

// firstUnplaced returns the index of the operation of p not placed that
// returns first, or -1 if all are placed.
func firstUnplaced(p []porcupine.Operation, placed []bool) int {
	first := -1
	for k := range p {
		if !placed[k] && (first < 0 || byReturn(p[k], p[first]) < 0) {
			first = k
		}
	}
	return first
}
