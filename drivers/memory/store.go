// Package memory holds group records and journal intents in memory: a
// core.Store for embedded nodes and tests that need no disk, and a
// core.Journal for runs that need no crash recovery across processes.
// Nothing survives the process.
package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core"
)

// Store is a core.Store in memory. It is safe for concurrent use.
//
// Records live in a map. List reads a sorted index of the ids that is brought
// up to date lazily: writes only note which ids changed, and the first List
// after them merges the changes in, in O(n + k log n) for k changed ids. So
// a bulk job's writes cost O(1) each, and paging through n records costs
// O(n) once plus O(log n + limit) per page. That O(n) is a copy that a List
// pays again after every write when writes and Lists interleave.
//
// The Store fences (core.Fencer): every conditional Delete(id, token), found
// or not, every unconditional one that removed a record, and every
// Create(id, token) refused with ErrExists leaves a tombstone for (id,
// token), and a Create(id, token) of an id it does not hold fails with
// core.ErrFenced while that tombstone lasts. A Remove(id, before) that
// removed a record leaves one for the token removed, and one that records
// the removal, from which it answers a copy of itself. A tombstone lasts
// Options.TombstoneTTL from the last delete that left it, and is never
// dropped sooner: the TTL is what the node advertises, and a create that
// arrives within it must be fenced. So at most Options.MaxTombstones are
// kept, and while that many live, a request that would leave one more (a
// delete, a Remove, a create refused with ErrExists) is refused with an
// EUnavailable error, Overloaded, whose RetryAfter says when enough expire,
// and touches nothing: none of its effects is safe without the tombstone. A
// tombstone costs about 250 bytes plus its id and token.
//
// It also keeps, for every id, the greatest fence a request on it carried
// (core.WithFence, core.CheckFence), and refuses an older one with an
// EStale error before any other rule, touching nothing. Fences are kept
// for as long as the Store, not for a TTL, as a coordinator may resume
// after any pause: each id ever fenced costs a map entry, 40 to 80 bytes
// as the map's load varies, plus its id and token.
type Store struct {
	mu      sync.Mutex
	records map[core.GroupID]core.Token
	sorted  []core.GroupID // the ids held as of the last tidy, in order
	changed []core.GroupID // ids created or deleted since, unsorted, maybe repeated
	spare   []core.GroupID // a buffer for tidy to merge into, so it need not allocate
	tombs   tombstones
	// fences holds each id's greatest fence; nil if the Store does not
	// fence.
	fences map[core.GroupID]core.Token
}

var (
	_ core.Store           = (*Store)(nil)
	_ core.Fencer          = (*Store)(nil)
	_ core.Remover         = (*Store)(nil)
	_ core.TombstoneKeeper = (*Store)(nil)
)

// DefaultMaxTombstones is the number of tombstones a Store keeps at most
// unless Options.MaxTombstones says otherwise: at the default TTL, room for
// about 1,700 deletes a second, sustained.
const DefaultMaxTombstones = 1 << 20

// Options configures NewWithOptions. The zero value is New's defaults.
type Options struct {
	// TombstoneTTL is how long a tombstone is kept at least, bound
	// permitting (0: core.DefaultTombstoneTTL). Keep it longer than any
	// request to the store can live.
	TombstoneTTL time.Duration
	// MaxTombstones bounds the tombstones kept (0: DefaultMaxTombstones):
	// while that many live, a request that would leave one more is
	// refused (EUnavailable) until enough expire; none is dropped before
	// its TTL. Below 0, none are kept: the Store does not fence, like the
	// original server, and keeps no fences either.
	MaxTombstones int
	// Clock ages the tombstones (nil: core.SystemClock).
	Clock core.Clock
}

// New returns an empty Store with the default options.
func New() *Store { return NewWithOptions(Options{}) }

// NewWithOptions returns an empty Store configured by opts.
func NewWithOptions(opts Options) *Store {
	if opts.TombstoneTTL <= 0 {
		opts.TombstoneTTL = core.DefaultTombstoneTTL
	}
	if opts.MaxTombstones == 0 {
		opts.MaxTombstones = DefaultMaxTombstones
	}
	if opts.Clock == nil {
		opts.Clock = core.SystemClock{}
	}
	s := &Store{
		records: make(map[core.GroupID]core.Token),
		tombs: tombstones{
			ttl:   opts.TombstoneTTL,
			max:   max(opts.MaxTombstones, 0),
			clock: opts.Clock,
			until: make(map[tombKey]tomb),
		},
	}
	if s.Fences() {
		s.fences = make(map[core.GroupID]core.Token)
	}
	return s
}

