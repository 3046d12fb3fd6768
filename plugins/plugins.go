// Package plugins turns node specs into Nodes. A spec is a URL whose scheme
// names a driver and whose host names the node: memory://node01,
// badger://node02?error_rate=0.2. Drivers register themselves by scheme from
// their own packages, as litestream's replica clients do, so that a program
// links only the drivers it imports, and an embedder adds a kind of node
// with Register that every command taking specs can use.
//
// This package holds only the registries and what drivers share: Open,
// OpenTarget and OpenJournal, Env, the parsing of a local node's spec
// (ParseNodeSpec), and the hook by which decorators wrap local nodes' stores
// (RegisterWrapper). It imports no driver and no decorator; a test keeps it
// so. The drivers are
//
//	github.com/reliable-ops/rops/drivers/memory   memory://NAME, a node in memory that starts empty
//	github.com/reliable-ops/rops/drivers/badger   badger://NAME, a node on disk in Env.DataDir/NAME or dir=/path
//	github.com/reliable-ops/rops/drivers/httpapi  http:// and https://, a node of a rops serve server
//	github.com/reliable-ops/rops/journals/etcd     etcd://, a journal shared through etcd (RegisterJournal)
//
// and the decorator of local nodes is
//
//	github.com/reliable-ops/rops/decorators/faults   the fault settings error_rate, latency, seed, ...
//
// and a program imports those it wants for their side effect:
//
//	import _ "github.com/reliable-ops/rops/drivers/memory"
//
// With decorators/faults imported, memory and badger take fault settings that
// override Env.Defaults for that node: memory://node01?error_rate=0.2&latency=15ms&seed=7
// (see ParseNodeSpec).
package plugins

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/reliable-ops/rops/core"
)

// Env is what every node of a target shares. Drivers read it; a spec's own
// settings override it.
type Env struct {
	// DataDir holds the data of nodes that keep it on disk, one
	// directory per node.
	DataDir string
	// Seed is the run's seed. Each node's RNG is seeded from it and the
	// node's name unless its spec sets seed=, so nodes draw different but
	// reproducible faults. Zero is a seed like any other.
	Seed uint64
	// Defaults are the settings of every local node that its spec leaves
	// out, written as a spec writes them: error_rate=0.2 (see
	// faults.Faults.Values). Each must be a key of a registered Wrapper.
	Defaults url.Values
	// Clock is the local nodes' clock; nil means core.SystemClock.
	Clock core.Clock
	// Wrap, if not nil, wraps every node that Open opens, whatever its
	// driver, over what the driver returned: rops' request log
	// (reqlog.Wrap) is one. It is the program's choice for all nodes, not a
	// spec's, so it is given here rather than registered.
	Wrap func(core.Node) core.Node
	// HTTP sends the requests of every http and https node, so that they
	// share one keep-alive pool; nil means httpapi's shared client (see
	// httpapi.NewHTTPClient).
	HTTP *http.Client
	// NoBatches makes http and https nodes send each write in a request
	// of its own, even to a server that serves batches (see
	// httpapi.ClientOptions.Batch).
	NoBatches bool
}

// Driver opens the node that u describes. The closer, which may be nil,
// releases what the node holds (files, connections). Errors should be
// *core.Error values with code EInvalid for a bad spec and say how to fix it;
// Open adds the spec to their message.
type Driver func(ctx context.Context, u *url.URL, env Env) (core.Node, io.Closer, error)

// registry maps schemes to drivers. The package has one, behind Register and
// Open; tests build their own.
type registry struct {
	mu      sync.RWMutex
	drivers map[string]Driver
}

var defaultRegistry = &registry{}

// validScheme matches schemes as url.Parse returns them: RFC 3986, lowered.
var validScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

// Register makes d open the specs of scheme. It panics if scheme is empty,
// not a lower-case URL scheme, already registered, or d is nil: all are
// programming errors. It is safe for concurrent use, but meant for init.
func Register(scheme string, d Driver) { defaultRegistry.register(scheme, d) }

// Schemes returns the registered schemes, sorted.
func Schemes() []string { return defaultRegistry.schemes() }

// Open opens the node that spec describes with the driver of its scheme and,
// if env.Wrap is set, wraps it so. Errors name the spec; a spec that cannot
// be understood gives an EInvalid error that says how to write it. The
// caller must close the closer if it is not nil: for a local node whose
// wrappers hold something (a faulty node's late and duplicate writes still
// queued) it closes them before the store (see NodeSpec.New).
func Open(ctx context.Context, spec string, env Env) (core.Node, io.Closer, error) {
	return defaultRegistry.open(ctx, spec, env)
}

func (r *registry) register(scheme string, d Driver) {
	if !validScheme.MatchString(scheme) {
		panic("plugins: Register of invalid scheme " + quote(scheme) + ": use lower-case letters, digits, '+', '-' and '.', starting with a letter")
	}
	if d == nil {
		panic("plugins: Register of a nil driver for scheme " + quote(scheme))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.drivers[scheme]; dup {
		panic("plugins: Register called twice for scheme " + quote(scheme))
	}
	if r.drivers == nil {
		r.drivers = make(map[string]Driver)
	}
	r.drivers[scheme] = d
}

func (r *registry) schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := make([]string, 0, len(r.drivers))
	for k := range r.drivers {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

func (r *registry) driver(scheme string) Driver {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.drivers[scheme]
}

func (r *registry) open(ctx context.Context, spec string, env Env) (core.Node, io.Closer, error) {
	spec = strings.TrimSpace(spec)
	known := strings.Join(r.schemes(), ", ")
	if spec == "" {
		return nil, nil, core.Errorf(core.EInvalid, "empty node spec: write SCHEME://NAME, such as memory://node01 (known schemes are %s)", known)
	}
	u, err := url.Parse(spec)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, core.Errorf(core.EInvalid, "node spec %q is not a URL (%v): write SCHEME://NAME?key=value&..., such as memory://node01?error_rate=0.2", spec, err)
	}
	if u.Scheme == "" {
		return nil, nil, core.Errorf(core.EInvalid, "node spec %q has no scheme: write SCHEME://NAME, such as memory://node01 (known schemes are %s)", spec, known)
	}
	if _, ok := u.User.Password(); ok {
		spec = u.Redacted() // errors must not show a password
	}
	d := r.driver(u.Scheme)
	if d == nil {
		return nil, nil, core.Errorf(core.EInvalid, "unknown scheme %q in node spec %q: known schemes are %s", u.Scheme, spec, known)
	}
	n, c, err := d(ctx, u, env)
	if err == nil && n == nil {
		err = core.Errorf(core.EInternal, "the %s driver returned no node", u.Scheme)
	}
	if err == nil {
		err = ValidateNodeName(n.Name())
	}
	if err != nil {
		if c != nil {
			_ = c.Close()
		}
		return nil, nil, &core.Error{Code: core.ErrorCode(err), Message: "node spec " + quote(spec) + ": " + err.Error(), Err: err}
	}
	if env.Wrap != nil {
		n = env.Wrap(n)
	}
	return n, c, nil
}
