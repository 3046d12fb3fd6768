package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/reliable-ops/rops/core/breaker"
)

// Defaults of Config (docs/design.md): the original's 10 retries,
// exponential backoff from 10 ms capped at 500 ms, 2 s per request and 30 s
// per operation.
const (
	DefaultRetries             = 10
	DefaultBackoffBase         = 10 * time.Millisecond
	DefaultBackoffCap          = 500 * time.Millisecond
	DefaultRequestTimeout      = 2 * time.Second
	DefaultOperationTimeout    = 30 * time.Second
	DefaultCompensationTimeout = 30 * time.Second
	DefaultRequestLifetime     = 30 * time.Second
)

// Config configures a Coordinator. Only Nodes is required.
type Config struct {
	// Nodes are the nodes every operation spans, in report order. Names
	// must be unique.
	Nodes []Node
	// Journal records unfinished operations for Recover. Nil means no
	// crash recovery: a crash mid-operation may leave nodes disagreeing
	// until repaired.
	Journal Journal
	// NewBackoff returns a fresh Backoff for one node's requests in one
	// operation. Default: QuickFirst(Exponential(DefaultBackoffBase,
	// DefaultBackoffCap, DefaultRetries-1, Rand)), DefaultRetries in all.
	// The defaults use only the standard library, as core does; a
	// go-retry backoff fits as it is (the rops CLI uses one for both).
	// A retry may come sooner than its delay: while the node answers
	// other requests, a failure that is no sign of load is retried after
	// DefaultFirstRetry, up to ten times a request (see retry.go). The
	// Backoff is still asked, so it still counts the retries.
	NewBackoff func() Backoff
	// NewCompensationBackoff is the same for compensation, which retries
	// until CompensationTimeout. Default: Exponential(DefaultBackoffBase,
	// DefaultBackoffCap, -1, Rand), without a limit.
	NewCompensationBackoff func() Backoff
	// RequestTimeout bounds every request to a node.
	RequestTimeout time.Duration
	// OperationTimeout bounds the forward part of an operation.
	OperationTimeout time.Duration
	// CompensationTimeout bounds compensation; what is not undone by then is
	// reported pending and left to Recover.
	CompensationTimeout time.Duration
	// RequestLifetime is how long after it was sent a request may still be
	// applied by a node that does not fence (see Fencer), such as the
	// original server: a queued request outlives the client's timeout. An
	// undo that met an ambiguous write on such a node waits until that
	// write's lifetime is over and reads the node again. Default
	// DefaultRequestLifetime, the original server's worker timeout
	// (gunicorn's default), after which it kills a request.
	RequestLifetime time.Duration
	// Clock is the time source for backoff and reports. Default SystemClock.
	Clock Clock
	// Rand draws the jitter of the default backoffs (it is not used when
	// both NewBackoff and NewCompensationBackoff are set); it must be safe
	// for concurrent use (see NewLockedSource). Default: seeded from the
	// clock.
	Rand *rand.Rand
	// Tokens makes operation tokens. Default: NewTokenSource(Clock).
	Tokens *TokenSource
	// Locks serializes operations on the same id. Default: a mutex per id
	// in this process, which is enough while one coordinator runs jobs on
	// the cluster; coordinators in several processes sharing a journal
	// (see SharedJournal) need one lock for all, such as etcd's.
	Locks Locker
	// Breaker, if not nil, stops sending requests to a node that has been
	// unreachable for a while, so that operations needing it end rolled
	// back or pending at once instead of after their timeouts (see
	// Breaker). Nil: every request is sent.
	Breaker *breaker.Breaker
}

// Coordinator runs operations across a fixed set of nodes. It is safe for
// concurrent use; operations on the same id are serialized.
type Coordinator struct {
	cfg    Config
	byName map[string]Node // cfg.Nodes by name
	book   ledger
	// answers counts, per node name, the requests the node answered
	// (successfully or with a definite refusal), for retry's quick path:
	// a count that moved while a request was out says the node was up
	// and taking work. The map is filled in New and only read after.
	answers map[string]*atomic.Uint64
}

