// Package memory holds group records and journal intents in memory: a
// core.Store for embedded nodes and tests that need no disk, and a
// core.Journal for runs that need no crash recovery across processes.
// Nothing survives the process.
package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/reliable-ops/rops/core"
)

// Store is a core.Store in memory. It is safe for concurrent use.
//
// Records live in a map. List reads a sorted index of the ids that is brought
// up to date lazily: writes only note which ids changed, and the first List
// after them merges the changes in, in O(n + k log n) for k changed ids. So
// a bulk job's writes cost O(1) each, and paging through n records costs
// O(n) once plus O(log n + limit) per page. That O(n) is a copy (about
// 0.2 ms for 100k records) that a List pays again after every write when
// writes and Lists interleave.
type Store struct {
	mu      sync.Mutex
	records map[core.GroupID]core.Token
	sorted  []core.GroupID // the ids held as of the last tidy, in order
	changed []core.GroupID // ids created or deleted since, unsorted, maybe repeated
	spare   []core.GroupID // a buffer for tidy to merge into, so it need not allocate
}

var _ core.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{records: make(map[core.GroupID]core.Token)}
}

// Create stores a record for id with token. It returns nil if the record is
// new or a replay with the same token, and an ErrExists error if id is held
// with another token.
func (s *Store) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	held, ok := s.records[id]
	if write, err := core.CheckCreate(id, held, ok, token, false); !write {
		return err
	}
	s.records[id] = token
	s.change(id)
	return nil
}

// Delete removes the record for id; a non-empty token makes it conditional on
// the record holding that token. It returns an ErrNotFound error if there is
// no such record.
func (s *Store) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	held, ok := s.records[id]
	if _, err := core.CheckDelete(id, held, ok, token); err != nil {
		return err
	}
	delete(s.records, id)
	s.change(id)
	return nil
}

// Get returns the record for id, or an ErrNotFound error.
func (s *Store) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	if err := ctx.Err(); err != nil {
		return core.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	held, ok := s.records[id]
	if !ok {
		return core.Record{}, core.Errorf(core.ENotFound, "no group record %q", id)
	}
	return core.Record{ID: id, Token: held}, nil
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
