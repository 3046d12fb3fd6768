package faults_test

import (
	"context"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/plugins"
)

// A local driver over a map store, as memory's, for the tests to open
// specs with the faults this package registers.
func init() {
	plugins.Register("local", func(_ context.Context, u *url.URL, env plugins.Env) (core.Node, io.Closer, error) {
		s, err := plugins.ParseNodeSpec(u, env)
		if err != nil {
			return nil, nil, err
		}
		n, c := s.New(newMapStore(), nil)
		return n, c, nil
	})
}

// openSpec opens spec with the local driver.
func openSpec(t *testing.T, spec string, env plugins.Env) core.Node {
	t.Helper()
	n, c, err := plugins.Open(t.Context(), spec, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return n
}

// failures returns which of 64 Gets on n failed, as a string.
func failures(t *testing.T, n core.Node) string {
	t.Helper()
	var b strings.Builder
	for i := range 64 {
		if _, err := n.Get(t.Context(), core.GroupID(strconv.Itoa(i))); core.ErrorCode(err) == core.ETransient {
			b.WriteByte('x')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// TestSpecSeed checks that a node from a spec draws its faults from the
// seed plugins derives from the run's seed and its name, or from seed=.
func TestSpecSeed(t *testing.T) {
	half := faults.Faults{ErrorRate: 0.5}
	env := plugins.Env{Seed: 99, Defaults: half.Values()}
	derived := plugins.Settings{Name: "node01", Env: env}.Seed()
	for _, tc := range []struct {
		spec string
		seed uint64
	}{
		{"local://node01", derived},
		{"local://node01?seed=7", 7},
	} {
		want := failures(t, faults.New("node01", newMapStore(), faults.Options{Faults: half, Seed: tc.seed}))
		if got := failures(t, openSpec(t, tc.spec, env)); got != want {
			t.Errorf("%s failed\n%s, want, as seed %d,\n%s", tc.spec, got, tc.seed, want)
		}
	}
}

// TestSpecKeys checks that a spec takes every setting of the table, and
// seed.
func TestSpecKeys(t *testing.T) {
	var want []string
	for _, s := range faults.Settings() {
		want = append(want, s.Key)
	}
	want = append(want, "seed")
	if got := faults.SpecKeys(); !slices.Equal(got, want) {
		t.Fatalf("SpecKeys()=%v, want %v", got, want)
	}
}