// New returns a Coordinator for cfg, filling in defaults. It fails with
// EInvalid if there are no nodes or two share a name.
func New(cfg Config) (*Coordinator, error) {
	if len(cfg.Nodes) == 0 {
		return nil, Errorf(EInvalid, "no nodes: a coordinator needs at least one node")
	}
	byName := make(map[string]Node, len(cfg.Nodes))
	answers := make(map[string]*atomic.Uint64, len(cfg.Nodes))
	for _, n := range cfg.Nodes {
		if byName[n.Name()] != nil {
			return nil, Errorf(EInvalid, "node %q appears twice: node names must be unique", n.Name())
		}
		byName[n.Name()] = n
		answers[n.Name()] = new(atomic.Uint64)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(NewLockedSource(uint64(cfg.Clock.Now().UnixNano())))
	}
	if cfg.Tokens == nil {
		cfg.Tokens = NewTokenSource(cfg.Clock)
	}
	if cfg.Locks == nil {
		cfg.Locks = LocalLocker()
	}
	if cfg.NewBackoff == nil {
		rng := cfg.Rand
		cfg.NewBackoff = func() Backoff {
			return QuickFirst(Exponential(DefaultBackoffBase, DefaultBackoffCap, DefaultRetries-1, rng))
		}
	}
	if cfg.NewCompensationBackoff == nil {
		rng := cfg.Rand
		cfg.NewCompensationBackoff = func() Backoff {
			return Exponential(DefaultBackoffBase, DefaultBackoffCap, -1, rng)
		}
	}
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout)
	cfg.OperationTimeout = cmp.Or(cfg.OperationTimeout, DefaultOperationTimeout)
	cfg.CompensationTimeout = cmp.Or(cfg.CompensationTimeout, DefaultCompensationTimeout)
	cfg.RequestLifetime = cmp.Or(cfg.RequestLifetime, DefaultRequestLifetime)
	return &Coordinator{cfg: cfg, byName: byName, answers: answers}, nil
}

// answered returns the count of node's answers (see Coordinator.answers);
// nil for a node not among the coordinator's, which retry takes as no
// count: its backoff alone says when.
func (c *Coordinator) answered(node Node) *atomic.Uint64 { return c.answers[node.Name()] }

// Nodes returns the coordinator's nodes.
func (c *Coordinator) Nodes() []Node { return c.cfg.Nodes }

// Outcome is how an operation ended.
type Outcome string

// Outcomes.
const (
	// Done: every node now holds the record (create) or none does (delete).
	Done Outcome = "done"
	// Unchanged: the nodes were already in that state; nothing was written.
	Unchanged Outcome = "unchanged"
	// RolledBack: the operation failed and every node is as it was before.
	RolledBack Outcome = "rolled_back"
	// Pending: the operation failed and could not yet be undone everywhere;
	// the journal keeps it for Recover, which rolls it back. Nodes may
	// disagree on this id. One exception: a Pending whose error is
	// ErrIntentUnsure touched no node, but its intent may yet be recorded
	// unmarked in a shared journal, and Recover may then finish it, as it
	// does an operation whose process died.
	Pending Outcome = "pending"
)

// ErrIntentUnsure is in the error of an operation reported Pending because
// the journal could not say whether it recorded the intent (a Begin that
// timed out, and a Finish to withdraw it that failed too).
var ErrIntentUnsure = errors.New("the journal may still record this operation's intent: recover settles it, finishing or rolling it back")

// NodeState is what one node holds after an operation, as far as the
// coordinator knows.
type NodeState string

// Node states.
const (
	StateCreated  NodeState = "created"  // this operation's record is there
	StateExisted  NodeState = "existed"  // a record was there already and stays
	StateDeleted  NodeState = "deleted"  // the record is gone
	StateAbsent   NodeState = "absent"   // there was no record and is none
	StateRestored NodeState = "restored" // compensation put the node back as it was
	StateUnknown  NodeState = "unknown"  // the node could not be read, or compensation could not confirm
)

// NodeResult is one node's part in an operation.
type NodeResult struct {
	Node  string    `json:"node"`
	State NodeState `json:"state"`
	Err   error     `json:"-"` // the last failure seen on this node, if any
}

