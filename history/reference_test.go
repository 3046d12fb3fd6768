package history

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// reference is the model as porcupine would take it whole: a pending
// operation returns at infinity, and its step may take effect or not, on a
// state that is the set of values the id may have. It is exponential in
// the pending operations, and the judge of the folded model on small
// histories.
func reference(ops []Op) bool {
	const a, p = 1, 2 // the values, as bits
	var hist []porcupine.Operation
	for _, op := range ops {
		ret := int64(op.Return)
		if op.Return == NoReturn {
			ret = math.MaxInt64
		}
		hist = append(hist, porcupine.Operation{Input: op.Kind, Output: op.Outcome, Call: int64(op.Call), Return: ret})
	}
	m := porcupine.Model{
		Init: func() any { return a | p },
		Step: func(st, in, out any) (bool, any) {
			s, effect := st.(int), a
			if in.(Kind) == Create {
				effect = p
			}
			switch out.(Outcome) {
			case Done:
				return true, effect
			case Unchanged:
				return s&effect != 0, effect
			case RolledBack:
				return true, s
			case Pending:
				return true, s | effect
			case Present:
				return s&p != 0, p
			case Absent:
				return s&a != 0, a
			}
			return false, s
		},
	}
	return porcupine.CheckOperations(m, hist)
}

// TestFoldedAsReference: on random histories of one id, with overlapping
// operations and pending ones, Verify and the reference agree.
func TestFoldedAsReference(t *testing.T) {
	kinds := []Kind{Create, Delete, Read}
	outs := map[Kind][]Outcome{
		Create: {Done, Unchanged, RolledBack, Pending},
		Delete: {Done, Unchanged, RolledBack, Pending},
		Read:   {Present, Absent, Present, Absent},
	}
	verdicts := map[bool]int{}
	for seed := range uint64(20000) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var ops []Op
		for i := range 2 + rng.IntN(10) {
			k := kinds[rng.IntN(3)]
			call := time.Duration(rng.IntN(60))
			op := Op{Kind: k, ID: "a", Outcome: outs[k][rng.IntN(4)], Call: call, Return: call + time.Duration(rng.IntN(25)), Line: i + 1}
			if op.Outcome == Pending {
				op.Return = NoReturn
			}
			ops = append(ops, op)
		}
		want := reference(ops)
		res, err := Verify(ops)
		if err != nil {
			t.Fatal(err)
		}
		verdicts[want]++
		if res.OK() != want {
			for _, op := range ops {
				t.Log(op)
			}
			t.Fatalf("seed %d: Verify says linearizable %v, the reference %v", seed, res.OK(), want)
		}
	}
	t.Logf("linearizable %d, not %d", verdicts[true], verdicts[false])
}
