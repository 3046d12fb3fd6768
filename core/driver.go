package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
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
	for i, n := range r.c.cfg.Nodes {
		ps[i] = &part{node: n, st: st, write: r.token, restore: r.token}
	}
	return ps
}

// drive runs p's state machine until it is done or fails, and returns the
// failure. newBackoff gives a fresh backoff whenever the request changes.
func (r *opRun) drive(ctx context.Context, op Op, p *part, newBackoff func() Backoff) error {
	bo := newBackoff()
	retry := false
	for {
		req, tok := requestOf(p.st, op, p)
		sent := r.c.cfg.Clock.Now()
		ev, rec, err := r.send(ctx, p.node, req, tok, retry)
		if ev == evAmbiguous && req != reqGet {
			p.ambiguousAt = sent
		}
		if err != nil {
			p.err = err
		}
		switch {
		case p.st == stProbing && (ev == evReadOurs || ev == evReadOther || ev == evReadNoToken):
			p.pre, p.had = rec.Token, true
		case req == reqRemove && (ev == evApplied || ev == evExists):
			// What it removed, or the newer token held: the next
			// operation's token must be above either.
			r.c.cfg.Tokens.Observe(rec.Token)
			if ev == evApplied {
				p.pre, p.had = rec.Token, true
			}
		}
		act := p.advance(ev)
		retry = ev == evNotSent || ev == evAmbiguous
		if act == acSend && retry {
			act = r.wait(ctx, p, bo, err, r.c.cfg.Clock.Now().Sub(sent))
		} else if act == acSend {
			bo = newBackoff()
		}
		switch act {
		case acDone:
			return nil
		case acFail:
			return err
		case acInvalid:
			return Errorf(EInternal, "%s: %s: unexpected answer %s (%v): a bug in rops", p.Name(), p.st, ev, err)
		}
	}
}

// wait backs off before p's request is sent again, and returns acSend, or
// what giving up leads to if the backoff or ctx says stop. The failed
// request took took.
func (r *opRun) wait(ctx context.Context, p *part, bo Backoff, err error, took time.Duration) action {
	giveUp := func(why string) action {
		p.err = fmt.Errorf("%w (%s)", err, why)
		return p.advance(evGiveUp)
	}
	if ctx.Err() != nil {
		return giveUp("gave up: " + context.Cause(ctx).Error())
	}
	if errors.Is(err, ErrBreakerOpen) {
		// The node is down: retrying until the timeout would only delay
		// the report. Nothing was sent, so the state says what it did.
		return giveUp("not retried while the node is down")
	}
	d, stop := bo.Next()
	if stop {
		return giveUp("retries exhausted")
	}
	if r.c.cfg.Clock.Sleep(ctx, max(d, retryAfter(err), pace(err, took))) != nil {
		return giveUp("gave up: " + context.Cause(ctx).Error())
	}
	return acSend
}

// send sends one request and classifies its answer. A request the breaker
// refuses is not sent: evNotSent.
func (r *opRun) send(ctx context.Context, node Node, req request, tok Token, retry bool) (event, Record, error) {
	var rec Record
	if err := r.c.cfg.Breaker.admit(node.Name(), r.c.cfg.Clock.Now()); err != nil {
		return evNotSent, rec, err
	}
	err := r.call(ctx, node, retry, func(ctx context.Context) error {
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
	if ctx.Err() == nil {
		// Once ctx has ended a failure is the caller's, not the node's.
		r.c.cfg.Breaker.observe(node.Name(), r.c.cfg.Clock.Now(), err)
	}
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
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, p := range parts {
		if p.st != from {
			continue
		}
		wg.Go(func() {
			if err := r.drive(ctx, op, p, r.c.cfg.NewBackoff); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		})
	}
	wg.Wait()
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
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, p := range parts {
		if act := p.advance(ev); act != acSend {
			continue
		}
		wg.Go(func() {
			if err := r.undoPart(ctx, op, p); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
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
		if err := r.drive(ctx, op, p, r.c.cfg.NewCompensationBackoff); err != nil {
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
			p.st = stUnknown
			p.err = fmt.Errorf("waiting for a late write to lapse: %w", err)
			return p.err
		}
		p.lapsedTo = p.ambiguousAt
		p.advance(evLapsed)
	}
}

// advance steps p's state machine on e and returns the action.
func (p *part) advance(e event) action {
	if taken != nil {
		taken(p.st, e)
	}
	var act action
	p.st, act = step(p.st, e)
	return act
}

// report returns what p's node holds as far as the coordinator knows, for
// an operation of kind op.
func (p *part) report(op Op) NodeState {
	switch p.st {
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
		if p.had {
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