// Result is the outcome of one operation.
type Result struct {
	Op       Op           `json:"op"`
	ID       GroupID      `json:"id"`
	Token    Token        `json:"token,omitempty"`
	Outcome  Outcome      `json:"outcome"`
	Nodes    []NodeResult `json:"nodes,omitempty"`
	Requests int          `json:"requests"` // requests sent to nodes
	Retries  int          `json:"retries"`  // requests that repeated a failed one
	Err      error        `json:"-"`        // why it was rolled back or is pending
}

// opRun is the shared state of one running operation.
type opRun struct {
	c        *Coordinator
	id       GroupID
	token    Token
	requests atomic.Int64
	retries  atomic.Int64
	intent   *Intent // the intent begun in the journal, if any
	finished bool    // the journal finished intent
	// fence is what r's requests carry as their fence (see WithFence):
	// the token of the operation holding the id's lock. Empty means
	// token: an operation is its own fence; Recover settles an old
	// operation's intent under a fence of its own.
	fence Token
}

// fenceToken returns the fence r's requests carry.
func (r *opRun) fenceToken() Token { return cmp.Or(r.fence, r.token) }

// start sets up an operation on id with a fresh token.
func (c *Coordinator) start(id GroupID) *opRun {
	return &opRun{c: c, id: id, token: c.cfg.Tokens.Next()}
}

func (r *opRun) result(op Op, out Outcome, parts []*part, err error) (Result, error) {
	res := Result{Op: op, ID: r.id, Token: r.token, Outcome: out, Err: err,
		Requests: int(r.requests.Load()), Retries: int(r.retries.Load())}
	if len(parts) > 0 {
		res.Nodes = make([]NodeResult, 0, len(parts))
	}
	for _, p := range parts {
		res.Nodes = append(res.Nodes, NodeResult{Node: p.Name(), State: p.report(op), Err: p.err})
	}
	if out == Done || out == Unchanged {
		return res, nil
	}
	return res, err
}

// call sends one request to a node under the request timeout, if the
// Breaker admits it, and classifies a failure caused by a deadline or
// cancellation as ETransient: the request may have been applied. Once ctx
// has ended it sends nothing and returns EUnavailable: a request never sent
// was certainly not applied, so it does not make the node one to
// compensate. A request the breaker refuses is not sent either
// (EUnavailable, ErrBreakerOpen). retry says whether the request repeats a
// failed one.
func (r *opRun) call(ctx context.Context, node Node, retry bool, f func(ctx context.Context) error) error {
	return r.callUnder(ctx, nil, node, retry, f)
}

// callUnder is call with the request's context rctx, if not nil: a
// context derived from ctx, with its values, and ending within
// RequestTimeout, which requests sent together share (see forward). One
// that leaves less than nine tenths of RequestTimeout is not used: a
// request gets (almost) the whole timeout however late it goes.
func (r *opRun) callUnder(ctx, rctx context.Context, node Node, retry bool, f func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return &Error{Code: EUnavailable, Message: fmt.Sprintf("%s: request not sent: %v", node.Name(), err), Err: err}
	}
	if err := admit(r.c.cfg.Breaker, node.Name(), r.c.cfg.Clock.Now()); err != nil {
		return err
	}
	r.requests.Add(1)
	if retry {
		r.retries.Add(1)
	}
	if dl, ok := deadlineOf(rctx); !ok || time.Until(dl) < r.c.cfg.RequestTimeout*9/10 {
		fctx := ctx
		if fence := r.fenceToken(); FenceOf(ctx) != fence {
			// forward and undo carry it already: one context for
			// every request of the phase, not one per request.
			fctx = WithFence(ctx, fence)
		}
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(fctx, r.c.cfg.RequestTimeout)
		defer cancel()
	}
	err := f(rctx)
	if ctx.Err() == nil {
		// Once ctx has ended a failure is the caller's, not the node's.
		observe(r.c.cfg.Breaker, node.Name(), r.c.cfg.Clock.Now(), err)
	}
	if err == nil || isDefinite(err) && ErrorCode(err) != EUnavailable {
		// The node took the request and said what became of it.
		if n := r.c.answered(node); n != nil {
			n.Add(1)
		}
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Code == EStale {
		// A later holder fenced the id on this node: no later
		// operation here may take a token below its fence.
		r.c.cfg.Tokens.Observe(e.Fence)
	}
	if err == nil || rctx.Err() == nil || isDefinite(err) {
		// A definite answer stands even if it came as the deadline passed.
		return err
	}
	if ctx.Err() != nil {
		return &Error{Code: ETransient, Message: fmt.Sprintf("%s: request abandoned: %v", node.Name(), ctx.Err()), Err: ctx.Err()}
	}
	return &Error{Code: ETransient, Message: fmt.Sprintf("%s: no answer within %v", node.Name(), r.c.cfg.RequestTimeout), Err: err}
}

