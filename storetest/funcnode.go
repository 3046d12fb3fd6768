package storetest

import (
	"context"

	"github.com/reliable-ops/rops/core"
)

// FuncNode is a core.Node whose calls run the functions set, for the tests
// of a wrapper (the faults, the request log) that must see exactly what its
// node returned. A test sets only the functions it needs; calling one not
// set panics.
type FuncNode struct {
	NodeName string
	CreateFn func(ctx context.Context, id core.GroupID, token core.Token) error
	DeleteFn func(ctx context.Context, id core.GroupID, token core.Token) error
	GetFn    func(ctx context.Context, id core.GroupID) (core.Record, error)
	ListFn   func(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error)
	CountFn  func(ctx context.Context) (int, error)
}

// Name returns NodeName.
func (m *FuncNode) Name() string { return m.NodeName }

// Create calls CreateFn.
func (m *FuncNode) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	return m.CreateFn(ctx, id, token)
}

// Delete calls DeleteFn.
func (m *FuncNode) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	return m.DeleteFn(ctx, id, token)
}

// Get calls GetFn.
func (m *FuncNode) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	return m.GetFn(ctx, id)
}

// List calls ListFn.
func (m *FuncNode) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	return m.ListFn(ctx, after, limit)
}

// Count calls CountFn.
func (m *FuncNode) Count(ctx context.Context) (int, error) { return m.CountFn(ctx) }
