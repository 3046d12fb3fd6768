package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config, as DESIGN.md gives them: the original's 10 retries,
// exponential backoff from 10 ms capped at 500 ms, 2 s per request and 30 s
// per operation.
const (
	DefaultRetries             = 10
	DefaultBackoffBase         = 10 * time.Millisecond
	DefaultBackoffCap          = 500 * time.Millisecond
	DefaultRequestTimeout      = 2 * time.Second
	DefaultOperationTimeout    = 30 * time.Second
	DefaultCompensationTimeout = 30 * time.Second
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
	// operation. Default: Exponential(DefaultBackoffBase,
	// DefaultBackoffCap, DefaultRetries, Rand).
	NewBackoff func() Backoff
	// NewCompensationBackoff is the same for compensation, which retries
	// until CompensationTimeout. Default: Exponential without a limit.
	NewCompensationBackoff func() Backoff
	// RequestTimeout bounds every request to a node.
	RequestTimeout time.Duration
	// OperationTimeout bounds the forward part of an operation.
	OperationTimeout time.Duration
	// CompensationTimeout bounds compensation; what is not undone by then is
	// reported pending and left to Recover.
	CompensationTimeout time.Duration
	// Clock is the time source for backoff and reports. Default SystemClock.
	Clock Clock
	// Rand draws backoff jitter; it must be safe for concurrent use (see
	// NewLockedSource). Default: seeded from the clock.
	Rand *rand.Rand
	// Tokens makes operation tokens. Default: NewTokenSource(Clock).
	Tokens *TokenSource
}

// Coordinator runs operations across a fixed set of nodes. It is safe for
// concurrent use; operations on the same id are serialized.
type Coordinator struct {
	cfg   Config
	locks keyedMutex
	book  ledger
}

// New returns a Coordinator for cfg, filling in defaults. It fails with
// EInvalid if there are no nodes or two share a name.
func New(cfg Config) (*Coordinator, error) {
	if len(cfg.Nodes) == 0 {
		return nil, Errorf(EInvalid, "no nodes: a coordinator needs at least one node")
	}
	seen := make(map[string]bool, len(cfg.Nodes))
	for _, n := range cfg.Nodes {
		if seen[n.Name()] {
			return nil, Errorf(EInvalid, "node %q appears twice: node names must be unique", n.Name())
		}
		seen[n.Name()] = true
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
	if cfg.NewBackoff == nil {
		rng := cfg.Rand
		cfg.NewBackoff = func() Backoff {
			return Exponential(DefaultBackoffBase, DefaultBackoffCap, DefaultRetries, rng)
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
	return &Coordinator{cfg: cfg}, nil
}

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
	// the journal keeps it for Recover. Nodes may disagree on this id.
	Pending Outcome = "pending"
)

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
	ID       GroupID      `json:"groupId"`
	Token    Token        `json:"token,omitempty"`
	Outcome  Outcome      `json:"outcome"`
	Nodes    []NodeResult `json:"nodes,omitempty"`
	Requests int          `json:"requests"` // requests sent to nodes
	Retries  int          `json:"retries"`  // requests that repeated a failed one
	Err      error        `json:"-"`        // why it was rolled back or is pending
}

// opRun is the shared state of one running operation.
type opRun struct {
	c     *Coordinator
	id    GroupID
	token Token
	// write is the token a create writes when it is not token: a repair
	// re-creates the majority's record. The journal keys intents by token,
	// so token stays the operation's own even then.
	write    Token
	requests atomic.Int64
	retries  atomic.Int64
	intent   *Intent // the intent begun in the journal, if any
	finished bool    // the journal finished intent
}

// nodeRun is one node's state within an operation.
type nodeRun struct {
	node    Node
	held    bool  // holds the id after the forward phase (create) or before it (delete)
	ours    bool  // holds this operation's write for certain
	touched bool  // may hold this operation's write: compensation must visit it
	pre     Token // delete: the token the node held before
	state   NodeState
	err     error
}

// start sets up an operation on id with a fresh token.
func (c *Coordinator) start(id GroupID) (*opRun, []*nodeRun) {
	r := &opRun{c: c, id: id, token: c.cfg.Tokens.Next()}
	nodes := make([]*nodeRun, len(c.cfg.Nodes))
	for i, n := range c.cfg.Nodes {
		nodes[i] = &nodeRun{node: n}
	}
	return r, nodes
}

func (r *opRun) result(op Op, out Outcome, nodes []*nodeRun, err error) (Result, error) {
	res := Result{Op: op, ID: r.id, Token: r.token, Outcome: out, Err: err,
		Requests: int(r.requests.Load()), Retries: int(r.retries.Load())}
	for _, n := range nodes {
		res.Nodes = append(res.Nodes, NodeResult{Node: n.node.Name(), State: n.state, Err: n.err})
	}
	if out == Done || out == Unchanged {
		return res, nil
	}
	return res, err
}

// call sends one request to a node under the request timeout and classifies
// a failure caused by a deadline or cancellation as ETransient: the request
// may have been applied. Once ctx has ended it sends nothing and returns
// EUnavailable: a request never sent was certainly not applied, so it does
// not make the node one to compensate. retry says whether the request
// repeats a failed one.
func (r *opRun) call(ctx context.Context, node Node, retry bool, f func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return &Error{Code: EUnavailable, Message: fmt.Sprintf("%s: request not sent: %v", node.Name(), err), Err: err}
	}
	r.requests.Add(1)
	if retry {
		r.retries.Add(1)
	}
	rctx, cancel := context.WithTimeout(ctx, r.c.cfg.RequestTimeout)
	defer cancel()
	err := f(rctx)
	if err == nil || rctx.Err() == nil || isDefinite(err) {
		// A definite answer stands even if it came as the deadline passed.
		return err
	}
	if ctx.Err() != nil {
		return &Error{Code: ETransient, Message: fmt.Sprintf("%s: request abandoned: %v", node.Name(), ctx.Err()), Err: ctx.Err()}
	}
	return &Error{Code: ETransient, Message: fmt.Sprintf("%s: no answer within %v", node.Name(), r.c.cfg.RequestTimeout), Err: err}
}

