package history

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/anishathalye/porcupine"
)

// Bounds on what Visualize draws: porcupine's page holds, for each id, an
// order through every operation it could place, so it grows with the
// square of an id's operations (a whole history made a 1.5 GB page,
// porcupine#20).
const (
	shownFailures = 10   // ids that cannot be explained
	shownAround   = 256  // operations of one such id, at the least
	shownOK       = 2000 // operations of a linearizable history
)

// Visualize writes porcupine's HTML page of the history to w: if it is not
// linearizable, the ids that cannot be explained (the first ten), the
// first first, each cut to a window around its first unexplained
// operation, marked; if it is, the first ids, up to 2000 operations. The
// nemesis's fault windows are drawn on a row of their own.
func (r Result) Visualize(w io.Writer) error {
	m := newModel(r.ops)
	var shown []porcupine.Operation
	var notes []porcupine.Annotation
	if r.OK() {
		for _, p := range r.parts {
			if len(shown) > 0 && len(shown)+len(p) > shownOK {
				break
			}
			shown = append(shown, p...)
		}
	}
	for _, f := range r.Failures[:min(len(r.Failures), shownFailures)] {
		p := r.parts[f.part]
		shown = append(shown, window(m, p, f.index)...)
		op := p[f.index]
		notes = append(notes, porcupine.Annotation{
			ClientId:        op.ClientId,
			Start:           op.Call,
			End:             op.Return,
			Description:     "cannot be explained",
			Details:         f.Op.String() + "; before it, " + f.ID + " is " + f.State,
			BackgroundColor: "#f4b6b6",
		})
	}
	_, info := porcupine.CheckOperationsVerbose(m, shown, 0)
	info.AddAnnotations(append(notes, r.unreturned(shown)...))
	return porcupine.Visualize(m, info, w)
}

// unreturned returns what has no return among the operations shown, as
// annotations: the pending operations on the ids shown, in their
// processes' rows, and the nemesis's windows, on a row of their own; each
// drawn from its start to its end, or to the last time shown.
func (r Result) unreturned(shown []porcupine.Operation) []porcupine.Annotation {
	if len(shown) == 0 {
		return nil
	}
	ids := map[string]bool{}
	from, to := int64(math.MaxInt64), int64(0)
	for _, op := range shown {
		ids[op.Input.(input).id] = true
		from, to = min(from, op.Call), max(to, op.Return)
	}
	var notes []porcupine.Annotation
	for _, op := range r.ops {
		end := returnTime(op.Return)
		switch {
		case end < from || int64(op.Call) > to:
		case op.Kind == Nemesis:
			desc := op.What
			if op.Target != "" {
				desc += " " + op.Target
			}
			notes = append(notes, porcupine.Annotation{
				Tag:             "nemesis",
				Start:           int64(op.Call),
				End:             min(end, to),
				Description:     desc,
				Details:         op.String(),
				BackgroundColor: "#fde2a7",
			})
		case op.Outcome == Pending && ids[op.ID]:
			notes = append(notes, porcupine.Annotation{
				ClientId:        r.clients[op.Process],
				Start:           int64(op.Call),
				End:             to,
				Description:     fmt.Sprintf("%s %s: pending", op.Kind, op.ID),
				Details:         op.String() + "; it may take effect at any time after its call, or never",
				BackgroundColor: "#d9d9d9",
			})
		}
	}
	return notes
}

// window returns the operations of partition p to draw around p[stop]: all
// of them if they are few, else a window cut where no operation is in
// flight, as short as still cannot be explained. Such a cut loses nothing:
// the window starts from an unknown state, which allows whatever the
// operations before it left, so a window that cannot be explained shows a
// real violation.
func window(m porcupine.Model, p []porcupine.Operation, stop int) []porcupine.Operation {
	if len(p) <= shownAround {
		return p
	}
	s := slices.Clone(p)
	slices.SortStableFunc(s, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	at := slices.IndexFunc(s, func(op porcupine.Operation) bool { return op.Metadata == p[stop].Metadata })
	// cut[i]: every operation of s[:i] returned before s[i] was called.
	cut := make([]bool, len(s)+1)
	cut[0], cut[len(s)] = true, true
	last := int64(math.MinInt64)
	for i, op := range s {
		if i > 0 && last < op.Call {
			cut[i] = true
		}
		last = max(last, op.Return)
	}
	end := at + 1
	for !cut[end] {
		end++
	}
	if porcupine.CheckOperations(m, s[:end]) {
		end = len(s) // the violation needs what comes after: keep it
	}
	for back := shownAround / 2; ; back *= 2 {
		start := max(0, at-back)
		for !cut[start] {
			start--
		}
		if start == 0 || !porcupine.CheckOperations(m, s[start:end]) {
			return s[start:end]
		}
	}
}