// Fences reports whether the Store keeps tombstones: true unless
// Options.MaxTombstones was below 0.
func (s *Store) Fences() bool { return s.tombs.max > 0 }

// TombstoneTTL returns how long the Store keeps a tombstone, bound
// permitting.
func (s *Store) TombstoneTTL() time.Duration { return s.tombs.ttl }

// Create stores a record for id with token. It returns nil if the record is
// new or a replay with the same token, an ErrExists error if id is held
// with another token (and then leaves a tombstone for (id, token)), and an
// ErrFenced error if id is not held and a tombstone for (id, token) is. It
// returns an EStale error if ctx carries a fence older than id's, and an
// EUnavailable error if it would leave a tombstone and there is no room
// for one; both touch nothing.
func (s *Store) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fence, err := s.fence(ctx, id)
	if err != nil {
		return err
	}
	held, ok := s.records[id]
	fenced := !ok && s.tombs.holds(id, token)
	write, err := core.CheckCreate(id, held, ok, token, fenced)
	if core.ErrorCode(err) == core.EExists {
		// A copy of this create delivered later must not land once the
		// record is gone (core.CheckDelete's note).
		key := tombKey{id: id, token: token}
		if full := s.tombs.room(key); full != nil {
			return full
		}
		s.tombs.add(key, "")
	}
	if fence == token {
		// One string for both, as a create carries its own token as
		// its fence: a record costs one object fewer to keep and to mark.
		fence = token
	}
	id = s.raise(id, fence)
	if !write {
		return err
	}
	s.records[id] = token
	s.change(id)
	return nil
}

// Delete removes the record for id; a non-empty token makes it conditional on
// the record holding that token. It returns an ErrNotFound error if there is
// no such record. A conditional delete leaves a tombstone for (id, token)
// even then; an unconditional one leaves one for the token it removed. It
// returns an EStale error if ctx carries a fence older than id's, and an
// EUnavailable error if there is no room for the tombstone; both touch
// nothing.
func (s *Store) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fence, err := s.fence(ctx, id)
	if err != nil {
		return err
	}
	held, ok := s.records[id]
	_, err = core.CheckDelete(id, held, ok, token)
	var keys []tombKey
	switch {
	case token != "":
		// Found or not: a create with this token still on its way must
		// not land after this delete.
		keys = []tombKey{{id: id, token: token}}
	case err == nil:
		keys = []tombKey{{id: id, token: held}}
	}
	if full := s.tombs.room(keys...); full != nil {
		return full
	}
	for _, k := range keys {
		s.tombs.add(k, "")
	}
	s.raise(id, fence)
	if err != nil {
		return err
	}
	delete(s.records, id)
	s.change(id)
	return nil
}

// Removes reports whether the Store serves Remove: as it fences (see
// Fences), since Remove's answers to late copies rest on its records.
func (s *Store) Removes() bool { return s.Fences() }

// Remove deletes the record for id if its token is older than before, and
// returns the token removed (core.Remover, core.CheckRemove). It records
// that before removed it, next to the tombstone it leaves for that token,
// for as long, and answers a later Remove(id, before) from that record. It
// returns an ErrNotFound error if it removed nothing, and an ErrExists
// error with the token held if that is not older than before. It returns
// an EStale error if ctx carries a fence older than id's, and an
// EUnavailable error if there is no room for the tombstone and the record
// of the removal; both touch nothing.
func (s *Store) Remove(ctx context.Context, id core.GroupID, before core.Token) (core.Token, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fence, err := s.fence(ctx, id)
	if err != nil {
		return "", err
	}
	held, ok := s.records[id]
	removed, known := s.tombs.removal(id, before)
	write, tok, err := core.CheckRemove(id, held, ok, before, removed, known)
	if !write {
		s.raise(id, fence)
		return tok, err
	}
	tomb, removal := tombKey{id: id, token: held}, tombKey{id: id, token: before, removal: true}
	if full := s.tombs.room(tomb, removal); full != nil {
		return "", full
	}
	s.tombs.add(tomb, "")
	s.tombs.add(removal, held)
	s.raise(id, fence)
	delete(s.records, id)
	s.change(id)
	return held, nil
}

