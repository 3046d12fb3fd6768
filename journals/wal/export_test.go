package wal

import (
	"os"
	"sync/atomic"
)

// Syncs returns how many data syncs j has made, for tests that show what
// shares one.
func Syncs(j *Journal) uint64 { return j.syncs.Load() }

// Rewrites returns how many times j rewrote its log.
func Rewrites(j *Journal) uint64 { return j.rews.Load() }

// AtomicCounter hands out 0, 1, 2, ...
type AtomicCounter struct{ n atomic.Int64 }

func (c *AtomicCounter) Add() int { return int(c.n.Add(1) - 1) }

// CompactAt is how much history Close leaves in the log.
const CompactAt = compactAt

// Preallocate gives f size bytes reading as zero, as the journal's logs get.
func Preallocate(f *os.File, size int64) error { return preallocate(f, size) }
