package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/plugins"
)

// ServeCmd serves nodes over the original system's HTTP API. The nodes
// have the faults the global fault flags give local nodes.
type ServeCmd struct {
	Addr  string   `default:"127.0.0.1:8080" help:"Address to listen on (port 0: any free port; the address is printed)."`
	Nodes []string `default:"node01,node02,node03" sep:"," help:"Names of the nodes to serve, chosen by the 'node' header."`
	Store string   `enum:"memory,badger" default:"badger" help:"Storage of the nodes: badger under --store-dir, or memory."`
	// StoreDir keeps a running server's stores apart from the local
	// target's (--data itself), which a badger store locks while open.
	StoreDir string `type:"path" placeholder:"DIR" predictor:"dir" help:"Directory of the badger nodes' stores, one per node (default: the serve directory under --data, apart from the local target's stores; give --data's own directory to serve the local target's data)."`
	Admin    bool   `help:"Serve GET/PUT /admin/faults to read or change each node's faults while running. Give it a token (--admin-token-file or ROPS_ADMIN_TOKEN), which every admin request must then carry as Authorization: Bearer <token>: without one, --admin is refused on an address other than loopback, and advised on loopback too, where every local user and process may call it."`
	// AllowedHost are the names the Host check lets in besides the
	// server's own (httpapi.HostCheck).
	AllowedHost []string `placeholder:"NAME" env:"ROPS_ALLOWED_HOSTS" sep:"," help:"Also answer requests whose Host header is NAME (repeatable, or comma-separated in the variable; '*' for any). Requests for other names are refused with 403, as a web page could send them through DNS rebinding: by default only localhost, the loopback addresses, the listen address (any IP address if it is 0.0.0.0 or ::) and the original's node<N>.app.internal.com."`
	// Original lets rops' own client be tried against the original's
	// protocol, its fallback path, with real processes and faults.
	Original bool `help:"Speak the original server's protocol: no timestamp in GET /group/<id>, no /groups, 400 exists for a replayed create, no Rops- headers (no 'not applied' 503), and no tombstones."`
	// AccessLog lets an operator keep the log to the server's own lines
	// under load, where the access log is most of it.
	AccessLog bool `negatable:"" default:"true" env:"ROPS_ACCESS_LOG" help:"Log a line per request, with gunicorn's fields (the health probes at DEBUG, so not shown). --no-access-log keeps only the server's own lines: where it listens, certificates reloaded, shutdown."`

	ServeTLSFlags `embed:""`
}

// serveGlobals are the global flags, besides the faults, that rops serve
// uses; it refuses the others given on its command line, which are the
// client's (serveGlobalsHelp says so in its help).
var serveGlobals = []string{"data", "seed", "log-format", "admin-token-file", "write-token-file", "help", "version"}

// serveGlobalsHelp is the detail of rops serve --help.
const serveGlobalsHelp = "Of the global flags, serve uses --data (where --store-dir is by default), --seed, --log-format, the faults of local nodes, and --admin-token-file and --write-token-file (the tokens it wants); the others are a client's, and serve refuses them on its command line (and ignores their ROPS_* variables)."

// Help is the detail of rops serve --help: which global flags it uses.
func (c *ServeCmd) Help() string { return serveGlobalsHelp }

// Validate refuses a client's global flag given to rops serve, which
// would do nothing: its ROPS_* variable, perhaps set for the client in
// the same shell, is let through.
func (c *ServeCmd) Validate(k *kong.Context) error {
	for _, p := range k.Path {
		f := p.Flag
		if f == nil || !slices.Contains(k.Model.Flags, f) || slices.Contains(serveGlobals, f.Name) || isFaultFlag(f.Name) {
			continue
		}
		name := "--" + f.Name
		switch {
		case f.Name == "output":
			return errors.New("-o/--output is the format of a command's output, and rops serve prints only its log: give --log-format json for a log in JSON")
		case f.Negated:
			name = "--no-" + f.Name
		case f.Short != 0:
			name = fmt.Sprintf("-%c/%s", f.Short, name)
		}
		return fmt.Errorf("%s is a client's flag, and rops serve does not use it: leave it out (serve uses --data, --seed, --log-format, the fault flags and the token files)", name)
	}
	return nil
}

// Timeouts of the server: slow clients cannot hold connections, and a
// shutdown waits this long for requests in flight.
const (
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 10 * time.Second
)

// Run serves until the context ends (SIGINT or SIGTERM), then finishes the
// requests in flight and closes the stores.
func (c *ServeCmd) Run(ctx context.Context, g *Globals, io *IO) error {
	if c.GenTestCerts != "" {
		return c.genTestCerts(c.Addr, io.Stdout)
	}
	faults := g.faults()
	if err := faults.Validate(); err != nil {
		return usageError(err)
	}
	guard, err := c.guard(g)
	if err != nil {
		return usageError(err)
	}
	tlsFiles, err := c.serverTLS()
	if err != nil {
		return err
	}
	env := plugins.Env{Seed: g.seed(), Defaults: faults.Values()}
	specs := make([]string, len(c.Nodes))
	for i, name := range c.Nodes {
		specs[i] = c.Store + "://" + name
		if c.Original {
			// The original fences nothing.
			specs[i] += "?tombstones=off"
		}
	}
	if c.Store == "badger" {
		dir, err := c.storeDir(g)
		if err != nil {
			return err
		}
		env.DataDir = dir
	}
	target, err := plugins.OpenTarget(ctx, specs, env)
	if err != nil {
		return usageError(err)
	}
	// Closing the nodes also drops the late and duplicate writes they
	// still hold, as a server that stops loses its queue.
	defer target.Close()
	if err := g.setDown(target.Nodes); err != nil {
		return usageError(err)
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return usageError(fmt.Errorf("cannot listen on %s: %w; choose another with --addr", c.Addr, err))
	}
	logw := newBufferedLog(io.Stderr, logFlushInterval)
	defer logw.Stop() // last: after the shutdown's line
	log := g.logger(logw)
	opts := httpapi.ServerOptions{Admin: c.Admin, Original: c.Original, Metrics: true}
	if c.AccessLog {
		opts.AccessLog = log
	}
	guard.apply(&opts, c.Addr, ln.Addr().String())
	handler := httpapi.NewServer(target.Nodes, opts)
	defer handler.Close() // after the shutdown below
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    httpapi.DefaultMaxHeaderBytes,
		IdleTimeout:       idleTimeout,
	}
	scheme, serveFn := serveOver(srv, ln, tlsFiles, log)
	log.Info("listening", "url", scheme+"://"+ln.Addr().String(), "nodes", strings.Join(c.Nodes, ","),
		"store", c.Store, "random_behavior", g.RandomBehavior, "seed", g.Seed)
	logw.Sync() // where it listens is read at once, by people and scripts
	errc := make(chan error, 1)
	go func() { errc <- serveFn() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutdown", "reason", context.Cause(ctx).Error())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running (a hung node) are cut off.
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// storeDir returns --store-dir, or the serve directory under --data.
func (c *ServeCmd) storeDir(g *Globals) (string, error) {
	if c.StoreDir != "" {
		return c.StoreDir, nil
	}
	dir, err := g.dataDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "serve"), nil
}