// Get returns the record for id, or an ErrNotFound error. It returns an
// EStale error, and not the record, if ctx carries a fence older than
// id's; a newer one it records, as a write would.
func (s *Store) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	if err := ctx.Err(); err != nil {
		return core.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fence, err := s.fence(ctx, id)
	if err != nil {
		return core.Record{}, err
	}
	s.raise(id, fence)
	held, ok := s.records[id]
	if !ok {
		return core.Record{}, core.Errorf(core.ENotFound, "no group record %q", id)
	}
	return core.Record{ID: id, Token: held}, nil
}

// fence applies core.CheckFence to the fence ctx carries, if the Store
// fences, and returns the fence to record for id with the request's
// effect ("" for none), or the EStale error that refuses the request. The
// caller holds s.mu.
func (s *Store) fence(ctx context.Context, id core.GroupID) (core.Token, error) {
	f := core.FenceOf(ctx)
	if s.fences == nil || f == "" {
		return "", nil
	}
	raise, err := core.CheckFence(id, s.fences[id], f)
	if !raise {
		return "", err
	}
	return f, nil
}

// raise records fence, if not empty, as id's, and returns id as the Store
// keeps it, for the records to share: the copy raise made of an id new to
// the fences, else id itself. The caller holds s.mu.
func (s *Store) raise(id core.GroupID, fence core.Token) core.GroupID {
	if fence == "" {
		return id
	}
	if _, ok := s.fences[id]; !ok {
		// Kept for good: a copy of its own, not a slice of the request
		// that would pin all of it.
		id = core.GroupID(strings.Clone(string(id)))
	}
	s.fences[id] = fence
	return id
}

// List returns up to limit records with ids greater than after, sorted
// bytewise by id. A limit below 1 means core.DefaultPageSize, so a caller
// that does not care still gets bounded pages.
func (s *Store) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 1 {
		limit = core.DefaultPageSize
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tidy()
	i, found := slices.BinarySearch(s.sorted, after)
	if found {
		i++
	}
	ids := s.sorted[i:]
	ids = ids[:min(limit, len(ids))]
	page := make([]core.Record, len(ids))
	for j, id := range ids {
		page[j] = core.Record{ID: id, Token: s.records[id]}
	}
	return page, nil
}

// Count returns the number of records held.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records), nil
}

// change notes that id was created or deleted. Churn with no List in between
// would grow the notes without bound, so they are merged in once they
// outnumber the records; that keeps memory O(n) and costs O(log n) per write
// amortized. The caller holds s.mu.
func (s *Store) change(id core.GroupID) {
	s.changed = append(s.changed, id)
	if len(s.changed) > 2*len(s.records)+1024 {
		s.tidy()
	}
}

// tidy brings sorted up to date with records: every changed id is dropped
// from it or put into it, by whether records holds it now, and the runs of
// ids in between are copied whole. The caller holds s.mu.
func (s *Store) tidy() {
	if len(s.changed) == 0 {
		return
	}
	slices.Sort(s.changed)
	merged, rest := s.spare[:0], s.sorted
	for _, id := range slices.Compact(s.changed) {
		i, found := slices.BinarySearch(rest, id)
		merged = append(merged, rest[:i]...)
		if found {
			i++
		}
		rest = rest[i:]
		if _, ok := s.records[id]; ok {
			merged = append(merged, id)
		}
	}
	merged = append(merged, rest...)
	// Clear what the merge left of the buffer's old contents, so that it
	// does not pin the strings of deleted ids. The old sorted slice, now the
	// spare, still does until the next tidy: clearing it too would double
	// the cost of a tidy, for garbage of at most one index's size.
	clear(merged[len(merged):cap(merged)])
	s.sorted, s.spare = merged, s.sorted[:0]
	clear(s.changed)
	s.changed = s.changed[:0]
}

// tombKey names a tombstone: of a token, which fences creates with it, or
// of a removal, which records what Remove(id, token) removed.
type tombKey struct {
	id      core.GroupID
	token   core.Token
	removal bool
}

// tombstones are a Store's tombstones: a map to look them up, and a queue
// in the order they were left, which is the order they expire in as the
// TTL is fixed, to drop them oldest first as they expire and to tell how
// long until one does. The caller holds the Store's mu.
type tombstones struct {
	ttl   time.Duration
	max   int // 0: keep none
	clock core.Clock
	until map[tombKey]tomb
	// queue holds, from queue[head] on, an entry for every tombstone in
	// until, with its seq. Renewing a tombstone queues it again with a new
	// seq; the entry queued before is then stale, and is dropped when it
	// comes up or when stale entries outnumber the tombstones.
	queue []queued
	head  int
	seq   uint64 // the seq of the last tombstone left
}

