package memory

import (
	"context"
	"io"
	"net/url"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/plugins"
)

// The driver registers itself, as litestream's backends do, so that a
// program that opens memory:// specs imports this package and no other
// driver.
func init() {
	plugins.Register("memory", openSpec)
}

// openSpec opens memory://NAME: a fresh, empty store in memory that lasts
// as long as the node, wrapped by the registered wrappers (the faults).
// tombstones=off keeps none, as the original server.
func openSpec(_ context.Context, u *url.URL, env plugins.Env) (core.Node, io.Closer, error) {
	spec, err := plugins.ParseNodeSpec(u, env, "tombstones")
	if err != nil {
		return nil, nil, err
	}
	keep, err := spec.OnOff("tombstones", true)
	if err != nil {
		return nil, nil, err
	}
	opts := Options{}
	if !keep {
		opts.MaxTombstones = -1
	}
	n, c := spec.New(NewWithOptions(opts), nil)
	return n, c, nil
}