// isDefinite reports whether err is an answer that says what happened: the
// record exists, is not there, was refused, or the request never arrived.
func isDefinite(err error) bool {
	switch ErrorCode(err) {
	case EExists, ENotFound, EFenced, ERejected, EUnavailable, EUnsupported, EInvalid:
		return true
	}
	return false
}

// retry calls f until it returns an error that is not retryable, bo says
// stop, or ctx ends. onRetryable sees every retryable failure, so writes can
// note that they may have been applied.
func (r *opRun) retry(ctx context.Context, node Node, bo Backoff, f func(ctx context.Context) error, onRetryable func(error)) error {
	for attempt := 0; ; attempt++ {
		err := r.call(ctx, node, attempt > 0, f)
		if err == nil || !IsRetryable(err) {
			return err
		}
		if onRetryable != nil {
			onRetryable(err)
		}
		if ctx.Err() != nil {
			return err
		}
		d, stop := bo.Next()
		if stop {
			return fmt.Errorf("%w (retries exhausted)", err)
		}
		d = max(d, retryAfter(err))
		if r.c.cfg.Clock.Sleep(ctx, d) != nil {
			return err
		}
	}
}

// each runs f for every node in parallel and returns the first error any
// returned; the first error cancels the context the others run under.
func each(ctx context.Context, nodes []*nodeRun, f func(ctx context.Context, n *nodeRun) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, n := range nodes {
		wg.Go(func() {
			if err := f(ctx, n); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		})
	}
	wg.Wait()
	return first
}

// Create creates id on every node as one operation. It returns a nil error
// for Done and Unchanged; otherwise the error says why the result is
// RolledBack or Pending. A cancelled ctx stops the operation; whatever it
// touched is then left Pending for Recover, and nothing more is sent. If an
// earlier operation on id was left pending, Create first rolls it back (its
// requests count in the result); if it cannot, Create reports Pending
// without starting.
func (c *Coordinator) Create(ctx context.Context, id GroupID) (Result, error) {
	r, nodes := c.start(id)
	unlock, res, err := c.prepare(ctx, OpCreate, r, nodes)
	if unlock == nil {
		return res, err
	}
	defer unlock()
	fctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	return c.create(ctx, fctx, r, nodes, nodes)
}

