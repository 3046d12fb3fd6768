package history

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is what a line records: an operation on one id, or a nemesis's
// fault window. It is written as "op".
type Kind string

// Kinds.
const (
	Create  Kind = "create"
	Delete  Kind = "delete"
	Read    Kind = "read"    // a reading of one id on every node
	Nemesis Kind = "nemesis" // a fault window: What, Target, Call to Return
)

// Outcome is how an operation ended: for a create or a delete, as rops
// reports it (README, "What it guarantees"); for a read, what it found.
type Outcome string

// Outcomes.
const (
	Done       Outcome = "done"        // the operation took effect
	Unchanged  Outcome = "unchanged"   // the id was already so
	RolledBack Outcome = "rolled_back" // the operation had no effect
	Pending    Outcome = "pending"     // unknown: it may take effect, or not
	Present    Outcome = "present"     // a read found the id
	Absent     Outcome = "absent"      // a read did not
)

// NoReturn is the Return of an operation whose effect is unknown (pending,
// or cut off by a crash), and of a fault window that had not ended when the
// history did. It is written as null.
const NoReturn time.Duration = -1

// Op is one line of a history: an operation on one id, or a nemesis's
// fault window (Kind Nemesis, with What and Target, and neither Process,
// ID, Outcome nor Token).
type Op struct {
	Kind    Kind
	Process int     // which worker or coordinator ran the operation
	ID      string  // the group id
	Outcome Outcome // done, unchanged, rolled_back or pending; present or absent for a read
	// Call and Return are the times since the history's start when the
	// operation was called and returned, or a fault window's start and
	// end. Return is NoReturn if and only if the outcome is pending.
	Call, Return time.Duration
	Token        string // the operation's token, or the token a read found; optional
	What         string // the fault, such as "pause" or "kill"
	Target       string // the node or process the fault struck; optional
	// Line is the line of the history the Op was read from, 1 first; 0 if
	// it was not read. It is not written.
	Line int
}

// outcomes lists the outcomes that an operation of each kind may have.
var outcomes = map[Kind][]Outcome{
	Create: {Done, Unchanged, RolledBack, Pending},
	Delete: {Done, Unchanged, RolledBack, Pending},
	Read:   {Present, Absent},
}

// Validate returns an error saying what is wrong with op, in the terms of
// the JSON format, or nil if it is a valid line of a history.
func (op Op) Validate() error {
	if op.Kind == Nemesis {
		return op.validateNemesis()
	}
	allowed, ok := outcomes[op.Kind]
	if !ok {
		if op.Kind == "" {
			return errors.New(`"op" is missing: give create, delete, read or nemesis`)
		}
		return fmt.Errorf(`op %q: want create, delete, read or nemesis`, op.Kind)
	}
	switch {
	case op.ID == "":
		return fmt.Errorf(`"id" is missing: a %s names the id it %s`, op.Kind, verb(op.Kind))
	case !utf8.ValidString(op.ID):
		return fmt.Errorf(`id %q is not valid UTF-8`, op.ID)
	case !utf8.ValidString(op.Token):
		return fmt.Errorf(`token %q is not valid UTF-8`, op.Token)
	case op.What != "" || op.Target != "":
		return fmt.Errorf(`"what" and "target" are for nemesis lines, not a %s`, op.Kind)
	case op.Outcome == "":
		return fmt.Errorf(`"outcome" is missing: a %s ends %s`, op.Kind, list(allowed))
	}
	if !slices.Contains(allowed, op.Outcome) {
		return fmt.Errorf(`outcome %q: a %s ends %s`, op.Outcome, op.Kind, list(allowed))
	}
	if err := validateTimes(op.Call, op.Return); err != nil {
		return err
	}
	switch {
	case op.Outcome == Pending && op.Return != NoReturn:
		return fmt.Errorf(`return %d on a pending %s: its effect is unknown, so "return" is null`, op.Return, op.Kind)
	case op.Outcome != Pending && op.Return == NoReturn:
		return fmt.Errorf(`"return" is null, but the %s ended %s: only a pending operation has no return`, op.Kind, op.Outcome)
	}
	return nil
}

func (op Op) validateNemesis() error {
	switch {
	case op.What == "":
		return errors.New(`"what" is missing: a nemesis line says what fault it was`)
	case !utf8.ValidString(op.What) || !utf8.ValidString(op.Target):
		return fmt.Errorf(`what %q or target %q is not valid UTF-8`, op.What, op.Target)
	case op.ID != "" || op.Outcome != "" || op.Token != "" || op.Process != 0:
		return errors.New(`a nemesis line has no "process", "id", "outcome" or "token": it names its "target"`)
	}
	return validateTimes(op.Call, op.Return)
}

func validateTimes(call, ret time.Duration) error {
	switch {
	case call < 0:
		return fmt.Errorf(`call %d is negative: times are nanoseconds since the history's start`, call)
	case ret < 0 && ret != NoReturn:
		return fmt.Errorf(`return %d is negative: times are nanoseconds since the history's start`, ret)
	case ret != NoReturn && ret < call:
		return fmt.Errorf(`return %d is before call %d`, ret, call)
	}
	return nil
}

// String describes op in one line, such as
// "line 4: process 1 read a: absent, call 400ns, return 512ns".
func (op Op) String() string {
	var b strings.Builder
	if op.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", op.Line)
	}
	if op.Kind == Nemesis {
		fmt.Fprintf(&b, "nemesis %s", op.What)
		if op.Target != "" {
			fmt.Fprintf(&b, " on %s", op.Target)
		}
		fmt.Fprintf(&b, ", from %v to %s", op.Call, end(op.Return, "the end"))
		return b.String()
	}
	fmt.Fprintf(&b, "process %d %s %s: %s", op.Process, op.Kind, op.ID, op.Outcome)
	if op.Token != "" {
		fmt.Fprintf(&b, " (token %s)", op.Token)
	}
	fmt.Fprintf(&b, ", call %v, return %s", op.Call, end(op.Return, "none"))
	return b.String()
}

func end(ret time.Duration, none string) string {
	if ret == NoReturn {
		return none
	}
	return ret.String()
}

func verb(k Kind) string {
	if k == Read {
		return "reads"
	}
	return k.String() + "s"
}

// String returns the kind as it is written.
func (k Kind) String() string { return string(k) }

// list writes outs as "done, unchanged, rolled_back or pending".
func list(outs []Outcome) string {
	s := make([]string, len(outs))
	for i, o := range outs {
		s[i] = string(o)
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
