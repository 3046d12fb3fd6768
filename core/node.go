package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// Store is one node's storage of group records: no faults, no network.
// Implementations are safe for concurrent use.
type Store interface {
	// Create stores a record for id with token. It returns nil if the record
	// is new or is a replay (the node already holds id with the same token),
	// and ErrExists if the node holds id with another token.
	Create(ctx context.Context, id GroupID, token Token) error
	// Delete removes the record for id. A non-empty token makes the delete
	// conditional: only a record holding that token is removed. It returns
	// ErrNotFound if there is no such record.
	Delete(ctx context.Context, id GroupID, token Token) error
	// Get returns the record for id, or ErrNotFound.
	Get(ctx context.Context, id GroupID) (Record, error)
	// List returns up to limit records with ids greater than after, sorted by
	// id (bytewise), for paging through a node. An empty after starts at the
	// beginning; a short or empty page means the end.
	List(ctx context.Context, after GroupID, limit int) ([]Record, error)
	// Count returns the number of records held.
	Count(ctx context.Context) (int, error)
}

// Node is a Store as the coordinator sees it: through something that can
// fail. Its calls may also return ETransient (the outcome is unknown) or
// EUnavailable (the request never arrived) errors, and ERejected.
type Node interface {
	// Name returns the node's name, such as "node01".
	Name() string
	Store
}

// DefaultTombstoneTTL is how long a Store that fences keeps a tombstone:
// longer than any request to it can live, so that a create delayed in a
// queue can never land after the delete that undid it.
const DefaultTombstoneTTL = 10 * time.Minute

// Fencer is implemented by Nodes and Stores that fence late writes: every
// conditional Delete(id, token) leaves a tombstone for (id, token), kept for
// at least DefaultTombstoneTTL (or as configured), and a Create(id, token)
// that finds one fails with ErrFenced. The coordinator relies on it to undo
// a create whose request may still be on its way; against a node that does
// not fence, it waits out Config.RequestLifetime and reads the node again.
type Fencer interface {
	// Fences reports whether the node keeps tombstones.
	Fences() bool
}

// TombstoneKeeper is implemented by Nodes and Stores that say how long
// they keep tombstones, and with them their records of removals (see
// Remover). The coordinator, and a server that announces it to its
// clients, assume DefaultTombstoneTTL of a node that does not say.
type TombstoneKeeper interface {
	// TombstoneTTL returns how long a tombstone is kept; zero if unknown.
	TombstoneTTL() time.Duration
}

// Fences reports whether n fences late writes, looking through wrappers
// (see NodeAs).
func Fences(n Node) bool {
	f, ok := NodeAs[Fencer](n)
	return ok && f.Fences()
}

// Remover is implemented by Nodes and Stores that delete without a read
// first (rops nodes; not the original server). The coordinator deletes
// through Remove on an operation whose nodes all say Removes, and reads
// each record first (Get, then a conditional Delete) otherwise.
type Remover interface {
	// Removes reports whether Remove is served; for a node over a network,
	// as far as its last answer said.
	Removes() bool
	// Remove deletes the record for id if its token is older than before
	// (CompareTokens), and returns the token it removed. It records, for
	// at least DefaultTombstoneTTL, that before removed that token, and
	// answers a later Remove(id, before) from that record, touching
	// nothing: a resent or late copy gets the same answer and can never
	// remove a record written since, such as the undo's, which carries
	// before itself. A record it removes is tombstoned as a conditional
	// Delete of its token would be (see Fencer). It returns ErrNotFound if
	// it removed nothing (no record, and no record of an earlier removal
	// by before), and ErrExists, with the token held, if the record's token
	// is not older than before: nothing is removed.
	Remove(ctx context.Context, id GroupID, before Token) (Token, error)
}

// Batcher is implemented by Nodes that send writes in batches (a rops HTTP
// node that serves them): many operations' writes to the node travel
// together, at most one batch on its way at a time, so the operations in
// flight size the batches more than they load the node. A bulk job under
// AutoConcurrency starts with at least two batches' worth of them in
// flight once every node batches: one batch on its way, the next filling.
type Batcher interface {
	// BatchSize returns the most writes one batch to the node holds now:
	// 0 while writes go one request each (batches turned off, or the node
	// has not said yet, or does not serve them).
	BatchSize() int
}

// batchSize returns the least BatchSize of nodes, looking through
// wrappers (NodeAs), or 0 if one of them does not batch.
func batchSize(nodes []Node) int {
	least := 0
	for i, n := range nodes {
		b, ok := NodeAs[Batcher](n)
		if !ok {
			return 0
		}
		size := b.BatchSize()
		if size <= 1 {
			return 0
		}
		if i == 0 || size < least {
			least = size
		}
	}
	return least
}

// Removes reports whether n deletes without a read (see Remover). Only n
// itself is asked, not what it wraps: a wrapper that does not pass Remove
// on (a request log) must not be bypassed.
func Removes(n Node) bool {
	r, ok := n.(Remover)
	return ok && r.Removes()
}

