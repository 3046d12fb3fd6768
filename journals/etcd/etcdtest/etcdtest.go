// Package etcdtest runs real etcd members in the test's process
// (go.etcd.io/etcd/server/v3/embed), on 127.0.0.1 ports chosen free at run
// time, with their data in the test's temporary directory, so that tests of
// rops on etcd need nothing installed. Members can be stopped and started
// again on their data, to show what rops does when etcd fails. They can
// serve clients over TLS, require client certificates, and check users'
// passwords and permissions (Options, EnableAuth).
package etcdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/reliable-ops/rops/certs"
)

// startTimeout bounds a member's start (joining its cluster included): a
// bound against a hang, not a measure of speed.
const startTimeout = 2 * time.Minute

// Cluster is a set of etcd members started together. Its methods are safe
// for concurrent use.
type Cluster struct {
	tb      testing.TB
	opts    Options
	mu      sync.Mutex
	members []*member
}

// Options configures the members StartOptions starts.
type Options struct {
	// Configure, if not nil, is called on every member's configuration
	// before it starts (to set etcd's limits, say).
	Configure func(*embed.Config)
	// TLS, if not nil, has the members serve clients over TLS only
	// (https://), with TLS.ServerCert and TLS.ServerKey, trusting TLS.CA
	// for client certificates. Make it with certs.Generate.
	TLS *certs.Files
	// ClientCertAuth has the members refuse a client without a
	// certificate signed by TLS.CA.
	ClientCertAuth bool
}

type member struct {
	name    string
	dir     string
	client  url.URL
	peer    url.URL
	initial string
	etcd    *embed.Etcd // nil while stopped
	// held keeps a stopped member's ports bound (not listening), so that
	// another test's member started meanwhile cannot take them: a client
	// of the stopped member must find it gone (refused), not another
	// cluster there.
	held []io.Closer
}

// Start starts an etcd cluster of n members and waits until every one is
// ready; they stop when the test ends.
func Start(tb testing.TB, n int) *Cluster {
	tb.Helper()
	return StartWith(tb, n, nil)
}

// StartWith is Start with configure, if not nil, called on every member's
// configuration before it starts (to set etcd's limits, say).
func StartWith(tb testing.TB, n int, configure func(*embed.Config)) *Cluster {
	tb.Helper()
	return StartOptions(tb, n, Options{Configure: configure})
}

// StartOptions is Start with opts.
func StartOptions(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	if opts.ClientCertAuth && opts.TLS == nil {
		tb.Fatalf("etcdtest: ClientCertAuth without TLS: give the certificates too")
	}
	c := &Cluster{tb: tb, opts: opts}
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	var initial []string
	for i := range n {
		m := &member{
			name:   fmt.Sprintf("m%d", i),
			dir:    tb.TempDir(),
			client: url.URL{Scheme: scheme, Host: freeAddr(tb)},
			peer:   url.URL{Scheme: "http", Host: freeAddr(tb)},
		}
		initial = append(initial, m.name+"="+m.peer.String())
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
	}
	tb.Cleanup(func() {
		c.StopAll()
		for _, m := range c.members {
			for _, h := range m.held {
				h.Close()
			}
		}
	})
	// Members of a new cluster wait for each other: start them all, then
	// wait.
	for i := range c.members {
		c.launch(i)
	}
	for i := range c.members {
		c.wait(i)
	}
	return c
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("etcdtest: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *Cluster) launch(i int) {
	c.tb.Helper()
	m := c.members[i]
	for _, l := range m.held {
		l.Close()
	}
	m.held = nil
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.client}
	cfg.AdvertiseClientUrls = []url.URL{m.client}
	cfg.ListenPeerUrls = []url.URL{m.peer}
	cfg.AdvertisePeerUrls = []url.URL{m.peer}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = "rops-test"
	// Elections within half a second, so that a stopped member's place
	// is taken soon.
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if f := c.opts.TLS; f != nil {
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: f.ServerCert, KeyFile: f.ServerKey, TrustedCAFile: f.CA, ClientCertAuth: c.opts.ClientCertAuth}
	}
	if c.opts.Configure != nil {
		c.opts.Configure(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		c.tb.Fatalf("etcdtest: cannot start member %s: %v", m.name, err)
	}
	m.etcd = e
}

