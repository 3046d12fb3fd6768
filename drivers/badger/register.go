package badger

import (
	"context"
	"io"
	"net/url"
	"path/filepath"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/plugins"
)

// The driver registers itself, as litestream's backends do, so that only a
// program that imports this package links badger.
func init() {
	plugins.Register("badger", openSpec)
}

// openSpec opens badger://NAME: a badger store in env.DataDir/NAME, or in
// the directory that dir= names, wrapped by the registered wrappers (the
// faults); tombstones=off keeps none.
func openSpec(_ context.Context, u *url.URL, env plugins.Env) (core.Node, io.Closer, error) {
	spec, err := plugins.ParseNodeSpec(u, env, "dir", "tombstones")
	if err != nil {
		return nil, nil, err
	}
	keep, err := spec.OnOff("tombstones", true)
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(env.DataDir, spec.Name)
	if d, ok := spec.Query["dir"]; ok {
		if d[0] == "" {
			return nil, nil, core.Errorf(core.EInvalid, "dir= is empty: give the directory to keep %s's data in, or leave dir= out to use the data directory", spec.Name)
		}
		dir = d[0]
	} else if env.DataDir == "" {
		return nil, nil, core.Errorf(core.EInvalid, "no directory for node %s: set a data directory (--data) or give one with dir=/path", spec.Name)
	}
	var opts []Option
	if !keep {
		opts = append(opts, WithoutTombstones())
	}
	store, err := Open(dir, opts...)
	if err != nil {
		return nil, nil, err
	}
	n, c := spec.New(store, store)
	return n, c, nil
}
