package history_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/reliable-ops/rops/history"
)

// generate returns a linearizable history of n operations on ids ids by
// procs processes, each running one operation at a time: each operation
// takes effect at a random instant between its call and its return, and
// its outcome is what the id was then. A few are rolled back, a few
// pending (those take effect or not, at random).
func generate(seed uint64, n, ids, procs int) []history.Op {
	rng := rand.New(rand.NewPCG(seed, 0x415))
	type gen struct {
		op history.Op
		at time.Duration // when it takes effect
		no bool          // a pending operation that never does
	}
	gens := make([]gen, 0, n)
	clock := make([]time.Duration, procs)
	for i := range n {
		p := i % procs
		call := clock[p] + time.Duration(rng.IntN(1000))
		ret := call + time.Duration(1+rng.IntN(5000))
		clock[p] = ret
		op := history.Op{Process: p, ID: fmt.Sprintf("id-%d", rng.IntN(ids)), Call: call, Return: ret}
		switch r := rng.IntN(10); {
		case r < 4:
			op.Kind = history.Read
		case r < 7:
			op.Kind = history.Create
		default:
			op.Kind = history.Delete
		}
		g := gen{op: op, at: call + time.Duration(rng.Int64N(int64(ret-call+1)))}
		if op.Kind != history.Read {
			switch r := rng.IntN(100); {
			case r < 5:
				g.op.Outcome = history.RolledBack
			case r < 7:
				g.op.Outcome, g.op.Return, g.no = history.Pending, history.NoReturn, rng.IntN(2) == 0
			}
		}
		gens = append(gens, g)
	}
	slices.SortStableFunc(gens, func(a, b gen) int { return int(a.at - b.at) })
	present := map[string]bool{}
	for i := range gens {
		op := &gens[i].op
		was := present[op.ID]
		switch {
		case op.Kind == history.Read && was:
			op.Outcome = history.Present
		case op.Kind == history.Read:
			op.Outcome = history.Absent
		case op.Outcome == history.RolledBack || gens[i].no:
		default:
			present[op.ID] = op.Kind == history.Create
			if op.Outcome != history.Pending {
				op.Outcome = history.Done
				if was == (op.Kind == history.Create) {
					op.Outcome = history.Unchanged
				}
			}
		}
	}
	slices.SortStableFunc(gens, func(a, b gen) int { return int(a.op.Call - b.op.Call) })
	ops := make([]history.Op, len(gens))
	for i, g := range gens {
		ops[i] = g.op
		ops[i].Line = i + 1
	}
	return ops
}

// TestVerifyGenerated: histories made linearizable pass, with few ids
// (operations on one id overlap) and many.
func TestVerifyGenerated(t *testing.T) {
	for seed := range uint64(20) {
		for _, ids := range []int{1, 3, 100} {
			ops := generate(seed, 500, ids, 8)
			res, err := history.Verify(ops)
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				f := res.Failures[0]
				t.Fatalf("seed %d, %d ids: not linearizable: %v; before it, %s is %s", seed, ids, f.Op, f.ID, f.State)
			}
		}
	}
}

// BenchmarkVerify judges 10,000 operations, as rops verify does with a
// history it has read.
func BenchmarkVerify(b *testing.B) {
	for _, ids := range []int{100, 10} {
		ops := generate(1, 10_000, ids, 16)
		b.Run(fmt.Sprintf("ops=10000/ids=%d", ids), func(b *testing.B) {
			for b.Loop() {
				res, err := history.Verify(ops)
				if err != nil || !res.OK() {
					b.Fatalf("Verify: %v %v", res.OK(), err)
				}
			}
		})
	}
	ops := generate(1, 10_000, 100, 16)
	for i := range ops {
		if ops[i].Kind == history.Read && i > len(ops)/2 {
			// A read whose id no operation changes around it, flipped.
			ops[i].Outcome = map[history.Outcome]history.Outcome{history.Present: history.Absent, history.Absent: history.Present}[ops[i].Outcome]
		}
	}
	b.Run("ops=10000/ids=100/failing", func(b *testing.B) {
		for b.Loop() {
			res, err := history.Verify(ops)
			if err != nil || res.OK() {
				b.Fatalf("Verify: %v %v", res.OK(), err)
			}
		}
	})
}
