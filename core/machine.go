package core

import "strings"

// One node's part in an operation is a small state machine. step is its
// whole transition function: pure, no I/O, every (state, event) pair in one
// table (transitions, below), so that every "may this write have been
// applied?" decision can be checked in one place. The driver (driver.go)
// sends the request each state asks for, classifies the answer into an
// event, and carries out the action step returns.
//
// The states say what the coordinator knows of its own writes on the node.
// Three facts shape the table:
//   - Only an answer proves a write applied or not. An error after any byte
//     of the request left (a 5xx, a timeout, a reset) may hide an applied
//     write, so it moves an untouched node to maybeWritten, never back.
//   - A node that fences (see Fencer) refuses a create whose token a
//     conditional delete has tombstoned, so the undo of a create cannot be
//     overtaken by the create itself arriving late.
//   - A node that fences also tombstones the token of a create it refuses
//     because it holds another record, so that a copy of that create
//     delivered later (a network or proxy resend) cannot land once the
//     record is gone.
//   - The undo of a delete re-creates the record under the operation's own
//     token, not the token deleted: a late conditional delete of the old
//     token then misses the restored record. Where our delete may not have
//     landed yet (and may later), the undo first deletes the old record
//     itself (clearing), so that nothing can land after the undo.
//     Against a node that does not fence, the driver also waits out the
//     lifetime of the last ambiguous request and reads the node again
//     (lapsed, verifyGone, verifyHeld).
//   - A delete on nodes that remove without a read (Remover) sends
//     Remove(id, before = its own token) and learns from the answer what it
//     removed. The node answers a copy of it from its record of the removal,
//     so resending it is how an undo learns what an ambiguous one removed
//     (unremoving), and a copy landing late removes nothing written since:
//     the undo's record carries the operation's token, not older than it.

// state is what the coordinator knows of one node in an operation.
type state uint8

const (
	// probing: a delete is reading the node's record before it starts.
	stProbing state = iota
	// untouched: nothing this operation wrote can be on the node: nothing
	// was sent, or every request certainly was not applied. The forward
	// write (create, or delete of the token read) is to be sent.
	stUntouched
	// maybeWritten: a forward write may have been applied; send it again.
	stMaybeWritten
	// reading: a create met a record after an ambiguous attempt; reading
	// its token tells ours from another's.
	stReading
	// ours: the forward write is applied for certain (the node holds our
	// record, or the record we deleted is gone).
	stOurs
	// foreign: a create found another record there; nothing of ours is.
	stForeign
	// held: a create's record is there, but the node does not say whose
	// (the original server): it may be ours, so an undo visits it.
	stHeld
	// absent: a delete found no record; there is nothing to do.
	stAbsent
	// fenced: a tombstone refused the create: nothing of ours is there, or
	// ever will be.
	stFenced
	// unwriting: undoing a create: deleting our token, conditionally.
	stUnwriting
	// rewriting: undoing a delete that certainly landed: re-creating the
	// record under the operation's own token.
	stRewriting
	// clearing: undoing a delete that may not have landed yet, and may
	// still: delete the old record ourselves first.
	stClearing
	// cleared: the old record is gone; re-create the record.
	stCleared
	// unwritten: the create is undone.
	stUnwritten
	// rewritten: the delete is undone: the node holds the id again.
	stRewritten
	// verifyGone: an undone create on a node that does not fence, after
	// its late requests lapsed: reading to see that none landed.
	stVerifyGone
	// verifyHeld: the same for an undone delete.
	stVerifyHeld
	// unknown: the undo gave up; the operation is pending.
	stUnknown
	// removing: a delete without a read: Remove is to be sent; nothing of
	// it can have been applied.
	stRemoving
	// maybeRemoved: a Remove may have been applied; send it again, its
	// answer says what it removed.
	stMaybeRemoved
	// unremoving: undoing a Remove that may have been applied: send it
	// again to learn what it removed, then re-create the record if it did.
	stUnremoving
	// surveying: a repair's create is reading the node before it starts:
	// a node that holds the id keeps its record, one that lacks it is
	// written.
	stSurveying
	stNumStates
)

