package history

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// state is what one id may be at a point of a linearization: a set of
// absent and present. The model is nondeterministic (a pending operation
// may take effect or not) and this is its power-set construction, done by
// hand so that a state is one byte and two states compare with ==.
type state uint8

const (
	absent  state = 1 << iota
	present       // held by every node
	unknown = absent | present
)

func (s state) String() string {
	switch s {
	case absent:
		return "absent"
	case present:
		return "present"
	case unknown:
		return "absent or present"
	}
	return "impossible"
}

// input is an operation as the model sees it; its Output is its Outcome.
type input struct {
	kind Kind
	id   string
}

// step is the model of one id as a set-membership register: whether an
// operation of kind that ended with out can take effect, at one instant
// between its call and its return, in state s, and the state it leaves.
//
//   - A done create leaves the id present, a done delete absent, whatever
//     it was: done says what the nodes hold after, not what they held
//     before (a create also completes an id that some nodes held).
//   - An unchanged create asserts the id present at that instant, an
//     unchanged delete absent, and changes nothing.
//   - A rolled-back operation changes nothing and asserts nothing: it may
//     have failed before it could read the id.
//   - A pending operation (no return) may have taken effect or not: the
//     state after is s, or s with its effect.
//   - A read asserts what it found.
func step(s state, kind Kind, out Outcome) (bool, state) {
	effect := absent
	if kind == Create {
		effect = present
	}
	switch out {
	case Done:
		return true, effect
	case Unchanged:
		return s&effect != 0, effect
	case RolledBack:
		return true, s
	case Pending:
		return true, s | effect
	case Present:
		return s&present != 0, present
	case Absent:
		return s&absent != 0, absent
	}
	return false, s
}

// newModel returns the porcupine model of one id, partitioned by id. The
// history's ids start unknown: a history says what they were with reads.
// Each operation's Metadata is its index in ops, which describes it.
func newModel(ops []Op) porcupine.Model {
	return porcupine.Model{
		Partition: partition,
		Init:      func() any { return unknown },
		Step: func(s, in, out any) (bool, any) {
			return step(s.(state), in.(input).kind, out.(Outcome))
		},
		Hash: func(s any) uint64 { return uint64(s.(state)) },
		DescribeOperation: func(in, out any) string {
			return fmt.Sprintf("%s %s: %s", in.(input).kind, in.(input).id, out)
		},
		DescribeState:             func(s any) string { return s.(state).String() },
		DescribeOperationMetadata: func(i any) string { return ops[i.(int)].String() },
	}
}

// partition splits a history by id, the ids in the order they first
// appear: operations on different ids are independent.
func partition(hist []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range hist {
		id := op.Input.(input).id
		i, ok := index[id]
		if !ok {
			i = len(parts)
			index[id] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}
