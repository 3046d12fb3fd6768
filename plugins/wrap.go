package plugins

import (
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core"
)

// Wrapper wraps the store of every local node (one a driver builds with
// NodeSpec.New) in a decorator that the node's spec configures: the
// injected faults of decorators/faults are one. A decorator registers itself with
// RegisterWrapper from its own package, as a driver does, so that this
// package links none and a program gets those it imports.
type Wrapper struct {
	// Keys are the settings of a node spec that the wrapper reads, in the
	// order errors list them. ParseNodeSpec accepts them for every local
	// node, and Env.Defaults may give them.
	Keys []string
	// Parse reads one node's settings and returns what wraps its store, or
	// an EInvalid error that says what to fix. It runs before the driver
	// opens the store, so that a bad setting costs no open.
	Parse func(s Settings) (WrapFunc, error)
}

// WrapFunc wraps the store of one node, returning the node and what closes
// the wrapper (nil if nothing does). NodeSpec.New closes it before the
// store, so a wrapper may still use its store while it closes.
type WrapFunc func(store core.Store) (core.Node, io.Closer)

// Settings are what a Wrapper reads of one local node.
type Settings struct {
	// Name is the node's name.
	Name string
	// Values hold those of the wrapper's Keys that the node's spec gives,
	// or else Env.Defaults does: one value each, as written in a spec.
	Values url.Values
	// Env is what the node shares with the others of its target.
	Env Env
}

// Seed returns the node's seed, from Env.Seed and the node's name: the same
// for the same pair, and different for nodes of one run, so that they do not
// fail in lockstep.
func (s Settings) Seed() uint64 { return deriveSeed(s.Env.Seed, s.Name) }

// wrappers are the registered wrappers, in the order they registered, the
// order in which they wrap a store and list their keys.
var wrappers struct {
	mu   sync.RWMutex
	list []Wrapper
}

// RegisterWrapper makes NodeSpec.New wrap every local node's store with w,
// over the wrappers registered before it. It panics if w has no Parse, or
// a key that is empty or another wrapper's: all are programming errors. It is
// safe for concurrent use, but meant for init.
func RegisterWrapper(w Wrapper) {
	if w.Parse == nil {
		panic("plugins: RegisterWrapper of a wrapper with no Parse")
	}
	wrappers.mu.Lock()
	defer wrappers.mu.Unlock()
	for _, k := range w.Keys {
		if k == "" {
			panic("plugins: RegisterWrapper of an empty key")
		}
		if slices.Contains(wrapperKeys(wrappers.list), k) {
			panic("plugins: RegisterWrapper of key " + quote(k) + ", which another wrapper reads")
		}
	}
	w.Keys = slices.Clone(w.Keys)
	wrappers.list = append(wrappers.list, w)
}

// registeredWrappers returns the wrappers registered so far.
func registeredWrappers() []Wrapper {
	wrappers.mu.RLock()
	defer wrappers.mu.RUnlock()
	return slices.Clone(wrappers.list)
}

// wrapperKeys returns the keys of ws, in order.
func wrapperKeys(ws []Wrapper) []string {
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.Keys...)
	}
	return keys
}

// New returns the node s names over store, wrapped by every registered
// wrapper as the spec's settings say, and the closer that closes the
// wrappers, outermost first, then closer (which may be nil). The closer is
// nil only if nothing needs closing. A driver returns both from Open.
func (s NodeSpec) New(store core.Store, closer io.Closer) (core.Node, io.Closer) {
	if len(s.wraps) == 0 {
		return storeNode{name: s.Name, Store: store}, closer
	}
	var n core.Node
	var cs closers
	inner := store
	for _, wrap := range s.wraps {
		var c io.Closer
		n, c = wrap(inner)
		inner = n
		if c != nil {
			cs = append(cs, c)
		}
	}
	slices.Reverse(cs)
	if closer != nil {
		cs = append(cs, closer)
	}
	switch len(cs) {
	case 0:
		return n, nil
	case 1:
		return n, cs[0]
	}
	return n, cs
}

// closers close in order, all of them, and return their errors joined.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// storeNode is a store named, the node of a local spec when no wrapper is
// registered. It passes on the optional interfaces that core asks a node
// for, so that the store fences, removes and scans as it would wrapped.
type storeNode struct {
	name string
	core.Store
}

var (
	_ core.Node    = storeNode{}
	_ core.Fencer  = storeNode{}
	_ core.Remover = storeNode{}
	_ core.Scanner = storeNode{}
)

// Name returns the node's name.
func (n storeNode) Name() string { return n.name }

// Fences reports whether the store keeps tombstones.
func (n storeNode) Fences() bool {
	f, ok := n.Store.(core.Fencer)
	return ok && f.Fences()
}

// TombstoneTTL returns how long the store keeps a tombstone, if it says
// (core.DefaultTombstoneTTL if not).
func (n storeNode) TombstoneTTL() time.Duration {
	if t, ok := n.Store.(core.TombstoneKeeper); ok {
		return t.TombstoneTTL()
	}
	return core.DefaultTombstoneTTL
}

// Removes reports whether the store serves Remove.
func (n storeNode) Removes() bool {
	r, ok := n.Store.(core.Remover)
	return ok && r.Removes()
}

// Remove removes the record from the store if it is older than before, or
// returns an EUnsupported error if the store does not serve Remove.
func (n storeNode) Remove(ctx context.Context, id core.GroupID, before core.Token) (core.Token, error) {
	r, ok := n.Store.(core.Remover)
	if !ok || !r.Removes() {
		return "", core.Errorf(core.EUnsupported, "%s cannot delete without a read: its store keeps no tombstones", n.name)
	}
	return r.Remove(ctx, id, before)
}

// Scan streams the store's records, page by page if it cannot stream.
func (n storeNode) Scan(ctx context.Context, after core.GroupID, fn func(core.Record) bool) error {
	return core.Scan(ctx, n.Store, after, fn)
}