// deadlineOf returns ctx's deadline; ok is false if ctx is nil or has none.
func deadlineOf(ctx context.Context) (deadline time.Time, ok bool) {
	if ctx == nil {
		return time.Time{}, false
	}
	return ctx.Deadline()
}

// isDefinite reports whether err is an answer that says what happened: the
// record exists, is not there, was fenced or refused, or the request never
// arrived.
func isDefinite(err error) bool {
	switch ErrorCode(err) {
	case EExists, ENotFound, EFenced, EStale, ERejected, EUnavailable, EUnsupported, EInvalid:
		return true
	}
	return false
}

// Create creates id on every node as one operation. It returns a nil error
// for Done and Unchanged; otherwise the error says why the result is
// RolledBack or Pending. A cancelled ctx stops the operation; whatever it
// touched is then left Pending for Recover, and nothing more is sent. If an
// earlier operation on id was left pending, Create first rolls it back (its
// requests count in the result); if it cannot, Create reports Pending
// without starting.
func (c *Coordinator) Create(ctx context.Context, id GroupID) (Result, error) {
	r := c.start(id)
	parts := r.newParts(stUntouched)
	ctx, unlock, res, err := c.prepare(ctx, OpCreate, r, parts)
	if unlock == nil {
		return res, err
	}
	defer unlock()
	fctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	return c.create(ctx, fctx, r, parts)
}

// create writes the record on the parts that are untouched (every node, or
// in a repair the nodes that lack the id; the others are foreign), and
// commits if every node then holds it, or undoes it where it may have
// written. fctx bounds the forward part. Call it with the id's lock held.
func (c *Coordinator) create(ctx, fctx context.Context, r *opRun, parts []*part) (res Result, err error) {
	// Only untouched parts are written to, so only they may need undoing:
	// the nodes that held the id keep their records whatever happens.
	var targets []*part
	for _, p := range parts {
		if p.st == stUntouched {
			targets = append(targets, p)
		}
	}
	intent := Intent{Op: OpCreate, ID: r.id, Token: r.token, Nodes: names(targets)}
	err = c.begin(ctx, r, intent)
	defer c.end(ctx, r, parts, &res, &err)
	if err != nil {
		return r.result(OpCreate, beginFailed(err), parts, err)
	}
	if err := r.forward(fctx, OpCreate, parts, stUntouched); err != nil {
		return r.compensate(ctx, OpCreate, parts, err)
	}
	out := Unchanged
	for _, p := range targets {
		if p.st != stForeign {
			out = Done
		}
	}
	return r.commit(ctx, OpCreate, out, parts)
}

// commit finishes r's intent and reports out. An operation committed on
// every node whose finish failed is pending: Recover will undo it, so it
// must not be reported done. (Unchanged wrote nothing: its leftover intent
// undoes nothing.)
func (r *opRun) commit(ctx context.Context, op Op, out Outcome, parts []*part) (Result, error) {
	if ferr := r.finish(ctx); ferr != nil && out == Done {
		return r.result(op, Pending, parts, ferr)
	}
	return r.result(op, out, parts, nil)
}