var stateNames = [...]string{"probing", "untouched", "maybeWritten", "reading", "ours", "foreign", "held", "absent",
	"fenced", "unwriting", "rewriting", "clearing", "cleared", "unwritten", "rewritten", "verifyGone", "verifyHeld", "unknown",
	"removing", "maybeRemoved", "unremoving", "surveying"}

func (s state) String() string { return stateNames[s] }

// event is a classified answer to the state's request, or a decision of the
// driver.
type event uint8

const (
	// applied: the node answered success.
	evApplied event = iota
	// evNotSent: the request certainly was not applied: nothing of it was
	// sent, or a rops node said it is down.
	evNotSent
	// evAmbiguous: no answer that says what happened (5xx, timeout, reset,
	// a proxy's 502/503/504): the write may have been applied.
	evAmbiguous
	// evExists: a create found a record with another token.
	evExists
	// evNotFound: a delete found no such record, or a read no record.
	evNotFound
	// evFenced: a create was refused by a tombstone: not applied, never
	// will be.
	evFenced
	// evRejected: the node refused the request for good (a 4xx).
	evRejected
	// evReadOurs, evReadOther, evReadNoToken: a read found a record with
	// the token this state looks for, another one, or none told.
	evReadOurs
	evReadOther
	evReadNoToken
	// evGiveUp: the retries or the time for this node ran out.
	evGiveUp
	// evUndoCreate, evUndoDelete: the operation failed; undo it.
	evUndoCreate
	evUndoDelete
	// evLapsed: every ambiguous request to a node that does not fence is
	// past its lifetime.
	evLapsed
	// evBlocked: an earlier operation on the id was left pending and
	// could not be settled: this one sends nothing, and the node holds
	// whatever that one left.
	evBlocked
	numEvents
)

var eventNames = [...]string{"applied", "notSent", "ambiguous", "exists", "notFound", "fenced", "rejected",
	"readOurs", "readOther", "readNoToken", "giveUp", "undoCreate", "undoDelete", "lapsed", "blocked"}

func (e event) String() string { return eventNames[e] }

// action is what the driver does after a step.
type action uint8

const (
	// send the request of the new state: at once if the state changed,
	// after a backoff if the same request failed.
	acSend action = iota
	// acDone: this node's part of the phase is settled.
	acDone
	// acFail: this node's part failed: the operation is undone (forward)
	// or pending (undo).
	acFail
	// acInvalid: the event cannot happen in this state (a bug).
	acInvalid
)

func (a action) String() string { return [...]string{"send", "done", "fail", "invalid"}[a] }

type transition struct {
	to  state
	act action
}

