package plugins

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
)

// fakeStore is a store that fences, removes and scans, and says so.
type fakeStore struct{ core.Store }

func (fakeStore) Fences() bool                { return true }
func (fakeStore) TombstoneTTL() time.Duration { return time.Minute }
func (fakeStore) Removes() bool               { return true }
func (fakeStore) Remove(context.Context, core.GroupID, core.Token) (core.Token, error) {
	return "1.000001", nil
}
func (fakeStore) Scan(context.Context, core.GroupID, func(core.Record) bool) error {
	return errors.New("scanned")
}

// TestNewWithoutWrappers checks that a store no wrapper wraps is still a
// node that fences, removes and scans as its store does.
func TestNewWithoutWrappers(t *testing.T) {
	n, c := NodeSpec{Name: "node01"}.New(fakeStore{}, nil)
	if c != nil {
		t.Fatalf("closer %T, want none: nothing holds anything", c)
	}
	if got, want := n.Name(), "node01"; got != want {
		t.Fatalf("Name()=%q, want %q", got, want)
	}
	if !core.Fences(n) {
		t.Fatal("the node hides that its store fences")
	}
	if ttl, ok := core.NodeAs[interface{ TombstoneTTL() time.Duration }](n); !ok || ttl.TombstoneTTL() != time.Minute {
		t.Fatal("the node hides its store's tombstone TTL")
	}
	if !core.Removes(n) {
		t.Fatal("the node hides that its store removes")
	}
	if err := core.Scan(t.Context(), n, "", func(core.Record) bool { return true }); err == nil || err.Error() != "scanned" {
		t.Fatalf("Scan=%v, want the store's own", err)
	}
}

// TestNewWrapsInOrder checks that wrappers wrap in the order they
// registered, and close outermost first, then the driver's closer.
func TestNewWrapsInOrder(t *testing.T) {
	var closed []string
	wrap := func(name string) WrapFunc {
		return func(store core.Store) (core.Node, io.Closer) {
			return namedNode{name: name, Store: store}, closerFunc(func() error { closed = append(closed, name); return nil })
		}
	}
	spec := NodeSpec{Name: "node01", wraps: []WrapFunc{wrap("inner"), wrap("outer")}}
	n, c := spec.New(fakeStore{}, closerFunc(func() error { closed = append(closed, "store"); return nil }))
	if got, want := n.Name(), "outer"; got != want {
		t.Fatalf("outermost node %q, want %q", got, want)
	}
	if inner := n.(namedNode).Store.(namedNode); inner.name != "inner" {
		t.Fatalf("the outer wrapper wraps %q, want inner", inner.name)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(closed, ","), "outer,inner,store"; got != want {
		t.Fatalf("closed %s, want %s", got, want)
	}
}

type namedNode struct {
	name string
	core.Store
}

func (n namedNode) Name() string { return n.name }

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func TestRegisterWrapperPanics(t *testing.T) {
	parse := func(Settings) (WrapFunc, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		w    Wrapper
	}{
		{"no parse", Wrapper{Keys: []string{"x_rate"}}},
		{"empty key", Wrapper{Keys: []string{""}, Parse: parse}},
		{"key of another", Wrapper{Keys: []string{"taken_rate"}, Parse: parse}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrappers.mu.Lock()
			saved := wrappers.list
			wrappers.list = []Wrapper{{Keys: []string{"taken_rate"}, Parse: parse}}
			wrappers.mu.Unlock()
			defer func() {
				wrappers.mu.Lock()
				wrappers.list = saved
				wrappers.mu.Unlock()
				if recover() == nil {
					t.Fatalf("RegisterWrapper(%+v) did not panic", tc.w.Keys)
				}
			}()
			RegisterWrapper(tc.w)
		})
	}
}