// NodeAs returns the first node in n's chain of wrappers that is a T: n
// itself, or what an Unwrap() Node method of n returns, and so on, as
// errors.As looks through wrapped errors.
func NodeAs[T any](n Node) (T, bool) {
	for n != nil {
		if t, ok := n.(T); ok {
			return t, true
		}
		u, ok := n.(interface{ Unwrap() Node })
		if !ok {
			break
		}
		n = u.Unwrap()
	}
	var zero T
	return zero, false
}

// Op names the kind of an operation.
type Op string

// Operations.
const (
	OpCreate Op = "create"
	OpDelete Op = "delete"
)

// Intent is the journal's record of one unfinished operation: enough to
// finish it or roll it back after a crash.
type Intent struct {
	Op    Op       `json:"op"`
	ID    GroupID  `json:"id"`
	Token Token    `json:"token"` // the operation's token; the journal's key
	Nodes []string `json:"nodes"` // the nodes the operation may touch
	// PreImage holds, for a delete, the token each node held before the
	// operation (nodes that held nothing are absent). Empty for a create.
	PreImage map[string]Token `json:"pre_image,omitempty"`
	// Blind marks a delete that removes without a read (Remover): at Begin
	// it knows no pre-image. PreImage then holds, for the nodes where the
	// delete is known to have removed a record, the token removed, and
	// Nodes the nodes where it may have removed one: a report of pending
	// writes what the delete learned with Update first. Recover rolls a
	// blind delete that was not reported pending forward (Remove again on
	// every node: all end without the id), and one that was back,
	// re-creating the id under Token where it removed a record, learning
	// that, where unknown, from the node's record of the removal, which
	// lives as long as its tombstones; past that, such a node is restored
	// as the nodes known to have removed the record are.
	Blind bool `json:"blind,omitempty"`
	// Written is, for a create that wrote another token than its own, the
	// token it wrote. Empty means Token, as every intent of this version
	// writes: only journals of older versions, whose repairs wrote the
	// majority's token, hold it.
	Written Token `json:"written,omitempty"`
	// RollBack is set once the operation was reported pending, which
	// promises that Recover rolls it back: it then does so whatever the
	// nodes hold, instead of finishing an operation it finds complete.
	RollBack bool `json:"roll_back,omitempty"`
	// Cluster names the cluster the operation ran on, as the journal that
	// recorded it knows it (a journal may stamp it in Begin); a journal
	// refuses to return an intent of another cluster than its own. Empty in
	// journals of older versions.
	Cluster string `json:"cluster,omitempty"`
}

// Validate refuses an intent that Recover could not act on (no token, an
// unknown op), so that a journal never returns one.
func (in Intent) Validate() error {
	switch {
	case in.Token == "":
		return errors.New("no token")
	case in.Op != OpCreate && in.Op != OpDelete:
		return fmt.Errorf("unknown op %q", in.Op)
	}
	return nil
}

// written returns the token a create intent wrote.
func (in Intent) written() Token { return cmp.Or(in.Written, in.Token) }

// Journal is the coordinator's durable log of unfinished operations. The
// coordinator writes an intent before it touches any node and finishes it
// once the operation is committed or fully compensated, so that after a crash
// Recover can finish or roll back whatever was left half-done.
// Implementations are safe for concurrent use.
//
// A finish need not be durable when Finish returns, provided finishes are
// ordered with the Begins that follow them: the sync of any later Begin (or
// of Close) makes every earlier Finish durable. A finish lost in a crash
// brings its intent back; Recover reads the nodes and finds the operation
// complete (done) or undone already (rolled back again, which changes
// nothing), and since no later operation began after it, the nodes still
// show its outcome.
type Journal interface {
	// Begin records a new intent durably before it returns. A token that
	// is already recorded gives an EInvalid error. On an error with code
	// ETransient the intent may still be recorded (a write to a remote
	// journal that timed out may commit later): the coordinator then
	// withdraws it with Finish, whose success must mean it is not
	// recorded and never will be, and reports the operation pending if
	// that fails too. On any other error nothing of in is recorded, or the
	// journal refuses every later write.
	Begin(ctx context.Context, in Intent) error
	// Update replaces the intent with the same token durably, or returns
	// ErrNotFound.
	Update(ctx context.Context, in Intent) error
	// Finish removes the intent with token, durably once a later Begin or
	// Update returns (see above); finishing an unknown token is not an
	// error.
	Finish(ctx context.Context, token Token) error
	// Pending returns the unfinished intents, oldest first. If the journal
	// holds entries it cannot read (damaged), or intents of another
	// cluster, it returns an error naming them, with the intents it could
	// read; the coordinator then acts on none of them until the damage is
	// dealt with.
	Pending(ctx context.Context) ([]Intent, error)
}

// TokenKeeper is implemented by a Journal that remembers the greatest token
// of the intents it ever recorded, finished ones included, so that a new
// coordinator's tokens are above it even if its clock is behind.
type TokenKeeper interface {
	// LastToken returns the greatest token (by CompareTokens) of any
	// intent the journal recorded, or "" if none.
	LastToken() Token
}
