package badger

import badgerdb "github.com/dgraph-io/badger/v4"

// WithoutSync turns synced writes off, for benchmarks that measure what
// syncing costs.
func WithoutSync() Option {
	return func(c *config) { c.syncWrites = false }
}

// Commits returns how many transactions j has committed, each one disk
// sync, for benchmarks that show how many writes share one.
func (j *Journal) Commits() uint64 { return j.commits.Load() }

// OpenDB opens the badger database in dir as Open and OpenJournal do, for
// tests that write what the API never would, such as corrupt intents.
func OpenDB(dir string) (*badgerdb.DB, error) { return openDB(dir, "test database", nil) }
