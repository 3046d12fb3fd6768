package history

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// value is what one id is in the register: absent or present.
type value uint8

const (
	absent value = iota
	present
)

func (v value) String() string {
	if v == present {
		return "present"
	}
	return "absent"
}

// stepValue is the model of one id as a set-membership register, for an
// operation that returned: whether an operation of kind that ended with
// out can take effect, at one instant between its call and its return,
// when the id is v, and what it leaves.
//
//   - A done create leaves the id present, a done delete absent, whatever
//     it was: done says what the nodes hold after, not what they held
//     before (a create also completes an id that some nodes held).
//   - An unchanged create asserts the id present at that instant, an
//     unchanged delete absent, and changes nothing.
//   - A rolled-back operation changes nothing and asserts nothing: it may
//     have failed before it could read the id.
//   - A read asserts what it found.
//
// A pending operation is not stepped: see possibility.
func stepValue(v value, kind Kind, out Outcome) (bool, value) {
	effect := absent
	if kind == Create {
		effect = present
	}
	switch out {
	case Done:
		return true, effect
	case Unchanged:
		return v == effect, v
	case RolledBack:
		return true, v
	case Present:
		return v == present, v
	case Absent:
		return v == absent, v
	}
	return false, v
}

// pendings are the calls of one id's pending operations, each kind sorted.
//
// A pending operation may take effect at any instant after its call, or
// never: porcupine would take it as an operation returning at infinity,
// and try every subset of them at every point: 2^k with k pending
// operations on an id, which a long fault makes many, so that a history
// that is not linearizable would take hours to say so. They are folded
// into the model instead: pending creates are alike but for their calls,
// so whichever took effect, the earliest called could have, and the model
// needs only how many of each kind took effect so far.
type pendings struct {
	creates, deletes []int64
}

// possibility is one way an id may be at a point of a linearization: its
// value, and how many of its pending creates and deletes (the first ones
// called) took effect before that point. Every operation placed after
// them must return no earlier than they were called.
type possibility struct {
	v       value
	creates int
	deletes int
}

// latest returns when the last of the pending operations that p counts was
// called, or -1.
func (p possibility) latest(pend *pendings) int64 {
	t := int64(-1)
	if p.creates > 0 {
		t = pend.creates[p.creates-1]
	}
	if p.deletes > 0 {
		t = max(t, pend.deletes[p.deletes-1])
	}
	return t
}

// dominates reports whether p allows all that q allows: the same value, and
// no more pending operations spent.
func (p possibility) dominates(q possibility) bool {
	return p.v == q.v && p.creates <= q.creates && p.deletes <= q.deletes
}

// states is the model's state: the set of possibilities, none dominated by
// another, encoded in a string so that two states compare with ==, as
// porcupine's cache needs.
type states string

func encode(ps []possibility) states {
	slices.SortFunc(ps, func(a, b possibility) int {
		if a.v != b.v {
			return int(a.v) - int(b.v)
		}
		if a.creates != b.creates {
			return a.creates - b.creates
		}
		return a.deletes - b.deletes
	})
	var buf [64]byte
	b := buf[:0]
	for i, p := range ps {
		if slices.ContainsFunc(ps[:i], func(q possibility) bool { return q.dominates(p) }) {
			continue
		}
		b = append(b, byte(p.v))
		b = binary.AppendUvarint(b, uint64(p.creates))
		b = binary.AppendUvarint(b, uint64(p.deletes))
	}
	// The states of an id with no pending operation, without allocating.
	for _, s := range plain {
		if string(b) == string(s) {
			return s
		}
	}
	return states(b)
}

// decode appends the possibilities of s to ps.
func (s states) decode(ps []possibility) []possibility {
	for i := 0; i < len(s); {
		p := possibility{v: value(s[i])}
		c, n := uvarint(string(s[i+1:]))
		d, m := uvarint(string(s[i+1+n:]))
		p.creates, p.deletes = int(c), int(d)
		ps = append(ps, p)
		i += 1 + n + m
	}
	return ps
}

// uvarint is binary.Uvarint of a string, which it need not copy.
func uvarint(s string) (uint64, int) {
	var x uint64
	for i := 0; i < len(s); i++ {
		if s[i] < 0x80 {
			return x | uint64(s[i])<<(7*i), i + 1
		}
		x |= uint64(s[i]&0x7f) << (7 * i)
	}
	return x, len(s)
}

// String says what values the id may have: "absent", "present", or
// "absent or present".
func (s states) String() string {
	var has [2]bool
	for _, p := range s.decode(nil) {
		has[p.v] = true
	}
	switch {
	case has[absent] && has[present]:
		return "absent or present"
	case has[present]:
		return "present"
	case has[absent]:
		return "absent"
	}
	return "impossible"
}

// plain are the states of an id with no pending operation spent: absent,
// present, and unknown, every id's first state.
var plain = [...]states{"\x00\x00\x00", "\x01\x00\x00", "\x00\x00\x00\x01\x00\x00"}

var unknown = plain[2]

// boxed are the plain states as interfaces, so that porcupine's steps
// between them allocate nothing.
var boxed = [len(plain)]any{plain[0], plain[1], plain[2]}

func box(s states) any {
	for i, p := range plain {
		if s == p {
			return boxed[i]
		}
	}
	return s
}

// input is an operation that returned, as the model sees it; its Output is
// its Outcome.
type input struct {
	kind Kind
	id   string
	ret  int64     // its return
	pend *pendings // its id's pending operations
}

// step takes every possibility of s through in: first any pending
// operations that may take effect before it (called by its return; one at
// most of each kind, since spending more leaves no more), then in itself.
func step(s states, in input, out Outcome) (bool, states) {
	var buf, nbuf [8]possibility
	next := nbuf[:0]
	for _, p := range s.decode(buf[:0]) {
		if p.latest(in.pend) > in.ret {
			continue // in would come after an effect called after it returned
		}
		var bbuf [3]possibility
		before := append(bbuf[:0], p)
		if p.creates < len(in.pend.creates) && in.pend.creates[p.creates] <= in.ret {
			before = append(before, possibility{present, p.creates + 1, p.deletes})
		}
		if p.deletes < len(in.pend.deletes) && in.pend.deletes[p.deletes] <= in.ret {
			before = append(before, possibility{absent, p.creates, p.deletes + 1})
		}
		for _, q := range before {
			if ok, v := stepValue(q.v, in.kind, out); ok {
				next = append(next, possibility{v, q.creates, q.deletes})
			}
		}
	}
	if len(next) == 0 {
		return false, s
	}
	return true, encode(next)
}

var seed = maphash.MakeSeed()

// newModel returns the porcupine model of one id, partitioned by id. Each
// operation's Metadata is its index in ops, which describes it.
func newModel(ops []Op) porcupine.Model {
	return porcupine.Model{
		Partition: partition,
		Init:      func() any { return box(unknown) },
		Step: func(s, in, out any) (bool, any) {
			ok, next := step(s.(states), in.(input), out.(Outcome))
			return ok, box(next)
		},
		Hash: func(s any) uint64 { return maphash.String(seed, string(s.(states))) },
		DescribeOperation: func(in, out any) string {
			return fmt.Sprintf("%s %s: %s", in.(input).kind, in.(input).id, out)
		},
		DescribeState: func(s any) string {
			var b strings.Builder
			b.WriteString(s.(states).String())
			for _, p := range s.(states).decode(nil) {
				if p.creates+p.deletes > 0 {
					fmt.Fprintf(&b, "; %s after %d pending creates and %d deletes", p.v, p.creates, p.deletes)
				}
			}
			return b.String()
		},
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
