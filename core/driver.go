package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core/pool"
)

// The driver runs the state machine of machine.go for every node of an
// operation: it sends the request each state asks for, under the request
// timeout, classifies the answer into an event, steps, and retries with
// backoff on the injected clock. Create, Delete, Apply (repair) and Recover
// all run their nodes through it: forward (drive, from untouched or
// probing) and undo (undo, from whatever the forward part left).

// part is one node's part in an operation.
type part struct {
	node    Node
	st      state
	write   Token // the token a create writes
	pre     Token // a delete: the token the node held, read by probing or removed by Remove
	restore Token // the token an undone delete re-creates, and Remove's bound: the operation's own
	had     bool  // probing found a record, or Remove removed one: the node held the id before
	err     error // the last failure seen on this node
	// ambiguousAt is when the last write whose outcome is unknown was
	// sent; lapsedTo is up to when such writes are known to have lapsed.
	ambiguousAt, lapsedTo time.Time
}

// Name returns the name of p's node.
func (p *part) Name() string { return p.node.Name() }

// newParts returns a part for every node of c in state st.
func (r *opRun) newParts(st state) []*part {
	ps := make([]*part, len(r.c.cfg.Nodes))
	all := make([]part, len(ps)) // one allocation for all
	for i, n := range r.c.cfg.Nodes {
		all[i] = part{node: n, st: st, write: r.token, restore: r.token}
		ps[i] = &all[i]
	}
	return ps
}

// drive runs p's state machine until it is done or fails, and returns the
// failure. Each request is retried by retry (retry.go) for as long as the
// machine sends it again on a failure; newBackoff gives a fresh backoff
// whenever the request changes. The first request goes under first, if
// not nil (see forward).
func (r *opRun) drive(ctx, first context.Context, op Op, p *part, newBackoff func() Backoff) error {
	req, tok := requestOf(p.st, op)
	for {
		var m move
		var last error
		var lastEv event
		_, err := retry(ctx, r.c.cfg.Clock, r.c.answered(p.node), newBackoff, func(ctx context.Context, attempt int) (struct{}, error) {
			sent := r.c.cfg.Clock.Now()
			ev, rec, err := r.send(ctx, first, p.node, req, p.token(tok), attempt > 0)
			first = nil
			m, lastEv = p.advance(ev, op), ev
			p.keep(m.keep, rec, sent, r.c.cfg.Tokens)
			if err != nil {
				p.err, last = err, err
			}
			if m.act == acSend && (ev == evNotSent || ev == evAmbiguous) {
				// The same request again: the machine sends nothing
				// new on a failure that may change on a retry.
				return struct{}{}, &retryableError{err}
			}
			return struct{}{}, nil
		})
		if g, ok := errors.AsType[*gaveUp](err); ok {
			p.err = g
			m = p.advance(evGiveUp, op)
		}
		switch m.act {
		case acDone:
			return nil
		case acFail:
			return last
		case acInvalid:
			return Errorf(EInternal, "%s: %s: unexpected answer %s (%v): a bug in rops", p.Name(), p.st, lastEv, last)
		}
		req, tok = m.req, m.tok
	}
}

// send sends one request, under rctx if not nil (see callUnder), and
// classifies its answer.
func (r *opRun) send(ctx, rctx context.Context, node Node, req request, tok Token, retry bool) (event, Record, error) {
	var rec Record
	err := r.callUnder(ctx, rctx, node, retry, func(ctx context.Context) error {
		var err error
		switch req {
		case reqCreate:
			err = node.Create(ctx, r.id, tok)
		case reqDelete:
			err = node.Delete(ctx, r.id, tok)
		case reqRemove:
			rm, ok := node.(Remover)
			if !ok {
				return Errorf(EUnsupported, "%s cannot delete without a read", node.Name())
			}
			rec.Token, err = rm.Remove(ctx, r.id, tok)
		default:
			rec, err = node.Get(ctx, r.id)
		}
		return err
	})
	if err == nil && req == reqGet {
		switch {
		case rec.Token == "":
			return evReadNoToken, rec, nil
		case rec.Token == tok:
			return evReadOurs, rec, nil
		}
		return evReadOther, rec, nil
	}
	return classify(err), rec, err
}

// classify turns a node's answer into an event. Only an answer that says
// so, or a request that never left, is certain; anything else may hide an
// applied write.
func classify(err error) event {
	switch ErrorCode(err) {
	case "":
		return evApplied
	case EExists:
		return evExists
	case ENotFound:
		return evNotFound
	case EFenced:
		return evFenced
	case EUnavailable:
		return evNotSent
	case ERejected, EUnsupported, EInvalid, EStale:
		// EStale: this process no longer holds the id, and the node
		// applied nothing; what it may have written before is the
		// later holder's to settle.
		return evRejected
	}
	return evAmbiguous // ETransient, and errors without a code
}

// forward runs the forward part of op on every part in state from, in
// parallel under ctx, and returns the first failure; the first failure
// cancels the others.
func (r *opRun) forward(ctx context.Context, op Op, parts []*part, from state) error {
	ctx, cancel := context.WithCancelCause(WithFence(ctx, r.fenceToken()))
	defer cancel(nil)
	var once sync.Once
	var first error
	todo := make([]*part, 0, len(parts))
	for _, p := range parts {
		if p.st == from {
			todo = append(todo, p)
		}
	}
	// The parts' first requests go out together, now: they share one
	// request timeout, not a context and a timer each.
	rctx, stop := context.WithTimeout(ctx, r.c.cfg.RequestTimeout)
	defer stop()
	inParallel(ctx, todo, func(p *part) {
		if err := r.drive(ctx, rctx, op, p, r.c.cfg.NewBackoff); err != nil {
			once.Do(func() { first = err; cancel(err) })
		}
	})
	return first
}