// Delete deletes id from every node as one operation. If every node
// removes without a read (Removes), it sends each one Remove, whose answer
// says what it removed, so that a failure can restore it; otherwise it
// reads each node's record first. Errors, cancellation and earlier pending
// operations are as for Create.
func (c *Coordinator) Delete(ctx context.Context, id GroupID) (Result, error) {
	r := c.start(id)
	blind := c.removes()
	parts := r.newParts(map[bool]state{false: stProbing, true: stRemoving}[blind])
	ctx, unlock, res, err := c.prepare(ctx, OpDelete, r, parts)
	if unlock == nil {
		return res, err
	}
	defer unlock()
	fctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	if blind {
		res, err := c.remove(ctx, fctx, r, parts)
		if res.Outcome != RolledBack || ErrorCode(err) != EExists {
			return res, err
		}
		// A node holds a record not older than the token (made by a
		// clock ahead of ours): undone, and the tokens are now above
		// it, so once more with a fresh one.
		again := c.start(id)
		again.requests.Store(r.requests.Load())
		again.retries.Store(r.retries.Load())
		return c.remove(ctx, fctx, again, again.newParts(stRemoving))
	}
	// Read the pre-image; nothing is touched yet, so a failure here is a
	// clean rollback.
	if err := r.forward(fctx, OpDelete, parts, stProbing); err != nil {
		return r.result(OpDelete, RolledBack, parts, err)
	}
	return c.delete(ctx, fctx, r, parts)
}

// delete deletes the record from the parts that probing found holding it
// (untouched), conditionally on the token each held, and commits, or
// undoes what it may have deleted. fctx bounds the forward part. Call it
// with the id's lock held.
func (c *Coordinator) delete(ctx, fctx context.Context, r *opRun, parts []*part) (res Result, err error) {
	intent := Intent{Op: OpDelete, ID: r.id, Token: r.token, Nodes: names(c.cfg.Nodes), PreImage: map[string]Token{}}
	for _, p := range parts {
		if p.st == stUntouched {
			intent.PreImage[p.Name()] = p.pre
		}
	}
	if len(intent.PreImage) == 0 {
		return r.result(OpDelete, Unchanged, parts, nil)
	}
	err = c.begin(ctx, r, intent)
	defer c.end(ctx, r, parts, &res, &err)
	if err != nil {
		return r.result(OpDelete, beginFailed(err), parts, err)
	}
	if err := r.forward(fctx, OpDelete, parts, stUntouched); err != nil {
		return r.compensate(ctx, OpDelete, parts, err)
	}
	return r.commit(ctx, OpDelete, Done, parts)
}

// removes reports whether every node removes without a read (Removes).
func (c *Coordinator) removes() bool {
	for _, n := range c.cfg.Nodes {
		if !Removes(n) {
			return false
		}
	}
	return true
}

// remove deletes the record from every part (in state removing) with
// Remove, bounded by the operation's own token, and commits, or undoes what
// the answers say it removed. Its intent is Blind: begun before anything is
// known, and, if the delete ends pending, updated with what it learned. fctx
// bounds the forward part. Call it with the id's lock held.
func (c *Coordinator) remove(ctx, fctx context.Context, r *opRun, parts []*part) (res Result, err error) {
	err = c.begin(ctx, r, Intent{Op: OpDelete, ID: r.id, Token: r.token, Nodes: names(c.cfg.Nodes), Blind: true})
	defer c.end(ctx, r, parts, &res, &err)
	if err != nil {
		return r.result(OpDelete, beginFailed(err), parts, err)
	}
	if err := r.forward(fctx, OpDelete, parts, stRemoving); err != nil {
		if merr := c.markRollBack(ctx, r.intent, parts); merr != nil {
			return r.result(OpDelete, Pending, parts, fmt.Errorf("%w; then could not undo it: %w", err, merr))
		}
		return r.compensate(ctx, OpDelete, parts, err)
	}
	out := Unchanged
	for _, p := range parts {
		if p.st != stAbsent {
			out = Done
		}
	}
	return r.commit(ctx, OpDelete, out, parts)
}

