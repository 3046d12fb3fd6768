package httpapi_test

import (
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/storetest"
)

// openOverHTTP returns a Client of node02 of a three-node server whose
// stores open makes, so that the node header matters.
func openOverHTTP(tb testing.TB, open func(tb testing.TB) core.Store) core.Store {
	tb.Helper()
	ns := make([]core.Node, len(names))
	for i, name := range names {
		ns[i] = faults.New(name, open(tb), faults.Options{})
	}
	srv := serve(tb, httpapi.NewServer(ns, httpapi.ServerOptions{}))
	return mustClient(tb, srv, "node02", newHTTPClient(tb))
}

// TestStoreMemory runs the contract, tombstones and their expiry
// included, through the server: a fenced create comes back as ErrFenced,
// and the client learns from the answers that the node fences.
func TestStoreMemory(t *testing.T) {
	storetest.RunWithOptions(t, func(tb testing.TB) core.Store {
		return openOverHTTP(tb, func(testing.TB) core.Store { return memory.New() })
	}, storetest.Options{
		Fences: true,
		TTL:    time.Minute,
		OpenWithClock: func(tb testing.TB, clock core.Clock) core.Store {
			return openOverHTTP(tb, func(testing.TB) core.Store {
				return memory.NewWithOptions(memory.Options{TombstoneTTL: time.Minute, Clock: clock})
			})
		},
	})
}

// TestStoreMemoryWithoutTombstones runs the contract through the server
// over stores that keep no tombstones: the client must then say that the
// node does not fence.
func TestStoreMemoryWithoutTombstones(t *testing.T) {
	open := func(tb testing.TB) core.Store {
		return openOverHTTP(tb, func(testing.TB) core.Store { return memory.NewWithOptions(memory.Options{MaxTombstones: -1}) })
	}
	storetest.Run(t, open)
	c := open(t).(*httpapi.Client)
	if _, err := c.Count(t.Context()); err != nil {
		t.Fatalf("Count: %v", err)
	}
	if c.Fences() {
		t.Fatalf("Fences()=true over stores without tombstones, want false")
	}
}

func TestStoreBadger(t *testing.T) {
	storetest.RunWithOptions(t, func(tb testing.TB) core.Store {
		return openOverHTTP(tb, func(tb testing.TB) core.Store {
			s, err := badger.Open(tb.TempDir())
			if err != nil {
				tb.Fatalf("badger.Open: %v", err)
			}
			tb.Cleanup(func() {
				if err := s.Close(); err != nil {
					tb.Errorf("Close: %v", err)
				}
			})
			return s
		})
	}, storetest.Options{Fences: true})
}
