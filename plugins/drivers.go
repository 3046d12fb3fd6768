package plugins

import (
	"context"
	"io"
	"net/url"
	"path/filepath"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/badger"
	"github.com/reliable-ops/rops/nodes/memory"
)

func init() {
	Register("memory", openMemory)
	Register("badger", openBadger)
}

// openMemory opens memory://NAME: a fresh, empty store in memory that lasts
// as long as the node. tombstones=off keeps none (see tombstones).
func openMemory(_ context.Context, u *url.URL, env Env) (core.Node, io.Closer, error) {
	spec, err := ParseNodeSpec(u, env, "tombstones")
	if err != nil {
		return nil, nil, err
	}
	keep, err := tombstones(spec)
	if err != nil {
		return nil, nil, err
	}
	opts := memory.Options{}
	if !keep {
		opts.MaxTombstones = -1
	}
	return spec.New(memory.NewWithOptions(opts)), nil, nil
}

// tombstones reads a store spec's tombstones=on|off: whether the store keeps
// the tombstones that fence late writes (on, the default), or none, as the
// original server (off).
func tombstones(spec NodeSpec) (bool, error) {
	v, ok := spec.Query["tombstones"]
	if !ok {
		return true, nil
	}
	switch v[0] {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, core.Errorf(core.EInvalid, "tombstones=%s: give on (the default) or off", v[0])
}

// openBadger opens badger://NAME: a badger store in env.DataDir/NAME, or in
// the directory that dir= names; tombstones=off keeps none.
func openBadger(_ context.Context, u *url.URL, env Env) (core.Node, io.Closer, error) {
	spec, err := ParseNodeSpec(u, env, "dir", "tombstones")
	if err != nil {
		return nil, nil, err
	}
	keep, err := tombstones(spec)
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
	var opts []badger.Option
	if !keep {
		opts = append(opts, badger.WithoutTombstones())
	}
	store, err := badger.Open(dir, opts...)
	if err != nil {
		return nil, nil, err
	}
	return spec.New(store), store, nil
}
