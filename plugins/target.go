package plugins

import (
	"context"
	"errors"
	"io"

	"github.com/reliable-ops/rops/core"
)

// Target is a set of open nodes: the nodes an operation spans.
type Target struct {
	// Nodes are the nodes in the order of their specs.
	Nodes []core.Node

	closers []io.Closer
}

// OpenTarget opens a node for each spec with Open. Node names must be unique
// within the target. If anything fails it closes the nodes it opened and
// returns the error, so no directory stays locked. The caller must Close the
// target.
func OpenTarget(ctx context.Context, specs []string, env Env) (*Target, error) {
	return defaultRegistry.openTarget(ctx, specs, env)
}

func (r *registry) openTarget(ctx context.Context, specs []string, env Env) (*Target, error) {
	if len(specs) == 0 {
		return nil, core.Errorf(core.EInvalid, "no node specs: give at least one, such as memory://node01")
	}
	t := &Target{}
	fail := func(err error) (*Target, error) {
		if cerr := t.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	specOf := make(map[string]string, len(specs))
	for _, spec := range specs {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, c, err := r.open(ctx, spec, env)
		if err != nil {
			return fail(err)
		}
		if c != nil {
			t.closers = append(t.closers, c)
		}
		if first, dup := specOf[n.Name()]; dup {
			return fail(core.Errorf(core.EInvalid, "node %s appears twice in the target (specs %q and %q): node names must be unique", n.Name(), first, spec))
		}
		specOf[n.Name()] = spec
		t.Nodes = append(t.Nodes, n)
	}
	return t, nil
}

// Close closes every node that holds resources, last opened first, and
// returns their errors joined. Closing again does nothing.
func (t *Target) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i].Close())
	}
	t.closers = nil
	return errors.Join(errs...)
}
