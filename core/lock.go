package core

import (
	"context"
	"fmt"
	"slices"
)

// Locker gives an operation exclusive use of one id among every
// coordinator that shares it: the default, an in-process mutex, among the
// operations of one Coordinator; a lock service such as etcd, among
// processes on many machines. Implementations are safe for concurrent use.
type Locker interface {
	// Lock waits until it holds id's lock. It returns a context derived
	// from ctx that ends as soon as the lock is lost (a lease that
	// expired: context.Cause says why), so that the operation stops
	// sending for id at once, and unlock, which releases the lock and ends
	// that context. It returns an error, holding nothing, if ctx ends
	// first or the lock service cannot be reached.
	Lock(ctx context.Context, id GroupID) (held context.Context, unlock func(), err error)
}

// SharedJournal is implemented by a Journal that other coordinators write
// too (one in etcd). An intent another coordinator left on an id appears
// there at any time, so the coordinator reads an id's intents afresh each
// time it takes the id's lock, instead of once per process.
type SharedJournal interface {
	Journal
	// Intents returns the unfinished intents on id, oldest first, as the
	// journal holds them now, and the greatest token ever begun on id by
	// any coordinator ("" if none), below which no new operation on id may
	// take its token.
	Intents(ctx context.Context, id GroupID) (intents []Intent, floor Token, err error)
}

// heldKey is the context key of the id whose lock the coordinator holds.
type heldKey struct{}

// HeldID returns the id whose lock the coordinator held when it called a
// Journal with ctx. A shared journal that keys intents by id and token
// learns from it which intent Finish, which is given only a token, means:
// two coordinators may draw the same token for different ids.
func HeldID(ctx context.Context) (GroupID, bool) {
	id, ok := ctx.Value(heldKey{}).(GroupID)
	return id, ok
}

// lockID takes id's lock and, with a shared journal, reads the intents that
// other coordinators left on id into the ledger, and raises tokens above
// every token begun on id. The returned context ends when the lock is lost
// (see Locker) and carries id (see HeldID); the operation on id runs under
// it.
func (c *Coordinator) lockID(ctx context.Context, id GroupID) (context.Context, func(), error) {
	held, unlock, err := c.cfg.Locks.Lock(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	held = context.WithValue(held, heldKey{}, id)
	if j, ok := c.cfg.Journal.(SharedJournal); ok {
		if err := c.book.refresh(held, j, id, c.cfg.Tokens); err != nil {
			unlock()
			return nil, nil, err
		}
	}
	return held, unlock, nil
}

// refresh replaces the intents the ledger holds for id with those j holds
// now, and makes tokens' later tokens greater than every token begun on id.
// Call it with id's lock held: no operation of this process is running on
// id, and no other coordinator can begin or finish an intent on it.
func (b *ledger) refresh(ctx context.Context, j SharedJournal, id GroupID, tokens *TokenSource) error {
	intents, floor, err := j.Intents(ctx, id)
	if err != nil {
		return fmt.Errorf("journal: cannot read the intents on %q: %w", id, err)
	}
	tokens.Observe(floor)
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.left[id]
	delete(b.left, id)
	for _, in := range intents {
		tokens.Observe(in.Token)
		// None is this process's running operation's: it would hold the
		// lock. (Another process may have drawn a running one's token
		// for another id, so live, by token, is no guide here.)
		//
		// Keep the order of arrival of an intent the ledger knew, for
		// Recover's order of ids.
		if i := slices.IndexFunc(old, func(l leftIntent) bool { return l.Token == in.Token }); i >= 0 {
			b.left[id] = append(b.left[id], leftIntent{Intent: in, seq: old[i].seq})
			continue
		}
		b.add(in)
	}
	return nil
}

// Lock takes id's lock in this process; the context it returns is ctx:
// the lock is lost only with the process.
func (k *keyedMutex) Lock(ctx context.Context, id GroupID) (context.Context, func(), error) {
	unlock, err := k.lock(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return ctx, unlock, nil
}

var _ Locker = (*keyedMutex)(nil)

// LocalLocker returns the default Locker: a mutex per id, in this process.
// A Locker shared by many processes can use it first, so that operations of
// one process on an id wait in line here rather than at the lock service.
func LocalLocker() Locker { return &keyedMutex{} }