func (c *Cluster) wait(i int) {
	c.tb.Helper()
	m := c.members[i]
	select {
	case <-m.etcd.Server.ReadyNotify():
	case err := <-m.etcd.Err():
		c.tb.Fatalf("etcdtest: member %s failed: %v", m.name, err)
	case <-time.After(startTimeout):
		c.tb.Fatalf("etcdtest: member %s not ready after %v", m.name, startTimeout)
	}
}

// Endpoints returns the members' client addresses, HOST:PORT.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.client.Host)
	}
	return eps
}

// ClientTLS returns the TLS configuration of a client that the members
// accept: it trusts Options.TLS.CA and presents Options.TLS's client
// certificate. It is nil for members without TLS.
func (c *Cluster) ClientTLS() *tls.Config {
	c.tb.Helper()
	f := c.opts.TLS
	if f == nil {
		return nil
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		c.tb.Fatalf("etcdtest: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		c.tb.Fatalf("etcdtest: no certificate in %s", f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		c.tb.Fatalf("etcdtest: %v", err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// RootPassword is the password of etcd's user root once EnableAuth made
// it.
const RootPassword = "root-secret"

// User is a user EnableAuth makes.
type User struct {
	Name, Password string
	// Prefix, if not empty, is the range of keys the user may read and
	// write (only read if ReadOnly): every key that starts with it.
	// Empty: none.
	Prefix   string
	ReadOnly bool
}

// EnableAuth makes users (each with a role of its own, NAME-role, that
// may read and write its Prefix), and user root (password RootPassword,
// etcd's condition), then turns authentication on: from then on the
// members refuse a client without a user's name and password.
func (c *Cluster) EnableAuth(users ...User) {
	c.tb.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: c.ClientTLS(), DialTimeout: startTimeout, Logger: zap.NewNop()})
	if err != nil {
		c.tb.Fatalf("etcdtest: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	must := func(_ any, err error) {
		c.tb.Helper()
		if err != nil {
			c.tb.Fatalf("etcdtest: cannot enable auth: %v", err)
		}
	}
	must(cli.UserAdd(ctx, "root", RootPassword))
	must(cli.UserGrantRole(ctx, "root", "root"))
	for _, u := range users {
		role := u.Name + "-role"
		must(cli.RoleAdd(ctx, role))
		if u.Prefix != "" {
			perm := clientv3.PermReadWrite
			if u.ReadOnly {
				perm = clientv3.PermRead
			}
			must(cli.RoleGrantPermission(ctx, role, u.Prefix, clientv3.GetPrefixRangeEnd(u.Prefix), clientv3.PermissionType(perm)))
		}
		must(cli.UserAdd(ctx, u.Name, u.Password))
		must(cli.UserGrantRole(ctx, u.Name, role))
	}
	must(cli.AuthEnable(ctx))
}

// CommittedIndex returns the index of the last raft entry member i knows
// committed, or 0 while it is stopped: the count of writes (and other
// proposals) the cluster has agreed on, for benchmarks to divide.
func (c *Cluster) CommittedIndex(i int) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[i]; m.etcd != nil {
		return m.etcd.Server.CommittedIndex()
	}
	return 0
}

// Stop stops member i, as a crash of its process would (its data stays).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[i]; m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
		for _, addr := range []string{m.client.Host, m.peer.Host} {
			if h, err := hold(addr); err == nil {
				m.held = append(m.held, h)
			}
		}
	}
}

// StopAll stops every member.
func (c *Cluster) StopAll() {
	for i := range c.members {
		c.Stop(i)
	}
}

// Restart starts the stopped members again on their data and waits until
// they are ready (which needs a quorum of them running).
func (c *Cluster) Restart() {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var started []int
	for i, m := range c.members {
		if m.etcd == nil {
			c.launch(i)
			started = append(started, i)
		}
	}
	for _, i := range started {
		c.wait(i)
	}
}