// end ends r, an operation that began (or tried to begin) an intent,
// once it has its result: what a Blind delete learned is written into its
// intent (see learn), and the intent of a pending report is kept in the
// ledger and marked for roll back in the journal too (see ledger.end). A
// journal write that fails here is added to the result's error: its
// intent may be left unmarked, and a Recover that finds the operation
// complete then finishes it instead of rolling it back (ErrIntentUnsure).
// Defer it with the operation's named results.
func (c *Coordinator) end(ctx context.Context, r *opRun, parts []*part, res *Result, err *error) {
	var jerr error
	if r.intent != nil && !r.finished && r.intent.Blind {
		jerr = r.learned(ctx, parts)
	}
	if merr := c.book.end(ctx, r); merr != nil {
		jerr = errors.Join(jerr, merr)
	}
	if jerr == nil || res.Outcome != Pending {
		// Unchanged wrote nothing: its leftover intent undoes nothing.
		return
	}
	*err = errors.Join(*err, jerr)
	res.Err = *err
}

// learned writes into r's Blind intent what the nodes' answers taught
// (see learn). An intent marked for roll back before its undo is written
// again, as ledger.end writes only unmarked ones; if that fails, the
// mark's copy stands, which Recover completes from the nodes' records of
// their removals, and the error says so.
func (r *opRun) learned(ctx context.Context, parts []*part) error {
	learn(r.intent, parts)
	j := r.c.cfg.Journal
	if j == nil || !r.intent.RollBack {
		return nil
	}
	if err := j.Update(context.WithoutCancel(ctx), *r.intent); err != nil {
		return fmt.Errorf("journal: cannot record what the delete of %q removed (intent %s): %w; recover asks the nodes again", r.id, r.intent.Token, err)
	}
	return nil
}

// markRollBack marks the Blind intent in for roll back, with what parts
// learned, durably, before its undo re-creates a record: Recover must then
// roll it back, never forward. A copy of Remove answers from the node's
// record of what it removed, so rolling forward over a re-created record
// would take it for removed.
func (c *Coordinator) markRollBack(ctx context.Context, in *Intent, parts []*part) error {
	if in == nil {
		return nil
	}
	learn(in, parts)
	in.RollBack = true
	if c.cfg.Journal == nil {
		return nil
	}
	if err := c.cfg.Journal.Update(context.WithoutCancel(ctx), *in); err != nil {
		// Left unmarked: a Recover rolls it forward, as a crashed
		// process's, which nothing has undone yet.
		return fmt.Errorf("journal: cannot mark intent %s for roll back: %w (%w)", in.Token, err, ErrIntentUnsure)
	}
	return nil
}

// learn writes into the Blind intent in what the nodes' answers taught:
// PreImage, the tokens removed; Nodes, the nodes where a record may have
// been removed (not those that certainly removed nothing). Recover then
// rolls back the nodes it names.
func learn(in *Intent, parts []*part) {
	in.Nodes, in.PreImage = nil, map[string]Token{}
	for _, p := range parts {
		switch {
		case p.had:
			in.PreImage[p.Name()] = p.pre
		case p.st == stRemoving || p.st == stAbsent || p.st == stForeign:
			continue
		}
		in.Nodes = append(in.Nodes, p.Name())
	}
}

// compensate undoes a failed operation on every part that may hold its
// write, and finishes its intent if that succeeds.
func (r *opRun) compensate(ctx context.Context, op Op, parts []*part, cause error) (Result, error) {
	if err := r.undo(ctx, op, parts); err != nil {
		return r.result(op, Pending, parts, fmt.Errorf("%w; then could not undo it: %w", cause, err))
	}
	if err := r.finish(ctx); err != nil {
		return r.result(op, Pending, parts, err)
	}
	return r.result(op, RolledBack, parts, cause)
}