// create writes the record on targets, which are nodes or, in a repair, the
// nodes that lack the id, and commits if every target then holds it, or
// compensates on the targets it may have written to. fctx bounds the forward
// part. Call it with the id's lock held.
func (c *Coordinator) create(ctx, fctx context.Context, r *opRun, nodes, targets []*nodeRun) (Result, error) {
	// Only targets are written to, so only they may need compensation:
	// the nodes that held the id keep their records whatever happens.
	intent := Intent{Op: OpCreate, ID: r.id, Token: r.token, Written: r.write, Nodes: names(targets)}
	err := c.begin(ctx, r, intent)
	defer c.book.end(r)
	if err != nil {
		return r.result(OpCreate, RolledBack, nodes, err)
	}
	err = each(fctx, targets, func(ctx context.Context, n *nodeRun) error {
		n.err = r.createOn(ctx, n)
		return n.err
	})
	if err == nil {
		out := Unchanged
		for _, n := range nodes {
			n.state = StateExisted
			if n.ours || n.touched {
				n.state, out = StateCreated, Done
			}
		}
		if out == Unchanged {
			// Nothing was written; no intent to keep.
			return r.result(OpCreate, out, nodes, r.finish(ctx))
		}
		if ferr := r.finish(ctx); ferr != nil {
			// Committed on every node but not recorded: Recover will undo
			// it, so it must not be reported done.
			return r.result(OpCreate, Pending, nodes, ferr)
		}
		return r.result(OpCreate, Done, nodes, nil)
	}
	for _, n := range nodes {
		n.state = StateAbsent
		if n.held && !n.touched {
			n.state = StateExisted
		}
	}
	return r.compensate(ctx, OpCreate, nodes, err)
}

// createOn creates the record on one node, retrying transient failures.
func (r *opRun) createOn(ctx context.Context, n *nodeRun) error {
	token := r.writes()
	err := r.retry(ctx, n.node, r.c.cfg.NewBackoff(), func(ctx context.Context) error {
		return n.node.Create(ctx, r.id, token)
	}, func(err error) {
		n.touched = n.touched || IsAmbiguous(err)
	})
	switch {
	case err == nil:
		n.held, n.ours, n.touched = true, true, true
		return nil
	case errors.Is(err, ErrExists) && !n.touched:
		// Nothing of ours can be there: the record is someone else's.
		n.held = true
		return nil
	case errors.Is(err, ErrExists):
		// An earlier attempt may have landed and the node does not treat
		// the retry as a replay: read the token back to know.
		rec, gerr := r.get(ctx, n.node)
		if gerr != nil {
			return gerr
		}
		n.held = true
		n.ours = rec.Token == token
		// A node that returns no token cannot say; a conditional delete
		// by the token written is still safe, so keep it touched.
		n.touched = n.ours || rec.Token == ""
		return nil
	}
	n.touched = n.touched || IsAmbiguous(err)
	return err
}

// get reads one node's record with retries.
func (r *opRun) get(ctx context.Context, node Node) (Record, error) {
	var rec Record
	err := r.retry(ctx, node, r.c.cfg.NewBackoff(), func(ctx context.Context) error {
		var err error
		rec, err = node.Get(ctx, r.id)
		return err
	}, nil)
	return rec, err
}

// Delete deletes id from every node as one operation. It reads each node's
// record first so that a failure can restore exactly what was there. Errors,
// cancellation and earlier pending operations are as for Create.
func (c *Coordinator) Delete(ctx context.Context, id GroupID) (Result, error) {
	r, nodes := c.start(id)
	unlock, res, err := c.prepare(ctx, OpDelete, r, nodes)
	if unlock == nil {
		return res, err
	}
	defer unlock()
	fctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	// Read the pre-image; nothing is touched yet, so a failure here is a
	// clean rollback.
	if err := r.read(fctx, nodes); err != nil {
		return r.result(OpDelete, RolledBack, nodes, err)
	}
	return c.delete(ctx, fctx, r, nodes)
}

// read reads every node's record, with retries: whether it holds the id
// (held) and with which token (pre). It sets each node's state.
func (r *opRun) read(ctx context.Context, nodes []*nodeRun) error {
	err := each(ctx, nodes, func(ctx context.Context, n *nodeRun) error {
		rec, err := r.get(ctx, n.node)
		switch {
		case err == nil:
			n.held, n.pre = true, rec.Token
		case errors.Is(err, ErrNotFound):
			err = nil
		}
		n.err = err
		return err
	})
	for _, n := range nodes {
		switch {
		case n.held:
			n.state = StateExisted
		case n.err != nil:
			n.state = StateUnknown // not read: it may hold the record
		default:
			n.state = StateAbsent
		}
	}
	return err
}

