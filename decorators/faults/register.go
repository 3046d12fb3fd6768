package faults

import (
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/plugins"
)

// The faults register themselves as the wrapper of local nodes' stores, as
// the drivers register their schemes, so that plugins links no decorator
// and a program whose local nodes take fault settings imports this package.
func init() {
	plugins.RegisterWrapper(plugins.Wrapper{Keys: SpecKeys(), Parse: parseSpec})
}

// seedKey is the spec setting that seeds a node's RNG, in place of the
// seed derived from the run's seed and the node's name.
const seedKey = "seed"

// SpecKeys returns the settings that a local node's spec takes for its
// faults, in the order errors list them: each Setting's key, then seed (a
// whole number, the node's seed).
func SpecKeys() []string {
	keys := make([]string, 0, len(settings)+1)
	for _, s := range settings {
		keys = append(keys, s.Key)
	}
	return append(keys, seedKey)
}

// parseSpec reads one local node's fault settings and returns what makes it
// a faulty Node.
func parseSpec(s plugins.Settings) (plugins.WrapFunc, error) {
	opts, err := specOptions(s)
	if err != nil {
		return nil, err
	}
	return func(store core.Store) (core.Node, io.Closer) {
		n := New(s.Name, store, opts)
		// Closing the node drops its late and duplicate writes still
		// queued, which must not land on a closed store.
		return n, n
	}, nil
}

// specOptions returns the options of the node s describes: the faults its
// settings give over none, and its seed, s.Seed() unless seed= gives one.
func specOptions(s plugins.Settings) (Options, error) {
	opts := Options{Seed: s.Seed(), Clock: s.Env.Clock}
	// Sorted, so that of several mistakes the same one is reported.
	for _, k := range slices.Sorted(maps.Keys(s.Values)) {
		v := s.Values.Get(k)
		if k == seedKey {
			seed, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return Options{}, core.Errorf(core.EInvalid, "seed=%s is not a seed: give a whole number from 0 to %d", v, uint64(1<<64-1))
			}
			opts.Seed = seed
			continue
		}
		st, ok := setting(k)
		if !ok {
			// plugins passes only SpecKeys.
			return Options{}, core.Errorf(core.EInternal, "faults: no setting %q", k)
		}
		if err := st.Set(&opts.Faults, v); err != nil {
			return Options{}, err
		}
	}
	if err := opts.Faults.Validate(); err != nil {
		return Options{}, err
	}
	return opts, nil
}
