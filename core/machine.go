package core

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
	stNumStates
)

var stateNames = [...]string{"probing", "untouched", "maybeWritten", "reading", "ours", "foreign", "held", "absent",
	"fenced", "unwriting", "rewriting", "clearing", "cleared", "unwritten", "rewritten", "verifyGone", "verifyHeld", "unknown",
	"removing", "maybeRemoved", "unremoving"}

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
	numEvents
)

var eventNames = [...]string{"applied", "notSent", "ambiguous", "exists", "notFound", "fenced", "rejected",
	"readOurs", "readOther", "readNoToken", "giveUp", "undoCreate", "undoDelete", "lapsed"}

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
	stUnwritten: {evLapsed: {stVerifyGone, acSend}},
	stRewritten: {evLapsed: {stVerifyHeld, acSend}},
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

// taken, if not nil, is told of every transition the driver takes. The
// tests set it, before any operation runs, to check that the suite takes
// every transition the table lists (TestMain in main_test.go).
var taken func(state, event)

// step is the transition function: the next state and what to do, given
// the state and an event.
func step(s state, e event) (state, action) {
	if t, ok := transitions[s][e]; ok {
		return t.to, t.act
	}
	return s, acInvalid
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

// requestOf returns the request a state sends and the token it carries (or,
// for a read, looks for): the forward write of op, or the undo's.
func requestOf(s state, op Op, p *part) (request, Token) {
	switch s {
	case stProbing:
		return reqGet, ""
	case stUntouched, stMaybeWritten:
		if op == OpCreate {
			return reqCreate, p.write
		}
		return reqDelete, p.pre
	case stReading, stVerifyGone:
		return reqGet, p.write
	case stVerifyHeld:
		return reqGet, p.restore
	case stUnwriting:
		return reqDelete, p.write
	case stRewriting, stCleared:
		return reqCreate, p.restore
	case stClearing:
		return reqDelete, p.pre
	case stRemoving, stMaybeRemoved, stUnremoving:
		return reqRemove, p.restore
	}
	return reqNone, ""
}