// delete deletes the record from the nodes that read found holding it,
// conditionally on the token each held, and commits, or compensates by
// restoring what it deleted. fctx bounds the forward part. Call it with the
// id's lock held.
func (c *Coordinator) delete(ctx, fctx context.Context, r *opRun, nodes []*nodeRun) (Result, error) {
	intent := Intent{Op: OpDelete, ID: r.id, Token: r.token, Nodes: names(c.cfg.Nodes), PreImage: map[string]Token{}}
	for _, n := range nodes {
		if n.held {
			intent.PreImage[n.node.Name()] = n.restoreToken(r.token)
		}
	}
	if len(intent.PreImage) == 0 {
		return r.result(OpDelete, Unchanged, nodes, nil)
	}
	err := c.begin(ctx, r, intent)
	defer c.book.end(r)
	if err != nil {
		return r.result(OpDelete, RolledBack, nodes, err)
	}
	err = each(fctx, nodes, func(ctx context.Context, n *nodeRun) error {
		if !n.held {
			return nil
		}
		n.err = r.deleteOn(ctx, n)
		return n.err
	})
	if err == nil {
		if ferr := r.finish(ctx); ferr != nil {
			return r.result(OpDelete, Pending, nodes, ferr)
		}
		return r.result(OpDelete, Done, nodes, nil)
	}
	return r.compensate(ctx, OpDelete, nodes, err)
}

// restoreToken is the token to re-create n's record with: the one it held,
// or the operation's own if the node did not say (the original server).
func (n *nodeRun) restoreToken(op Token) Token {
	if n.pre == "" {
		return op
	}
	return n.pre
}

// deleteOn deletes the record from one node, conditionally on the token it
// held, retrying transient failures.
func (r *opRun) deleteOn(ctx context.Context, n *nodeRun) error {
	err := r.retry(ctx, n.node, r.c.cfg.NewBackoff(), func(ctx context.Context) error {
		return n.node.Delete(ctx, r.id, n.pre)
	}, func(err error) {
		n.touched = n.touched || IsAmbiguous(err)
	})
	if err == nil || errors.Is(err, ErrNotFound) {
		n.touched, n.ours, n.state = true, true, StateDeleted
		return nil
	}
	n.touched = n.touched || IsAmbiguous(err)
	return err
}

// compensate undoes a failed operation on every node it may have touched,
// retrying until each confirms or CompensationTimeout passes.
func (r *opRun) compensate(ctx context.Context, op Op, nodes []*nodeRun, cause error) (Result, error) {
	in := Intent{Op: op, ID: r.id, Token: r.token, Written: r.write}
	if op == OpDelete {
		in.PreImage = map[string]Token{}
	}
	var visit []*nodeRun
	for _, n := range nodes {
		if n.touched {
			visit = append(visit, n)
			if op == OpDelete {
				in.PreImage[n.node.Name()] = n.restoreToken(r.token)
			}
		}
	}
	if err := r.c.undo(ctx, r, in, visit); err != nil {
		return r.result(op, Pending, nodes, fmt.Errorf("%w; then could not undo it: %w", cause, err))
	}
	if err := r.finish(ctx); err != nil {
		return r.result(op, Pending, nodes, err)
	}
	return r.result(op, RolledBack, nodes, cause)
}

