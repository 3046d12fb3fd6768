package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/nemesis"
	"github.com/reliable-ops/rops/plugins"
)

// The environment variables that hold a token itself, as
// --admin-token-file and --write-token-file (or ROPS_ADMIN_TOKEN_FILE and
// ROPS_WRITE_TOKEN_FILE) name a file holding one.
const (
	adminTokenEnv = "ROPS_ADMIN_TOKEN"
	writeTokenEnv = "ROPS_WRITE_TOKEN"
)

// readToken returns the token in the file of flag, else in the variable
// env, else the one in the file of the target's config key, else "". A
// token file holds the token alone; the spaces and newlines around it are
// dropped. An empty or unreadable file, or a token that cannot go in an
// HTTP header, is an error naming the file or variable but never the
// token.
func readToken(flag, file, env, key, keyFile string) (string, error) {
	from := flag + " " + file
	switch {
	case file != "":
	case os.Getenv(env) != "":
		return checkToken(env, strings.TrimSpace(os.Getenv(env)))
	case keyFile != "":
		from, file = key+" "+keyFile, keyFile
	default:
		return "", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot read the token file of %s: %v; give a readable file holding the token", from, err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("the token file of %s is empty: write the token in it, such as one of openssl rand -hex 32", from)
	}
	return checkToken(from, tok)
}

// checkToken returns tok, or an error if it holds a character that an
// Authorization header cannot carry.
func checkToken(from, tok string) (string, error) {
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return "", fmt.Errorf("the token of %s holds a space, control or non-ASCII character, which an HTTP header cannot carry: use printable ASCII, such as one of openssl rand -hex 32", from)
		}
	}
	return tok, nil
}

// adminToken returns the admin token of --admin-token-file or
// ROPS_ADMIN_TOKEN, else of the target's admin_token_file (tc nil: none).
func (g *Globals) adminToken(configFile string, tc *TargetConfig) (string, error) {
	var keyFile string
	if tc != nil {
		keyFile = configPath(configFile, tc.AdminTokenFile)
	}
	return readToken("--admin-token-file", g.AdminTokenFile, adminTokenEnv, "admin_token_file of "+configFile, keyFile)
}

// writeToken returns the write token of --write-token-file or
// ROPS_WRITE_TOKEN, else of the target's write_token_file (tc nil: none).
func (g *Globals) writeToken(configFile string, tc *TargetConfig) (string, error) {
	var keyFile string
	if tc != nil {
		keyFile = configPath(configFile, tc.WriteTokenFile)
	}
	return readToken("--write-token-file", g.WriteTokenFile, writeTokenEnv, "write_token_file of "+configFile, keyFile)
}

// configPath returns a path of the config file, relative to its
// directory.
func configPath(configFile, path string) string {
	if path == "" || filepath.IsAbs(path) || configFile == "" {
		return path
	}
	return filepath.Join(filepath.Dir(configFile), path)
}

// isLoopback reports whether addr's host is a loopback one: localhost,
// 127.0.0.0/8 or ::1. An empty host, all addresses, is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// clientTokens reads the tokens a job sends to the target tc: it makes
// env's HTTP client send the write token, if any, and returns the admin
// token.
func (g *Globals) clientTokens(tc *TargetConfig, env *plugins.Env) (string, error) {
	write, err := g.writeToken(g.Config, tc)
	if err != nil {
		return "", err
	}
	env.HTTP = httpapi.WithBearer(env.HTTP, write)
	return g.adminToken(g.Config, tc)
}

// adminProbeTimeout bounds checkChaosToken's requests.
const adminProbeTimeout = 5 * time.Second

// checkChaosToken asks, before a check with --chaos at rate starts, the
// admin API of each of cl's remote nodes for the faults, so that a server
// that wants an admin token the check lacks, or has another, stops it at
// once rather than halfway. Other failures are left to the chaos itself,
// which goes on without the node.
func checkChaosToken(ctx context.Context, cl *Cluster, rate float64) error {
	if rate <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, adminProbeTimeout)
	defer cancel()
	for _, n := range cl.Nodes() {
		if _, ok := faults.Faulty(n); ok {
			continue
		}
		c, ok := core.NodeAs[*httpapi.Client](n)
		if !ok {
			continue
		}
		a := &nemesis.Admin{URL: c.URL(), Node: c.Name(), HTTP: cl.http, Token: cl.adminToken}
		if _, err := a.Faults(ctx); errors.Is(err, nemesis.ErrNoAdminToken) || errors.Is(err, nemesis.ErrWrongAdminToken) {
			return usageError(fmt.Errorf("--chaos on %s: %w", c.Name(), err))
		}
	}
	return nil
}

// serveGuard is what rops serve checks of every request: its tokens and
// allowed host names.
type serveGuard struct {
	admin, write string
	allowed      []string
}

// guard reads serve's tokens, and refuses --admin without one on an
// address other than loopback.
func (c *ServeCmd) guard(g *Globals) (serveGuard, error) {
	admin, err := g.adminToken("", nil)
	if err != nil {
		return serveGuard{}, err
	}
	if c.Admin && admin == "" && !isLoopback(c.Addr) {
		return serveGuard{}, fmt.Errorf("--admin on %s without a token would let anyone who can reach the address change the nodes' faults: give one with --admin-token-file FILE or %s, or listen on loopback (--addr 127.0.0.1:PORT)", c.Addr, adminTokenEnv)
	}
	write, err := g.writeToken("", nil)
	if err != nil {
		return serveGuard{}, err
	}
	return serveGuard{admin: admin, write: write, allowed: c.AllowedHost}, nil
}

// apply puts the guard in opts, for a server asked to listen on addr and
// listening on bound.
func (sg serveGuard) apply(opts *httpapi.ServerOptions, addr, bound string) {
	opts.AdminToken, opts.WriteToken = sg.admin, sg.write
	allowed := slices.Clone(sg.allowed)
	if h, _, err := net.SplitHostPort(bound); err == nil {
		allowed = append(allowed, h)
	}
	opts.HostCheck = &httpapi.HostCheck{Listen: addr, Allowed: allowed}
}