// transitions is the whole state machine. Pairs that are not listed cannot
// happen (a create is never answered "not found", a state settled by
// acDone or acFail gets no answers): step returns acInvalid for them.
var transitions = map[state]map[event]transition{
	// A probe carries no token (so no read finds "ours"), and a failed
	// probe ends the delete before anything is written (so no undo).
	stProbing: {
		evReadOther: {stUntouched, acDone}, evReadNoToken: {stUntouched, acDone},
		evNotFound: {stAbsent, acDone},
		evNotSent:  {stProbing, acSend}, evAmbiguous: {stProbing, acSend},
		evRejected: {stProbing, acFail}, evGiveUp: {stProbing, acFail},
		evBlocked: {stUnknown, acFail},
	},
	stSurveying: {
		evReadOther: {stForeign, acDone}, evReadNoToken: {stForeign, acDone},
		evNotFound: {stUntouched, acDone},
		evNotSent:  {stSurveying, acSend}, evAmbiguous: {stSurveying, acSend},
		evRejected: {stSurveying, acFail}, evGiveUp: {stSurveying, acFail},
		evBlocked: {stUnknown, acFail},
	},
	stUntouched: {
		evApplied:   {stOurs, acDone},
		evNotSent:   {stUntouched, acSend},
		evAmbiguous: {stMaybeWritten, acSend},
		evExists:    {stForeign, acDone}, // nothing of ours could be there
		evNotFound:  {stOurs, acDone},    // a delete: the record is gone; undo restores it
		// No fenced: a token drawn for this operation cannot have been
		// tombstoned before its first request.
		evRejected: {stUntouched, acFail}, evGiveUp: {stUntouched, acFail},
		evUndoCreate: {stUntouched, acDone}, evUndoDelete: {stUntouched, acDone},
		evBlocked: {stUnknown, acFail},
	},
	stMaybeWritten: {
		evApplied:   {stOurs, acDone},
		evNotSent:   {stMaybeWritten, acSend},
		evAmbiguous: {stMaybeWritten, acSend},
		evExists:    {stReading, acSend}, // ours, landed earlier, or another's?
		evNotFound:  {stOurs, acDone},    // a delete: gone, maybe by our earlier attempt
		evFenced:    {stFenced, acFail},
		evRejected:  {stMaybeWritten, acFail}, evGiveUp: {stMaybeWritten, acFail},
		evUndoCreate: {stUnwriting, acSend}, evUndoDelete: {stClearing, acSend}, // our delete may yet land
	},
	stReading: {
		evReadOurs: {stOurs, acDone}, evReadOther: {stForeign, acDone}, evReadNoToken: {stHeld, acDone},
		evNotFound: {stMaybeWritten, acSend}, // gone meanwhile: create again
		evNotSent:  {stReading, acSend}, evAmbiguous: {stReading, acSend},
		evRejected: {stReading, acFail}, evGiveUp: {stReading, acFail},
		evUndoCreate: {stUnwriting, acSend},
	},
	stOurs:    {evUndoCreate: {stUnwriting, acSend}, evUndoDelete: {stRewriting, acSend}},
	stForeign: {evUndoCreate: {stForeign, acDone}, evUndoDelete: {stForeign, acDone}},
	stHeld:    {evUndoCreate: {stUnwriting, acSend}},
	stAbsent:  {evUndoDelete: {stAbsent, acDone}},
	stFenced:  {evUndoCreate: {stFenced, acDone}},
	stUnwriting: {
		evApplied: {stUnwritten, acDone}, evNotFound: {stUnwritten, acDone},
		evNotSent: {stUnwriting, acSend}, evAmbiguous: {stUnwriting, acSend},
		evRejected: {stUnknown, acFail}, evGiveUp: {stUnknown, acFail},
	},
	stRewriting: {
		evApplied: {stRewritten, acDone},
		evExists:  {stRewritten, acDone}, // another record: ours was deleted for certain, so not the old one
		evNotSent: {stRewriting, acSend}, evAmbiguous: {stRewriting, acSend},
		evFenced: {stUnknown, acFail}, evRejected: {stUnknown, acFail}, evGiveUp: {stUnknown, acFail},
	},
	stClearing: {
		evApplied: {stCleared, acSend}, evNotFound: {stCleared, acSend},
		evNotSent: {stClearing, acSend}, evAmbiguous: {stClearing, acSend},
		evRejected: {stUnknown, acFail}, evGiveUp: {stUnknown, acFail},
	},
	stCleared: {
		evApplied: {stRewritten, acDone},
		evExists:  {stRewritten, acDone}, // another record, not the one we deleted: the id is held
		evNotSent: {stCleared, acSend}, evAmbiguous: {stCleared, acSend},
		evFenced: {stUnknown, acFail}, evRejected: {stUnknown, acFail}, evGiveUp: {stUnknown, acFail},
	},
	stRemoving: {
		evApplied:  {stOurs, acDone}, // the answer says what it removed; undo re-creates it
		evNotFound: {stAbsent, acDone},
		evNotSent:  {stRemoving, acSend}, evAmbiguous: {stMaybeRemoved, acSend},
		evExists:   {stForeign, acFail}, // a record not older than ours: nothing removed, the delete fails
		evRejected: {stRemoving, acFail}, evGiveUp: {stRemoving, acFail},
		evUndoDelete: {stRemoving, acDone},
		evBlocked:    {stUnknown, acFail},
	},
	stMaybeRemoved: {
		evApplied:  {stOurs, acDone}, // by this copy or an earlier one: the node's record says
		evNotFound: {stAbsent, acDone},
		evNotSent:  {stMaybeRemoved, acSend}, evAmbiguous: {stMaybeRemoved, acSend},
		evExists:   {stForeign, acFail}, // no earlier copy removed anything, and none will
		evRejected: {stMaybeRemoved, acFail}, evGiveUp: {stMaybeRemoved, acFail},
		evUndoDelete: {stUnremoving, acSend},
	},
	stUnremoving: {
		evApplied:  {stCleared, acSend}, // it removed the record: re-create it
		evNotFound: {stAbsent, acDone},  // it removed nothing, and never will
		evExists:   {stForeign, acDone},
		evNotSent:  {stUnremoving, acSend}, evAmbiguous: {stUnremoving, acSend},
		evRejected: {stUnknown, acFail}, evGiveUp: {stUnknown, acFail},
	},
	// Waiting for late writes to lapse: giving up (they may land past the
	// compensation timeout, or kept landing) leaves the node to Recover.
	stUnwritten: {evLapsed: {stVerifyGone, acSend}, evGiveUp: {stUnknown, acFail}},
	stRewritten: {evLapsed: {stVerifyHeld, acSend}, evGiveUp: {stUnknown, acFail}},
	stVerifyGone: {
		evNotFound: {stUnwritten, acDone}, evReadOther: {stUnwritten, acDone},
		evReadOurs: {stUnwriting, acSend}, evReadNoToken: {stUnwriting, acSend}, // a late create landed, maybe
		evNotSent: {stVerifyGone, acSend}, evAmbiguous: {stVerifyGone, acSend},
		evRejected: {stUnknown, acFail}, evGiveUp: {stUnknown, acFail},
	},
	stVerifyHeld: {
		evReadOurs: {stRewritten, acDone}, evReadOther: {stRewritten, acDone}, evReadNoToken: {stRewritten, acDone},
		evNotFound: {stRewriting, acSend}, // a late delete landed
		evNotSent:  {stVerifyHeld, acSend}, evAmbiguous: {stVerifyHeld, acSend},
		evRejected: {stUnknown, acFail}, evGiveUp: {stUnknown, acFail},
	},
}