// prepare checks r.id, takes its lock and rolls back what earlier operations
// on the id left pending (see ledger). The operation then runs under held,
// which ends if the lock is lost (see Locker). If prepare cannot, unlock is
// nil and res and err are what to report for op: rolled back if nothing was
// touched, pending if the id still has an operation that could not be
// undone.
func (c *Coordinator) prepare(ctx context.Context, op Op, r *opRun, parts []*part) (held context.Context, unlock func(), res Result, err error) {
	fail := func(out Outcome, err error) (context.Context, func(), Result, error) {
		res, err := r.result(op, out, parts, err)
		return ctx, nil, res, err
	}
	if err := r.id.Validate(); err != nil {
		return fail(RolledBack, err)
	}
	if err := c.book.load(ctx, c.cfg.Journal, false, c.cfg.Tokens); err != nil {
		return fail(RolledBack, err)
	}
	held, unlock, err = c.lockID(ctx, r.id)
	if err != nil {
		return fail(RolledBack, err)
	}
	// The token is the operation's fence (see WithFence), so it is drawn
	// now that the lock is held: one drawn before could be below the
	// fence of whoever held the lock meanwhile (a Recover's), or below a
	// token another coordinator began on the id, and the nodes would
	// refuse it.
	r.retoken(parts)
	if err := c.settle(held, r); err != nil {
		unlock()
		for _, p := range parts {
			p.advance(evBlocked, op)
		}
		return fail(Pending, err)
	}
	return held, unlock, Result{}, nil
}

// begin records in as r's intent, in the ledger and then in the journal.
// The tokens of in's pre-image, read from the nodes, are observed so that
// no later operation takes one; one equal to r's own token would make its
// undo indistinguishable from the record it restores, so it is refused
// (nothing is written yet). If the journal fails, nothing of in is recorded
// (see Journal.Begin), and r has no intent to finish: finishing its token
// could remove another operation's intent recorded under it.
func (c *Coordinator) begin(ctx context.Context, r *opRun, in Intent) error {
	for _, t := range in.PreImage {
		c.cfg.Tokens.Observe(t)
		if t == in.Token {
			return Errorf(EInvalid, "token %s of this %s of %q is the token a node holds it under: not started, try again", in.Token, in.Op, in.ID)
		}
	}
	r.intent = &in
	c.book.begin(in.Token)
	if c.cfg.Journal == nil {
		return nil
	}
	err := c.cfg.Journal.Begin(ctx, in)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("journal: cannot record intent for %q: %w", in.ID, err)
	if ErrorCode(err) == ETransient {
		// It may yet be recorded, and a recover that found it would act
		// on an operation reported rolled back (roll a blind delete
		// forward). Withdraw it; if that fails too, r.intent stays and
		// the operation ends pending, marked for roll back (book.end).
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RequestTimeout)
		defer cancel()
		if ferr := c.cfg.Journal.Finish(wctx, in.Token); ferr != nil {
			// Nothing was sent: settling it must touch no node, only
			// withdraw it (an undo of a blind delete would remove and
			// re-create the record, with no durable intent to finish it
			// after a crash).
			r.intent.Nodes, r.intent.PreImage = nil, nil
			return &beginUnsure{fmt.Errorf("%w, and withdrawing it failed: %w (%w)", err, ferr, ErrIntentUnsure)}
		}
	}
	r.intent = nil
	return err
}

// beginUnsure is a Begin that failed but may have recorded its intent: the
// operation, which touched no node, is reported pending, not rolled back.
type beginUnsure struct{ err error }

func (e *beginUnsure) Error() string { return e.err.Error() }
func (e *beginUnsure) Unwrap() error { return e.err }

// beginFailed is the outcome of an operation whose Begin failed with err.
func beginFailed(err error) Outcome {
	if _, ok := errors.AsType[*beginUnsure](err); ok {
		return Pending
	}
	return RolledBack
}

// finish finishes r's intent in the journal.
func (r *opRun) finish(ctx context.Context) error {
	err := r.c.finish(ctx, r.token)
	r.finished = err == nil
	return err
}

// finish finishes the intent with token in the journal. It does not wait
// for the finish to be durable (see Journal): a finish lost in a crash
// brings back an intent that Recover finds complete, or undone already.
func (c *Coordinator) finish(ctx context.Context, token Token) error {
	if c.cfg.Journal == nil {
		return nil
	}
	// Finish even if the caller gave up: the nodes are settled.
	if err := c.cfg.Journal.Finish(context.WithoutCancel(ctx), token); err != nil {
		return fmt.Errorf("journal: cannot finish intent %s: %w", token, err)
	}
	return nil
}

// names returns the names of nodes, in order.
func names[N interface{ Name() string }](nodes []N) []string {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = n.Name()
	}
	return s
}