// undo puts each of nodes back as intent says it was before: a create is
// deleted conditionally on its token, a delete re-created with the pre-image
// token. It retries until every node confirms or CompensationTimeout passes,
// and sets each node's state.
func (c *Coordinator) undo(ctx context.Context, r *opRun, in Intent, nodes []*nodeRun) error {
	if len(nodes) == 0 {
		return nil
	}
	if ctx.Err() != nil {
		// The caller asked to stop: leave the rest to Recover.
		for _, n := range nodes {
			n.state = StateUnknown
		}
		return ctx.Err()
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CompensationTimeout)
	defer cancel()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			err := r.retry(cctx, n.node, c.cfg.NewCompensationBackoff(), func(ctx context.Context) error {
				if in.Op == OpCreate {
					return n.node.Delete(ctx, in.ID, in.written())
				}
				return n.node.Create(ctx, in.ID, in.PreImage[n.node.Name()])
			}, nil)
			if in.Op == OpCreate && errors.Is(err, ErrNotFound) || in.Op == OpDelete && errors.Is(err, ErrExists) {
				err = nil
			}
			n.state, n.err = StateRestored, err
			if err != nil {
				n.state = StateUnknown
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", n.node.Name(), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prepare checks r.id, takes its lock and rolls back what earlier operations
// on the id left pending (see ledger). If it cannot, unlock is nil and res and
// err are what to report for op: rolled back if nothing was touched, pending
// if the id still has an operation that could not be undone.
func (c *Coordinator) prepare(ctx context.Context, op Op, r *opRun, nodes []*nodeRun) (unlock func(), res Result, err error) {
	fail := func(out Outcome, err error) (func(), Result, error) {
		res, err := r.result(op, out, nodes, err)
		return nil, res, err
	}
	if err := r.id.Validate(); err != nil {
		return fail(RolledBack, err)
	}
	if err := c.book.load(ctx, c.cfg.Journal, false); err != nil {
		return fail(RolledBack, err)
	}
	unlock, err = c.locks.lock(ctx, r.id)
	if err != nil {
		return fail(RolledBack, err)
	}
	if err := c.settle(ctx, r); err != nil {
		unlock()
		for _, n := range nodes {
			n.state = StateUnknown
		}
		return fail(Pending, err)
	}
	return unlock, Result{}, nil
}

// settle rolls back, newest first, the intents left on r.id, counting its
// requests in r. Call it with the id's lock held.
func (c *Coordinator) settle(ctx context.Context, r *opRun) error {
	for {
		in, ok := c.book.newest(r.id)
		if !ok {
			return nil
		}
		if _, err := c.rollback(ctx, r, in); err != nil {
			return fmt.Errorf("an earlier %s of %q (token %s) is still pending and could not be rolled back: %w", in.Op, in.ID, in.Token, err)
		}
	}
}

// rollback undoes in on the nodes it names, finishes it in the journal and
// drops it from the ledger. It returns the nodes it visited, with their
// states.
func (c *Coordinator) rollback(ctx context.Context, r *opRun, in Intent) ([]*nodeRun, error) {
	byName := make(map[string]Node, len(c.cfg.Nodes))
	for _, n := range c.cfg.Nodes {
		byName[n.Name()] = n
	}
	var nodes []*nodeRun
	for _, name := range in.Nodes {
		if _, held := in.PreImage[name]; in.Op == OpDelete && !held {
			continue
		}
		n, ok := byName[name]
		if !ok {
			return nodes, Errorf(EInvalid,
				"intent %s for %q names node %q, which this target does not have: recover with the target the job ran on", in.Token, in.ID, name)
		}
		nodes = append(nodes, &nodeRun{node: n})
	}
	if err := c.undo(ctx, r, in, nodes); err != nil {
		return nodes, err
	}
	if err := c.finish(ctx, in.Token); err != nil {
		return nodes, err
	}
	c.book.drop(in)
	return nodes, nil
}

// begin records in as r's intent, in the ledger and then in the journal. If
// the journal fails, it tries to finish the intent in case it was written
// anyway; an intent it cannot finish stays in the ledger, to be settled.
func (c *Coordinator) begin(ctx context.Context, r *opRun, in Intent) error {
	r.intent = &in
	c.book.begin(in.Token)
	if c.cfg.Journal == nil {
		return nil
	}
	if err := c.cfg.Journal.Begin(ctx, in); err != nil {
		_ = r.finish(ctx)
		return fmt.Errorf("journal: cannot record intent for %q: %w", in.ID, err)
	}
	return nil
}

// finish finishes r's intent in the journal.
func (r *opRun) finish(ctx context.Context) error {
	err := r.c.finish(ctx, r.token)
	r.finished = err == nil
	return err
}

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

// Name returns the name of n's node.
func (n *nodeRun) Name() string { return n.node.Name() }

// writes returns the token a create writes.
func (r *opRun) writes() Token { return cmp.Or(r.write, r.token) }