// keep is what a transition keeps of the answer besides the next state:
// the part's token and pre-image bookkeeping.
type keep uint8

const (
	// keepPreImage: the answer's token is the record the node held before
	// the delete (a probe's read, or what a Remove removed); the undo
	// re-creates it, and the node held the id.
	keepPreImage keep = 1 << iota
	// keepNewer: the answer's token (what a Remove removed, or the newer
	// record that refused it) may be above the operation's; every later
	// token must be above it.
	keepNewer
	// keepSentAt: the request is a write whose outcome is unknown; it may
	// land until its lifetime ends, so note when it was sent (the undo of
	// a node that does not fence waits for it to lapse).
	keepSentAt
)

func (k keep) String() string {
	var s []string
	for i, name := range []string{"preImage", "newer", "sentAt"} {
		if k&(1<<i) != 0 {
			s = append(s, name)
		}
	}
	return strings.Join(s, "+")
}

// keeps lists the transitions that keep more than their state (keepSentAt,
// which every ambiguous answer to a write keeps, aside): what a delete
// learns of the record it deletes.
var keeps = map[state]map[event]keep{
	stProbing:      {evReadOther: keepPreImage, evReadNoToken: keepPreImage},
	stSurveying:    {evReadOther: keepPreImage, evReadNoToken: keepPreImage},
	stRemoving:     {evApplied: keepPreImage | keepNewer, evExists: keepNewer},
	stMaybeRemoved: {evApplied: keepPreImage | keepNewer, evExists: keepNewer},
	stUnremoving:   {evApplied: keepPreImage | keepNewer, evExists: keepNewer},
}

// role names which of a part's tokens a request carries.
type role uint8

const (
	roleNone    role = iota
	roleWrite        // the token a create writes (part.write)
	rolePre          // the token the node held before a delete (part.pre)
	roleRestore      // the operation's own token: what an undone delete re-creates, and Remove's bound (part.restore)
)

func (r role) String() string { return [...]string{"-", "write", "pre", "restore"}[r] }

// move is everything one step decides.
type move struct {
	to   state
	act  action
	keep keep
	// req is the request the new state sends (when act is acSend), and
	// tok which token it carries or, for a read, looks for.
	req request
	tok role
}

// taken, if not nil, is told of every transition the driver takes. The
// tests set it, before any operation runs, to check that the suite takes
// every transition the table lists (TestMain in main_test.go).
var taken func(state, event)

