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
// as long as the node.
func openMemory(_ context.Context, u *url.URL, env Env) (core.Node, io.Closer, error) {
	spec, err := ParseNodeSpec(u, env)
	if err != nil {
		return nil, nil, err
	}
	return spec.New(memory.New()), nil, nil
}

// openBadger opens badger://NAME: a badger store in env.DataDir/NAME, or in
// the directory that dir= names.
func openBadger(_ context.Context, u *url.URL, env Env) (core.Node, io.Closer, error) {
	spec, err := ParseNodeSpec(u, env, "dir")
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
	store, err := badger.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	return spec.New(store), store, nil
}