// undo undoes op on every part that may hold its write, in parallel, each
// retrying until it confirms or CompensationTimeout passes. A node that does
// not fence and met an ambiguous write is read again once that write's
// lifetime (RequestLifetime) is over, and undone again if it landed. It
// returns the failures, joined.
func (r *opRun) undo(ctx context.Context, op Op, parts []*part) error {
	ev := evUndoCreate
	if op == OpDelete {
		ev = evUndoDelete
	}
	ctx = WithFence(ctx, r.fenceToken())
	var mu sync.Mutex
	var errs []error
	todo := make([]*part, 0, len(parts))
	for _, p := range parts {
		if m := p.advance(ev, op); m.act == acSend {
			todo = append(todo, p)
		}
	}
	inParallel(ctx, todo, func(p *part) {
		if err := r.undoPart(ctx, op, p); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
			mu.Unlock()
		}
	})
	return errors.Join(errs...)
}

// inParallel calls f on every part of ps at once and returns when all
// have returned. The last runs on the calling goroutine, the others on the
// goroutines of ctx's crew (see withCrew), if any, else on new ones: a
// crew's goroutine grows its stack once for many operations, where a fresh
// goroutine per node per operation grows one again each time.
func inParallel(ctx context.Context, ps []*part, f func(*part)) {
	if len(ps) == 0 {
		return
	}
	crew, _ := ctx.Value(crewKey{}).(*pool.Crew[partCall])
	var wg sync.WaitGroup
	for _, p := range ps[:len(ps)-1] {
		if crew == nil {
			wg.Go(func() { f(p) })
			continue
		}
		wg.Add(1)
		crew.Give(ctx, partCall{f, p, &wg})
	}
	f(ps[len(ps)-1])
	wg.Wait()
}

// partCall is a call of f on p that a crew makes (see inParallel), done
// when wg is: a value, where a closure would be one more allocation.
type partCall struct {
	f  func(*part)
	p  *part
	wg *sync.WaitGroup
}

// crewKey is the context key of a job's crew (see withCrew).
type crewKey struct{}

// withCrew returns ctx carrying a crew of goroutines that the operations
// run under it share for their nodes' parts (inParallel), and stop, which
// ends the crew once those operations have returned. A bulk job runs all
// its operations under one.
func withCrew(ctx context.Context) (context.Context, func()) {
	crew := pool.NewCrew(0, func(c partCall) {
		defer c.wg.Done()
		c.f(c.p)
	})
	return context.WithValue(ctx, crewKey{}, crew), crew.Close
}

// maxLapses bounds how many times undoPart waits for late writes on one
// node before it leaves the node to Recover.
const maxLapses = 3

// undoPart drives p's undo within CompensationTimeout; then, on a node
// that does not fence, waits out its late writes and checks it again,
// within the same timeout: a late write that may land after it is left to
// Recover, and the node's state unknown, rather than waited for.
func (r *opRun) undoPart(ctx context.Context, op Op, p *part) error {
	ctx, cancel := context.WithTimeout(ctx, r.c.cfg.CompensationTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	for lapses := 0; ; lapses++ {
		if err := r.drive(ctx, nil, op, p, r.c.cfg.NewCompensationBackoff); err != nil {
			return err
		}
		if Fences(p.node) || !p.ambiguousAt.After(p.lapsedTo) {
			return nil
		}
		until := p.ambiguousAt.Add(r.c.cfg.RequestLifetime)
		var err error
		switch {
		case lapses == maxLapses:
			err = fmt.Errorf("writes kept landing late until %v", until)
		case until.After(deadline):
			err = fmt.Errorf("a write sent at %v may land until %v, past the compensation timeout (%v): the node does not fence late writes",
				p.ambiguousAt.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano), r.c.cfg.CompensationTimeout)
		default:
			err = r.c.cfg.Clock.Sleep(ctx, until.Sub(r.c.cfg.Clock.Now()))
		}
		if err != nil {
			p.advance(evGiveUp, op)
			p.err = fmt.Errorf("waiting for a late write to lapse: %w", err)
			return p.err
		}
		p.lapsedTo = p.ambiguousAt
		p.advance(evLapsed, op)
	}
}

// advance steps p's state machine on e: the only place a part's state
// changes. It returns the move.
func (p *part) advance(e event, op Op) move {
	if taken != nil {
		taken(p.st, e)
	}
	m := step(p.st, e, op)
	p.st = m.to
	return m
}

// keep keeps what a step decided to of an answer: rec, to a request sent
// at sent.
func (p *part) keep(k keep, rec Record, sent time.Time, tokens *TokenSource) {
	if k&keepPreImage != 0 {
		p.pre, p.had = rec.Token, true
	}
	if k&keepNewer != 0 {
		tokens.Observe(rec.Token)
	}
	if k&keepSentAt != 0 {
		p.ambiguousAt = sent
	}
}

// token returns the token of p that a request carries.
func (p *part) token(r role) Token {
	switch r {
	case roleWrite:
		return p.write
	case rolePre:
		return p.pre
	case roleRestore:
		return p.restore
	}
	return ""
}

// report returns what p's node holds as far as the coordinator knows, for
// an operation of kind op.
func (p *part) report(op Op) NodeState { return reported(p.st, op, p.had) }
