package badger_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
)

// populateEnv, when set to a directory, makes TestPopulate fill it as
// `rops --data DIR --random-behavior 0 create --range 0-N` would
// (ROPS_POPULATE_N ids, 1,000,000 by default; ROPS_POPULATE_NODES nodes, 3
// by default): node01, node02, ... each hold every id with the token of its
// create. It writes through each Store's own group commit, without syncs,
// so that `rops stats` can be measured at a million ids without waiting
// for a job that syncs its journal and nodes at every batch.
const populateEnv = "ROPS_POPULATE"

func TestPopulate(t *testing.T) {
	root := os.Getenv(populateEnv)
	if root == "" {
		t.Skip(populateEnv + " is not set")
	}
	n := envInt(t, "ROPS_POPULATE_N", 1_000_000)
	nodes := envInt(t, "ROPS_POPULATE_NODES", 3)
	// One token per id, the same on every node, as a create's.
	tokens := core.NewTokenSource(nil)
	toks := make([]core.Token, n)
	for i := range toks {
		toks[i] = tokens.Next()
	}
	stores := make([]*badger.Store, nodes)
	for i := range stores {
		s, err := badger.Open(filepath.Join(root, fmt.Sprintf("node%02d", i+1)), badger.WithoutSync())
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	// A bulk job's ids arrive out of order from its workers: so do these.
	const workers = 64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := core.GroupID(strconv.Itoa(i))
				for _, s := range stores {
					if err := s.Create(t.Context(), id, toks[i]); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for _, s := range stores {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: give a positive number", name, v)
	}
	return n
}