// step is the transition function: given a node's state, an event and the
// operation's kind, the next state, what to do, what of the answer to
// keep, and the request to send next. It is pure; act is acInvalid for a
// pair the table does not list.
func step(s state, e event, op Op) move {
	t, ok := transitions[s][e]
	if !ok {
		return move{to: s, act: acInvalid}
	}
	m := move{to: t.to, act: t.act, keep: keeps[s][e]}
	if req, _ := requestOf(s, op); e == evAmbiguous && req != reqGet && req != reqNone {
		m.keep |= keepSentAt
	}
	if m.act == acSend {
		m.req, m.tok = requestOf(m.to, op)
	}
	return m
}

// request is what a node in state s is sent, for an operation of kind op.
type request uint8

const (
	reqNone request = iota
	reqCreate
	reqDelete
	reqGet
	reqRemove
)

func (r request) String() string { return [...]string{"-", "create", "delete", "get", "remove"}[r] }

// requestOf returns the request a state sends and which token it carries
// (or, for a read, looks for): the forward write of op, or the undo's.
func requestOf(s state, op Op) (request, role) {
	switch s {
	case stProbing, stSurveying:
		return reqGet, roleNone
	case stUntouched, stMaybeWritten:
		if op == OpCreate {
			return reqCreate, roleWrite
		}
		return reqDelete, rolePre
	case stReading, stVerifyGone:
		return reqGet, roleWrite
	case stVerifyHeld:
		return reqGet, roleRestore
	case stUnwriting:
		return reqDelete, roleWrite
	case stRewriting, stCleared:
		return reqCreate, roleRestore
	case stClearing:
		return reqDelete, rolePre
	case stRemoving, stMaybeRemoved, stUnremoving:
		return reqRemove, roleRestore
	}
	return reqNone, roleNone
}

// The decisions that start or end a state machine, beside step's table.

// resumeState is where the undo of an intent left by an earlier operation
// starts on a node it names. Every such node may hold the write: the
// process that wrote it is gone, or gave up on it. removed: a Blind
// delete's answers said it removed a record there; forgotten: the node may
// have forgotten what the delete removed (see removalForgotten).
func resumeState(in Intent, removed, forgotten bool) state {
	switch {
	case in.Blind && removed:
		return stOurs // removed: re-create it
	case in.Blind && len(in.PreImage) > 0 && forgotten:
		// Remove again would find nothing and say so: restore it, as on
		// the nodes known to have removed the record.
		return stOurs
	case in.Blind:
		return stMaybeRemoved // Remove again tells
	}
	return stMaybeWritten
}

// settledState is what a read of a node shows of an intent's operation op
// that Recover found left: the node's state if the operation is complete
// there, and complete = false if the read shows it partial (the id held
// after a delete, or missing after a create). removed: the delete's
// pre-image names the node. ok is false for an event that is no answer
// (the read failed).
func settledState(op Op, e event, removed bool) (st state, complete, ok bool) {
	held := e == evReadOurs || e == evReadOther || e == evReadNoToken
	switch {
	case held && op == OpCreate:
		return map[event]state{evReadOurs: stOurs, evReadOther: stForeign, evReadNoToken: stHeld}[e], true, true
	case e == evNotFound && op == OpDelete && removed:
		return stOurs, true, true
	case e == evNotFound && op == OpDelete:
		return stAbsent, true, true
	case held || e == evNotFound:
		return stUnknown, false, true
	}
	return stUnknown, false, false
}

// reported is what a node in state s holds, as far as the coordinator
// knows, at the end of an operation of kind op; had says the node held the
// id before (a delete's probe or Remove found a record).
func reported(s state, op Op, had bool) NodeState {
	switch s {
	case stOurs:
		if op == OpDelete {
			return StateDeleted
		}
		return StateCreated
	case stHeld:
		return StateCreated
	case stForeign:
		return StateExisted
	case stUntouched:
		if had {
			return StateExisted
		}
		return StateAbsent
	case stAbsent, stFenced:
		return StateAbsent
	case stUnwritten, stRewritten:
		return StateRestored
	}
	return StateUnknown
}
