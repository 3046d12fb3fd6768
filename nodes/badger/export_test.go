package badger

// WithoutSync turns synced writes off, for benchmarks that measure what
// syncing costs.
func WithoutSync() Option {
	return func(c *config) { c.syncWrites = false }
}
