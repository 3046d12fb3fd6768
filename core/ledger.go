package core

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// ledger is the coordinator's view of the journal: the intents of running
// operations (live) and, by id, the intents left behind by operations that
// ended pending or by an earlier process (left).
//
// An operation on an id first rolls back what is left on it (settle), so the
// journal never holds an intent older than a reported operation on the same
// id: otherwise Recover would later undo the older operation over the newer
// one, deleting a record that a done create wrote or bringing back one that
// a done delete removed. Recover in turn never touches a live intent.
type ledger struct {
	mu     sync.Mutex
	loaded bool
	seq    int
	live   map[Token]bool
	left   map[GroupID][]leftIntent // oldest first
}

type leftIntent struct {
	Intent
	seq int // order of arrival, for Recover's order of ids
}

// load merges the journal's pending intents into the ledger: once, or again
// if force. The ledger's lock is held across the read, and intents are
// removed from the ledger only after the journal finished them, so an intent
// finished meanwhile is either not read or still known, and never comes back.
// Every token the journal holds, and its last token if it keeps one
// (TokenKeeper), is observed by tokens, so that no later operation reuses
// it.
func (b *ledger) load(ctx context.Context, j Journal, force bool, tokens *TokenSource) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if j == nil || b.loaded && !force {
		b.loaded = true
		return nil
	}
	if k, ok := j.(TokenKeeper); ok {
		tokens.Observe(k.LastToken())
	}
	// Pending may return the intents it could read along with an error
	// naming what it could not: keep the good ones, but stay unloaded, so
	// that every operation, and Recover, refuses to run while the journal
	// holds an entry nobody can read (it may be the finish of one of them,
	// or the intent of an operation on the same id).
	intents, err := j.Pending(ctx)
	for _, in := range intents {
		tokens.Observe(in.Token)
		if !b.live[in.Token] && !b.knows(in) {
			b.add(in)
		}
	}
	if err != nil {
		return fmt.Errorf("journal: cannot read pending intents: %w", err)
	}
	b.loaded = true
	return nil
}

// retoken gives r a fresh token, in its parts too: for an operation whose
// token was drawn before the journal was loaded, and is not above the
// tokens it holds. Call it before anything is written.
func (r *opRun) retoken(parts []*part) {
	r.token = r.c.cfg.Tokens.Next()
	for _, p := range parts {
		p.write, p.restore = r.token, r.token
	}
}

func (b *ledger) knows(in Intent) bool {
	return slices.ContainsFunc(b.left[in.ID], func(l leftIntent) bool { return l.Token == in.Token })
}

func (b *ledger) add(in Intent) {
	if b.left == nil {
		b.left = make(map[GroupID][]leftIntent)
	}
	b.seq++
	b.left[in.ID] = append(b.left[in.ID], leftIntent{Intent: in, seq: b.seq})
}

// begin notes a running operation's token; call it before Journal.Begin.
func (b *ledger) begin(token Token) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live == nil {
		b.live = make(map[Token]bool)
	}
	b.live[token] = true
}

// end notes that r is over; its intent stays in the ledger unless the
// journal finished it. Call it after the last journal call of r. An
// intent left so is r's report of pending, which promises a rollback: it is
// marked RollBack, in the journal too (an Update), so that no later
// Recover finishes it instead, even in another process. If that Update
// fails, the journal's copy is left unmarked and end says so, with
// ErrIntentUnsure: a Recover that finds the operation complete then
// finishes it.
func (b *ledger) end(ctx context.Context, r *opRun) error {
	var err error
	if r.intent != nil && !r.finished && !r.intent.RollBack {
		r.intent.RollBack = true
		if j := r.c.cfg.Journal; j != nil {
			if uerr := j.Update(context.WithoutCancel(ctx), *r.intent); uerr != nil {
				err = fmt.Errorf("journal: cannot mark intent %s of %q for roll back: %w (%w)", r.intent.Token, r.intent.ID, uerr, ErrIntentUnsure)
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.live, r.token)
	if r.intent != nil && !r.finished {
		b.add(*r.intent)
	}
	return err
}

// newest returns the newest intent left on id.
func (b *ledger) newest(id GroupID) (Intent, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.left[id]
	if len(l) == 0 {
		return Intent{}, false
	}
	return l[len(l)-1].Intent, true
}

// intents returns the intents left on id, newest first.
func (b *ledger) intents(id GroupID) []Intent {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ins []Intent
	for _, l := range slices.Backward(b.left[id]) {
		ins = append(ins, l.Intent)
	}
	return ins
}

// drop forgets in; call it after the journal finished it.
func (b *ledger) drop(in Intent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := slices.DeleteFunc(b.left[in.ID], func(l leftIntent) bool { return l.Token == in.Token })
	if len(l) == 0 {
		delete(b.left, in.ID)
		return
	}
	b.left[in.ID] = l
}

// ids returns the ids with intents left, in the order the oldest of each
// arrived.
func (b *ledger) ids() []GroupID {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]GroupID, 0, len(b.left))
	for id := range b.left {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y GroupID) int { return b.left[x][0].seq - b.left[y][0].seq })
	return ids
}

// keyedMutex serializes operations on the same id. Waiting for an id's lock
// ends with the caller's context.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[GroupID]*idLock
	// free keeps idLocks no one uses, for the next ids, so that taking a
	// lock allocates nothing. (Not a sync.Pool: a channel must not pass
	// from one testing/synctest bubble to another.)
	free []*idLock
}

// maxFreeLocks bounds keyedMutex.free.
const maxFreeLocks = 64

type idLock struct {
	id   GroupID
	held chan struct{} // holds one value while the lock is taken
	refs int
	// unlock releases the lock its caller holds: made once, with l.
	unlock func()
}

// lock takes id's lock, or returns ctx.Err() if ctx ends first.
func (k *keyedMutex) lock(ctx context.Context, id GroupID) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[GroupID]*idLock)
	}
	l := k.locks[id]
	if l == nil {
		l = k.newLock()
		l.id = id
		k.locks[id] = l
	}
	l.refs++
	k.mu.Unlock()
	select {
	case l.held <- struct{}{}:
		return l.unlock, nil
	case <-ctx.Done():
		k.release(l)
		return nil, ctx.Err()
	}
}

// newLock returns an idLock no one uses. Call it with k.mu held.
func (k *keyedMutex) newLock() *idLock {
	if n := len(k.free); n > 0 {
		l := k.free[n-1]
		k.free = k.free[:n-1]
		return l
	}
	l := &idLock{held: make(chan struct{}, 1)}
	l.unlock = func() {
		<-l.held
		k.release(l)
	}
	return l
}

// release gives up its caller's use of l, and l itself once no one uses
// it.
func (k *keyedMutex) release(l *idLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(k.locks, l.id)
		if len(k.free) < maxFreeLocks {
			l.id = ""
			k.free = append(k.free, l)
		}
	}
}