type tomb struct {
	until   time.Time  // the tombstone lasts until then
	seq     uint64     // which entry of the queue is its own
	removed core.Token // a removal's: the token it removed
}

type queued struct {
	key tombKey
	seq uint64
}

// holds reports whether a tombstone for (id, token) is there and has not
// expired.
func (t *tombstones) holds(id core.GroupID, token core.Token) bool {
	tb, ok := t.until[tombKey{id: id, token: token}]
	return ok && t.clock.Now().Before(tb.until)
}

// removal returns what Remove(id, before) removed, if a live tombstone
// records it.
func (t *tombstones) removal(id core.GroupID, before core.Token) (core.Token, bool) {
	tb, ok := t.until[tombKey{id: id, token: before, removal: true}]
	if !ok || !t.clock.Now().Before(tb.until) {
		return "", false
	}
	return tb.removed, true
}

// room drops the expired tombstones and returns nil if keys, those not
// there already, fit within max; else an EUnavailable error, Overloaded,
// whose RetryAfter is how long until enough expire, rounded up to a whole
// second (at least one), as a Retry-After header says it. A request it
// refuses must touch nothing: none of its effects is safe without its
// tombstones.
func (t *tombstones) room(keys ...tombKey) error {
	if t.max == 0 {
		return nil
	}
	now := t.clock.Now()
	t.expire(now)
	need := 0
	for _, k := range keys {
		if _, ok := t.until[k]; !ok {
			need++
		}
	}
	over := len(t.until) + need - t.max
	if over <= 0 {
		return nil
	}
	// The over-th oldest tombstone frees the last slot needed.
	wait := t.ttl
	for _, q := range t.queue[t.head:] {
		if !t.live(q) {
			continue
		}
		if over--; over == 0 {
			wait = t.until[q.key].until.Sub(now)
			break
		}
	}
	wait = max(time.Second, (wait + time.Second - 1).Truncate(time.Second))
	return &core.Error{Code: core.EUnavailable, RetryAfter: wait, Overloaded: true, Message: fmt.Sprintf(
		"tombstones full: %d kept, none of which may go before its %v TTL, and the request would leave %d more: not applied; retry in %v",
		len(t.until), t.ttl, need, wait)}
}

// add leaves the tombstone key, with removed for a removal's, that lasts
// the TTL from now, renewing one that is there, and drops the expired
// ones. room must have said there is room for it.
func (t *tombstones) add(key tombKey, removed core.Token) {
	if t.max == 0 {
		return
	}
	now := t.clock.Now()
	t.seq++
	t.until[key] = tomb{until: now.Add(t.ttl), seq: t.seq, removed: removed}
	t.queue = append(t.queue, queued{key, t.seq})
	t.expire(now)
}

// expire drops, from the front of the queue, stale entries and the
// tombstones expired at now, and keeps the queue's array within twice its
// length.
func (t *tombstones) expire(now time.Time) {
	for t.head < len(t.queue) {
		q := t.queue[t.head]
		live := t.live(q)
		if live && now.Before(t.until[q.key].until) {
			break
		}
		t.queue[t.head] = queued{} // let go of the strings
		t.head++
		if live {
			delete(t.until, q.key)
		}
	}
	switch {
	case len(t.queue)-t.head > 2*len(t.until)+64:
		// Renewals left more stale entries than tombstones, behind one
		// that is not due: filter them out, in one pass over the queue
		// that they paid for.
		n := 0
		for _, q := range t.queue[t.head:] {
			if t.live(q) {
				t.queue[n] = q
				n++
			}
		}
		clear(t.queue[n:])
		t.queue, t.head = t.queue[:n], 0
	case t.head > len(t.queue)/2:
		// Move the queue down once its dropped front outgrows the rest,
		// so that its array stays within twice its length.
		n := copy(t.queue, t.queue[t.head:])
		clear(t.queue[n:])
		t.queue, t.head = t.queue[:n], 0
	}
}

// live reports whether q is its tombstone's own entry, not a stale one.
func (t *tombstones) live(q queued) bool {
	tb, ok := t.until[q.key]
	return ok && tb.seq == q.seq
}
