package badger

import (
	"context"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/reliable-ops/rops/core"
)

// WithoutSync turns synced writes off, for benchmarks that measure what
// syncing costs.
func WithoutSync() Option {
	return func(c *config) { c.syncWrites = false }
}

// OpenDB opens the badger database in dir as Open and ReadJournal do, for
// tests that write what the API never would: an older rops' journal, and
// damage.
func OpenDB(dir string) (*badgerdb.DB, error) { return openDB(dir, "test database", nil) }

// TombKey returns the key of the tombstone for (id, token), for tests that
// read tombstones as badger holds them.
func TombKey(id core.GroupID, token core.Token) []byte { return tombKey(id, token) }

// FenceKey returns the key of id's fence, for tests that read fences as
// badger holds them.
func FenceKey(id core.GroupID) []byte { return fenceKey(id) }

// Commits returns how many transactions s has committed, each one disk
// sync, for tests and benchmarks that show how many writes share one.
func (s *Store) Commits() uint64 { return s.c.commits.Load() }

// Hold stops s's committer until release is called, so that the writes
// queued meanwhile form one batch, in the order Queued shows them arrive.
// release returns once the committer has let go.
func (s *Store) Hold() (release func()) {
	h := holdOp{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.c.do(context.Background(), h)
	}()
	<-h.started
	return func() {
		close(h.release)
		<-done
	}
}

// Queued returns how many writes wait for s's committer.
func (s *Store) Queued() int {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return len(s.c.queue)
}

// holdOp blocks the committer goroutine in apply, writing nothing.
type holdOp struct{ started, release chan struct{} }

func (h holdOp) apply(*badgerdb.Txn) (bool, error) {
	close(h.started)
	<-h.release
	return false, nil
}

func (h holdOp) fail(err error) error { return err }
