package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

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
	StoreDir string `type:"path" placeholder:"DIR" help:"Directory of the badger nodes' stores, one per node (default: the serve directory under --data, apart from the local target's stores; give --data's own directory to serve the local target's data)."`
	Admin    bool   `help:"Serve GET/PUT /admin/faults to read or change each node's faults while running."`
	// Original lets rops' own client be tried against the original's
	// protocol, its fallback path, with real processes and faults.
	Original bool `help:"Speak the original server's protocol: no timestamp in GET /group/<id>, no /groups, 400 exists for a replayed create, no Rops- headers (no 'not applied' 503), and no tombstones."`

	ServeTLSFlags `embed:""`
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
	srv := &http.Server{
		Handler:           httpapi.NewServer(target.Nodes, httpapi.ServerOptions{Admin: c.Admin, AccessLog: log, Original: c.Original, Metrics: true}),
		ReadHeaderTimeout: readHeaderTimeout,
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
