package plugins

import (
	"context"
	"io"

	"github.com/reliable-ops/rops/core"
)

// NewRegistry returns an empty registry, so that external tests register
// drivers without touching the package's own.
func NewRegistry() *registry { return &registry{} }

func (r *registry) Register(scheme string, d Driver) { r.register(scheme, d) }

func (r *registry) Open(ctx context.Context, spec string, env Env) (core.Node, io.Closer, error) {
	return r.open(ctx, spec, env)
}

func (r *registry) OpenTarget(ctx context.Context, specs []string, env Env) (*Target, error) {
	return r.openTarget(ctx, specs, env)
}

var (
	DeriveSeed = deriveSeed
	Quote      = quote
)
