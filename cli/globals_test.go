package cli

import (
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
)

// TestBackoffQuickFirst: the first retry comes after 1 ms, the next ones
// exponentially from core.DefaultBackoffBase (±50% jitter), retries in all.
func TestBackoffQuickFirst(t *testing.T) {
	const retries = 4
	b := backoff(retries)
	var ds []time.Duration
	for {
		d, stop := b.Next()
		if stop {
			break
		}
		ds = append(ds, d)
	}
	if got, want := len(ds), retries; got != want {
		t.Fatalf("%d retries (%v), want %d", got, ds, want)
	}
	if got, want := ds[0], core.DefaultFirstRetry; got != want {
		t.Fatalf("first retry after %v, want %v", got, want)
	}
	if lo, hi := core.DefaultBackoffBase/2, core.DefaultBackoffBase*3/2; ds[1] < lo || ds[1] > hi {
		t.Fatalf("second retry after %v, want %v to %v", ds[1], lo, hi)
	}
}
