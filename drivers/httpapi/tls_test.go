package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reliable-ops/rops/certs"
	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

// genCerts writes a new test PKI under a temporary directory.
func genCerts(tb testing.TB, opts certs.Options) certs.Files {
	tb.Helper()
	f, err := certs.Generate(filepath.Join(tb.TempDir(), "pki"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// syncBuffer is a log's buffer, safe for the server's goroutines.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed at the next write; nil until waited on
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

// waitFor waits until the buffer holds s: a server logs a refused
// handshake on its own goroutine, after the client has its answer. It
// gives up, failing the test, after 30 s: a bound, not a measure.
func (b *syncBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		b.mu.Lock()
		if strings.Contains(b.buf.String(), s) {
			b.mu.Unlock()
			return
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the log never said %q:\n%s", s, b.String())
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveTLS serves nodes over HTTPS with s on 127.0.0.1 until the test
// ends, logging to logs, and returns the base URL (https://.../v1).
func serveTLS(tb testing.TB, s *httpapi.ServerTLS, nodes []core.Node, logs io.Writer) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	srv := &http.Server{
		Handler:   httpapi.NewServer(nodes, httpapi.ServerOptions{}),
		TLSConfig: s.Config(log),
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeTLS(ln, "", "")
	}()
	tb.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String() + "/v1"
}

// tlsClient returns an HTTP client with opts' TLS that opens a new
// connection for each request, so that each sees the server's current
// certificate.
func tlsClient(tb testing.TB, opts httpapi.ClientTLS) *http.Client {
	tb.Helper()
	cfg, err := opts.Config()
	if err != nil {
		tb.Fatal(err)
	}
	hc := httpapi.NewHTTPClientTLS(1, cfg)
	hc.Transport.(*http.Transport).DisableKeepAlives = true
	return hc
}

// createOver sends one create of id to node01 at base through hc.
func createOver(tb testing.TB, base string, hc *http.Client, id core.GroupID) error {
	tb.Helper()
	c, err := httpapi.NewClient(base, "node01", httpapi.ClientOptions{HTTP: hc})
	if err != nil {
		tb.Fatal(err)
	}
	return c.Create(tb.Context(), id, "1700000000.000000")
}

// wantCount fails the test unless node holds n records.
func wantCount(tb testing.TB, node core.Node, n int) {
	tb.Helper()
	if got, err := node.Count(tb.Context()); err != nil || got != n {
		tb.Fatalf("%s holds %d records (%v), want %d", node.Name(), got, err, n)
	}
}

// TestServerTLSReload: replacing the certificate and key files under a
// running server gives new connections the new certificate, without a
// restart; a broken new file keeps the last good one, and both are logged.
func TestServerTLSReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	a, err := certs.Generate(dir, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	caA, err := os.ReadFile(a.CA)
	if err != nil {
		t.Fatal(err)
	}
	keepA := filepath.Join(t.TempDir(), "ca-a.pem")
	if err := os.WriteFile(keepA, caA, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := httpapi.NewServerTLS(a.ServerCert, a.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	nodes := memoryNodes("node01")
	var logs syncBuffer
	base := serveTLS(t, s, nodes, &logs)
	trustA := tlsClient(t, httpapi.ClientTLS{CAFile: keepA})
	if err := createOver(t, base, trustA, "1"); err != nil {
		t.Fatalf("create with the first CA: %v", err)
	}

	// A new CA and server certificate, in the same files.
	if _, err := certs.Generate(dir, certs.Options{}); err != nil {
		t.Fatal(err)
	}
	err = createOver(t, base, trustA, "2")
	if te, ok := errors.AsType[*httpapi.TLSError](err); !ok || !strings.Contains(err.Error(), "certificate signed by unknown authority: give the CA with --ca-file") {
		t.Fatalf("create trusting the old CA after the reload: %v (TLSError %v), want unknown authority", err, te)
	}
	trustB := tlsClient(t, httpapi.ClientTLS{CAFile: a.CA}) // the new CA, same path
	if err := createOver(t, base, trustB, "3"); err != nil {
		t.Fatalf("create with the new CA: %v", err)
	}
	if !strings.Contains(logs.String(), "msg=\"tls reloaded\"") {
		t.Errorf("the reload is not logged:\n%s", logs.String())
	}

	// A broken certificate: the last good one is served.
	if err := os.WriteFile(a.ServerCert, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := createOver(t, base, trustB, "4"); err != nil {
		t.Fatalf("create after a broken certificate file: %v", err)
	}
	if got := logs.String(); !strings.Contains(got, "tls reload failed") || !strings.Contains(got, a.ServerCert) {
		t.Errorf("the failed reload is not logged, naming the file:\n%s", got)
	}
	if reloaded, err := s.Reload(); reloaded || err != nil {
		t.Errorf("Reload of the same broken file = %v, %v; want no new attempt", reloaded, err)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("the log shows a key:\n%s", logs.String())
	}
	wantCount(t, nodes[0], 3)
}

// TestServerTLSBadFiles: NewServerTLS names the file it cannot use.
func TestServerTLSBadFiles(t *testing.T) {
	f := genCerts(t, certs.Options{})
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name                string
		cert, key, clientCA string
		want                string
	}{
		{"missing cert", missing, f.ServerKey, "", "cannot read the certificate: open " + missing},
		{"missing key", f.ServerCert, missing, "", "cannot read the key: open " + missing},
		{"garbage cert", garbage, f.ServerKey, "", "certificate " + garbage + " holds no PEM certificate"},
		{"key of another", f.ServerCert, f.ClientKey, "", "private key does not match public key"},
		{"garbage client CA", f.ServerCert, f.ServerKey, garbage, "client CA file " + garbage + " holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := httpapi.NewServerTLS(tc.cert, tc.key, tc.clientCA)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewServerTLS = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestTLSRefusals: each way TLS stops a request is a TLSError saying how
// to fix it, and the node holds nothing.
func TestTLSRefusals(t *testing.T) {
	good := genCerts(t, certs.Options{})
	other := genCerts(t, certs.Options{})
	expired := genCerts(t, certs.Options{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})

	mtls, err := httpapi.NewServerTLS(good.ServerCert, good.ServerKey, good.CA)
	if err != nil {
		t.Fatal(err)
	}
	nodes := memoryNodes("node01")
	var logs syncBuffer
	mtlsURL := serveTLS(t, mtls, nodes, &logs)
	old, err := httpapi.NewServerTLS(expired.ServerCert, expired.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	expiredURL := serveTLS(t, old, nodes, &logs)
	elsewhere := genCerts(t, certs.Options{Hosts: []string{"nodes.example"}})
	named, err := httpapi.NewServerTLS(elsewhere.ServerCert, elsewhere.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	namedURL := serveTLS(t, named, nodes, &logs)
	plain := serve(t, httpapi.NewServer(nodes, httpapi.ServerOptions{}))
	plain.Config.ErrorLog = log.New(io.Discard, "", 0)

	for _, tc := range []struct {
		name string
		url  string
		opts httpapi.ClientTLS
		want string
	}{
		{"server cert of another CA", mtlsURL, httpapi.ClientTLS{CAFile: other.CA, CertFile: good.ClientCert, KeyFile: good.ClientKey},
			"x509: certificate signed by unknown authority: give the CA with --ca-file"},
		{"system roots", mtlsURL, httpapi.ClientTLS{CertFile: good.ClientCert, KeyFile: good.ClientKey},
			"certificate signed by unknown authority: give the CA with --ca-file"},
		{"expired server cert", expiredURL, httpapi.ClientTLS{CAFile: expired.CA},
			"certificate has expired or is not yet valid"},
		{"server cert for another host", namedURL, httpapi.ClientTLS{CAFile: elsewhere.CA},
			"x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs: the server's certificate is not for this host"},
		{"no client cert", mtlsURL, httpapi.ClientTLS{CAFile: good.CA},
			"the server refused the TLS connection (tls: certificate required): give a client certificate signed by its --client-ca with --cert-file and --key-file"},
		{"client cert of another CA", mtlsURL, httpapi.ClientTLS{CAFile: good.CA, CertFile: other.ClientCert, KeyFile: other.ClientKey},
			"the server trusts no CA that signed the client certificate " + other.ClientCert},
		{"plain HTTP to HTTPS", strings.Replace(mtlsURL, "https:", "http:", 1), httpapi.ClientTLS{},
			"the server speaks HTTPS, and refused a plain HTTP request (400): write https:// in the node's URL"},
		{"HTTPS to plain HTTP", strings.Replace(plain.URL, "http:", "https:", 1) + "/v1", httpapi.ClientTLS{CAFile: good.CA},
			"the server speaks plain HTTP, not HTTPS: write http:// in the node's URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := createOver(t, tc.url, tlsClient(t, tc.opts), "1")
			if _, ok := errors.AsType[*httpapi.TLSError](err); !ok || core.ErrorCode(err) != core.ERejected || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create = %v (code %s), want a rejected TLSError with %q", err, core.ErrorCode(err), tc.want)
			}
			wantCount(t, nodes[0], 0)
		})
	}

	t.Run("mutual TLS", func(t *testing.T) {
		hc := tlsClient(t, httpapi.ClientTLS{CAFile: good.CA, CertFile: good.ClientCert, KeyFile: good.ClientKey})
		if err := createOver(t, mtlsURL, hc, "ok"); err != nil {
			t.Fatal(err)
		}
		wantCount(t, nodes[0], 1)
	})
}

// TestServerRefusesClientCert: the server itself refuses a client that
// presents a certificate of another CA, or none, whatever the client
// checks: nothing is applied, and the handshake's failure is logged.
func TestServerRefusesClientCert(t *testing.T) {
	good := genCerts(t, certs.Options{})
	other := genCerts(t, certs.Options{})
	s, err := httpapi.NewServerTLS(good.ServerCert, good.ServerKey, good.CA)
	if err != nil {
		t.Fatal(err)
	}
	nodes := memoryNodes("node01")
	var logs syncBuffer
	base := serveTLS(t, s, nodes, &logs)
	otherCert, err := tls.LoadX509KeyPair(other.ClientCert, other.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := httpapi.ClientTLS{CAFile: good.CA}.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want string
	}{
		{"another CA", &otherCert, "certificate signed by unknown authority"},
		{"none", &tls.Certificate{}, "client didn't provide a certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfg.Clone()
			// Sent whatever the server asks for, as an attacker would.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			hc := httpapi.NewHTTPClientTLS(1, cfg)
			hc.Transport.(*http.Transport).DisableKeepAlives = true
			if err := createOver(t, base, hc, "1"); err == nil {
				t.Fatal("create succeeded, want the server's refusal")
			}
			wantCount(t, nodes[0], 0)
			logs.waitFor(t, tc.want) // the server's log says why
		})
	}
}

// TestClientTLSBadFiles: ClientTLS.Config names the file it cannot use.
func TestClientTLSBadFiles(t *testing.T) {
	f := genCerts(t, certs.Options{})
	for _, tc := range []struct {
		name string
		opts httpapi.ClientTLS
		want string
	}{
		{"missing CA", httpapi.ClientTLS{CAFile: f.CA + ".missing"}, "cannot read the CA file: open " + f.CA + ".missing"},
		{"key as CA", httpapi.ClientTLS{CAFile: f.ClientKey}, "CA file " + f.ClientKey + " holds no PEM certificate"},
		{"cert alone", httpapi.ClientTLS{CertFile: f.ClientCert}, "client certificate " + f.ClientCert + " has no key"},
		{"key alone", httpapi.ClientTLS{KeyFile: f.ClientKey}, "client key " + f.ClientKey + " has no certificate"},
		{"mismatched", httpapi.ClientTLS{CertFile: f.ClientCert, KeyFile: f.ServerKey}, "private key does not match public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.opts.Config(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Config = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestPlainToHTTPSKnown: once a server answered a plain HTTP request as an
// HTTPS server, the pool's other plain requests to it fail the same way
// without being sent, as not applied.
func TestPlainToHTTPSKnown(t *testing.T) {
	f := genCerts(t, certs.Options{})
	s, err := httpapi.NewServerTLS(f.ServerCert, f.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	nodes := memoryNodes("node01")
	var logs syncBuffer
	base := strings.Replace(serveTLS(t, s, nodes, &logs), "https:", "http:", 1)
	hc := tlsClient(t, httpapi.ClientTLS{})
	const refused = "client sent an HTTP request to an HTTPS server"
	for i, id := range []core.GroupID{"1", "2", "3"} {
		err := createOver(t, base, hc, id)
		if _, ok := errors.AsType[*httpapi.TLSError](err); !ok || core.ErrorCode(err) != core.ERejected {
			t.Fatalf("create %d = %v, want a rejected TLSError", i, err)
		}
		if i == 0 {
			logs.waitFor(t, refused)
		}
		if got := strings.Count(logs.String(), refused); got != 1 {
			t.Fatalf("after create %d the server refused %d plain requests, want 1 (the first):\n%s", i, got, logs.String())
		}
	}
	wantCount(t, nodes[0], 0)
}

// TestRefusedHandshakeKnown: once a server refused the pool's handshake
// (no client certificate), the pool's other requests to it fail the same
// way without a new connection, as not applied.
func TestRefusedHandshakeKnown(t *testing.T) {
	f := genCerts(t, certs.Options{})
	s, err := httpapi.NewServerTLS(f.ServerCert, f.ServerKey, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	nodes := memoryNodes("node01")
	var logs syncBuffer
	base := serveTLS(t, s, nodes, &logs)
	hc := tlsClient(t, httpapi.ClientTLS{CAFile: f.CA})
	const refused = "client didn't provide a certificate"
	for i, id := range []core.GroupID{"1", "2", "3"} {
		err := createOver(t, base, hc, id)
		if te, ok := errors.AsType[*httpapi.TLSError](err); !ok || core.ErrorCode(err) != core.ERejected || !strings.Contains(te.Reason, "certificate required") {
			t.Fatalf("create %d = %v, want a rejected TLSError, certificate required", i, err)
		}
		if i == 0 {
			logs.waitFor(t, refused)
		}
		if got := strings.Count(logs.String(), refused); got != 1 {
			t.Fatalf("after create %d the server refused %d handshakes, want 1 (the first):\n%s", i, got, logs.String())
		}
	}
	wantCount(t, nodes[0], 0)
}
