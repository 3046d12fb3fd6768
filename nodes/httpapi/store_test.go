package httpapi_test

import (
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes"
	"github.com/reliable-ops/rops/nodes/badger"
	"github.com/reliable-ops/rops/nodes/httpapi"
	"github.com/reliable-ops/rops/nodes/memory"
	"github.com/reliable-ops/rops/nodes/storetest"
)

// openOverHTTP returns a Client of node02 of a three-node server whose
// stores open makes, so that the node header matters.
func openOverHTTP(tb testing.TB, open func(tb testing.TB) core.Store) core.Store {
	tb.Helper()
	ns := make([]core.Node, len(names))
	for i, name := range names {
		ns[i] = nodes.New(name, open(tb), nodes.Options{})
	}
	srv := serve(tb, httpapi.NewServer(ns, httpapi.ServerOptions{}))
	return mustClient(tb, srv, "node02", newHTTPClient(tb))
}

func TestStoreMemory(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) core.Store {
		return openOverHTTP(tb, func(testing.TB) core.Store { return memory.New() })
	})
}

func TestStoreBadger(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) core.Store {
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
	})
}
