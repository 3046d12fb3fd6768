package httpapi

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reliable-ops/rops/core"
)

// ClientTLS is what a Client's https:// connections trust and present.
// The zero value trusts the system's roots and presents no certificate.
type ClientTLS struct {
	// CAFile is a PEM file of the authorities that sign the servers'
	// certificates, trusted instead of the system's roots; empty, the
	// system's.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key,
	// presented to a server that asks for one (mutual TLS); both or
	// neither.
	CertFile, KeyFile string
	// InsecureSkipVerify checks no server certificate at all: anyone on
	// the path can read and change what is sent. Only for an explicit
	// user choice.
	InsecureSkipVerify bool
}

// Config returns the tls.Config of o, reading its files once. Its errors
// name the file at fault. A server that asks for a client certificate and
// trusts none of the CAs that signed o's is refused in the handshake,
// before any request is written (a TLSError): were it left to the server,
// its refusal would come after the request was sent (TLS 1.3), as one
// whose outcome is unknown. Without a certificate in o, none is sent, as
// a server may ask for one without requiring it; a server that requires
// one refuses the handshake (see refusals).
func (o ClientTLS) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // an explicit choice, warned of by the CLI
	if o.CAFile != "" {
		pool, err := loadCAs(o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := loadKeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if err := cri.SupportsCertificate(&cert); err != nil {
				return nil, &TLSError{Reason: fmt.Sprintf("the server trusts no CA that signed the client certificate %s (%v)", o.CertFile, err),
					Hint: "give one signed by the CA of its --client-ca with --cert-file and --key-file"}
			}
			return &cert, nil
		}
	case o.CertFile != "":
		return nil, fmt.Errorf("client certificate %s has no key: give its private key too", o.CertFile)
	case o.KeyFile != "":
		return nil, fmt.Errorf("client key %s has no certificate: give the client certificate too", o.KeyFile)
	}
	return cfg, nil
}

// NewHTTPClientTLS is NewHTTPClient whose https:// connections use
// tlsConfig (nil: Go's default, the system's roots).
func NewHTTPClientTLS(maxConns int, tlsConfig *tls.Config) *http.Client {
	c := NewHTTPClient(maxConns)
	c.Transport.(*http.Transport).TLSClientConfig = tlsConfig
	return c
}

// loadCAs reads a PEM file of CA certificates into a pool.
func loadCAs(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate: give the authority's certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return pool, nil
}

// loadKeyPair reads a PEM certificate and its private key, saying which
// file is wrong.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot read the certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot read the key: %w", err)
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return tls.Certificate{}, fmt.Errorf("certificate %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", certFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s with key %s: %v", certFile, keyFile, err)
	}
	return cert, nil
}

// ServerTLS is the TLS of a server whose certificate, key and client CA
// are files that may be replaced while it runs: each new connection
// looks at them (a stat of each), and the first after a change reloads
// them. A change that does not load (a key not yet matching its new
// certificate, a broken file) keeps the last good ones; the next change
// is tried again. It is safe for concurrent use.
type ServerTLS struct {
	certFile, keyFile, clientCAFile string

	mu    sync.Mutex // one reload at a time
	seen  []os.FileInfo
	state atomic.Pointer[tls.Config]
}

// NewServerTLS loads certFile and keyFile, a PEM certificate and its key,
// and if clientCAFile is not empty the PEM authorities whose client
// certificates the server requires (mutual TLS). Its errors name the file
// at fault.
func NewServerTLS(certFile, keyFile, clientCAFile string) (*ServerTLS, error) {
	s := &ServerTLS{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	seen := s.stat()
	cfg, err := s.load()
	if err != nil {
		return nil, err
	}
	s.seen = seen
	s.state.Store(cfg)
	return s, nil
}

// Config returns the tls.Config to serve with: each connection gets the
// current certificate, reloaded first if its files changed. Reloads, and
// reloads that failed, are logged to log (nil: not logged).
func (s *ServerTLS) Config(log *slog.Logger) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			reloaded, err := s.Reload()
			switch {
			case log == nil:
			case err != nil:
				log.Warn("tls reload failed, serving the last good certificate", "error", err.Error())
			case reloaded:
				leaf := s.Certificate()
				log.Info("tls reloaded", "cert", s.certFile, "subject", leaf.Subject.String(),
					"issuer", leaf.Issuer.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
			}
			return s.state.Load(), nil
		},
	}
}

// Certificate returns the server certificate being served now.
func (s *ServerTLS) Certificate() *x509.Certificate {
	return s.state.Load().Certificates[0].Leaf
}

// Reload reloads the files if any of them changed (another file, size or
// modification time) since they were last looked at, and reports whether
// it did. It returns the error of a reload that failed, after which the
// last good files are still served, and the same change is not tried
// again.
func (s *ServerTLS) Reload() (reloaded bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stat()
	if sameFiles(s.seen, now) {
		return false, nil
	}
	s.seen = now
	cfg, err := s.load()
	if err != nil {
		return false, err
	}
	s.state.Store(cfg)
	return true, nil
}

// stat returns the files' infos, nil for one that cannot be read.
func (s *ServerTLS) stat() []os.FileInfo {
	var infos []os.FileInfo
	for _, f := range []string{s.certFile, s.keyFile, s.clientCAFile} {
		if f == "" {
			infos = append(infos, nil)
			continue
		}
		fi, _ := os.Stat(f)
		infos = append(infos, fi)
	}
	return infos
}

// sameFiles reports whether a and b are the same files, unchanged.
func sameFiles(a, b []os.FileInfo) bool {
	for i := range a {
		switch {
		case a[i] == nil && b[i] == nil:
		case a[i] == nil || b[i] == nil:
			return false
		case !os.SameFile(a[i], b[i]) || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()):
			return false
		}
	}
	return true
}

// load reads the files into a server's tls.Config.
func (s *ServerTLS) load() (*tls.Config, error) {
	cert, err := loadKeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
		Certificates: []tls.Certificate{cert},
	}
	if s.clientCAFile != "" {
		pool, err := loadCAs(s.clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client %w", err)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// TLSError is the cause of a request that a node never took because the
// two ends did not agree on TLS: the node's certificate is not trusted,
// the node refused the client's, or one end speaks HTTPS and the other
// plain HTTP. Nothing was applied, and retrying cannot help.
type TLSError struct {
	// Reason is what went wrong, and Hint how to fix it.
	Reason, Hint string
	// Err is the TLS or HTTP error, if any.
	Err error
	// refused: the server said so (see refusals).
	refused bool
}

// Error returns the reason, then the hint.
func (e *TLSError) Error() string {
	if e.Hint == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Hint
}

// Unwrap returns Err.
func (e *TLSError) Unwrap() error { return e.Err }

// tlsError returns the TLSError that err, a failed request's, is, or nil.
func tlsError(err error) *TLSError {
	if te, ok := errors.AsType[*TLSError](err); ok {
		return te // the client's own refusal (ClientTLS.Config)
	}
	if cv, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		e := &TLSError{Reason: cv.Err.Error(), Err: err}
		var invalid x509.CertificateInvalidError
		switch {
		case errors.As(cv.Err, new(x509.UnknownAuthorityError)):
			e.Hint = "give the CA with --ca-file (or ca_file in the target's config)"
		case errors.As(cv.Err, &invalid) && invalid.Reason == x509.Expired:
			e.Hint = "the server's certificate has expired or is not valid yet: renew it (or check the clocks)"
		case errors.As(cv.Err, new(x509.HostnameError)):
			e.Hint = "the server's certificate is not for this host: connect by a name it is for, or make one for this host (rops serve --gen-test-certs DIR --cert-host NAME)"
		}
		return e
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return &TLSError{Reason: "the server speaks plain HTTP, not HTTPS", Hint: "write http:// in the node's URL, or serve TLS (rops serve --tls-cert FILE --tls-key FILE)", Err: err}
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "remote error" {
		return &TLSError{refused: true, Reason: "the server refused the TLS connection (" + op.Err.Error() + ")",
			Hint: "give a client certificate signed by its --client-ca with --cert-file and --key-file (or cert_file and key_file in the target's config)", Err: err}
	}
	return nil
}

// plainToHTTPS is the start of what Go's HTTPS server answers a plain HTTP
// request with (400).
const plainToHTTPS = "Client sent an HTTP request to an HTTPS server"

// schemeError is the TLSError of an HTTPS server's answer to a plain HTTP
// request, or nil for any other answer.
func schemeError(status int, body []byte) *TLSError {
	if status != http.StatusBadRequest || len(body) < len(plainToHTTPS) || string(body[:len(plainToHTTPS)]) != plainToHTTPS {
		return nil
	}
	return &TLSError{refused: true, Reason: "the server speaks HTTPS, and refused a plain HTTP request (400)", Hint: "write https:// in the node's URL (and give its CA with --ca-file)"}
}

// refusals holds, by pool (*http.Client) and server (host:port), how the
// server refused a request of the pool because of TLS: it answered a
// plain HTTP request as an HTTPS server does, or refused the handshake
// (an alert, such as "certificate required"). Such a server takes nothing
// of the pool, so every request of the pool to it is known not applied:
// those in flight when the refusal came (cancelled, or cut off by the
// server's close) as well as those after it, which are not sent. Without
// this, an operation whose requests to other nodes of the server were
// cancelled by the first refusal would be left pending, as requests
// written and never answered.
//
// A rops server that answers a write 401 (its write token, realm "rops")
// refuses every write of the pool the same way, as they all carry the
// same token, before it looks at them: such a refusal is kept too, for
// writes only (writes set in the key), as a core error.
var refusals sync.Map // serverKey → *TLSError, or error for writes

// anyRefusal is set before the first refusal is stored: until then every
// request is spared its lookups in refusals.
var anyRefusal atomic.Bool

type serverKey struct {
	hc     *http.Client
	host   string
	writes bool
}

// refused notes that c's server refused c's pool for te's reason.
func (c *Client) refused(te *TLSError) {
	anyRefusal.Store(true)
	refusals.Store(serverKey{c.http, c.host, false}, te)
}

// refusedWrites notes that c's server refuses the writes of c's pool with
// err (see refusals).
func (c *Client) refusedWrites(err error) {
	anyRefusal.Store(true)
	refusals.Store(serverKey{c.http, c.host, true}, err)
}

// knownRefusal returns, if c's server refused c's pool (see refusals), the
// error of any request of c to it, and for a write, if it refuses the
// pool's writes, that refusal; else nil.
func (c *Client) knownRefusal(write bool) error {
	if !anyRefusal.Load() {
		return nil
	}
	if te, ok := refusals.Load(serverKey{c.http, c.host, false}); ok {
		return c.tlsFailure(te.(*TLSError))
	}
	if write {
		if err, ok := refusals.Load(serverKey{c.http, c.host, true}); ok {
			return err.(error)
		}
	}
	return nil
}

// tlsFailure returns the core error of a request of c stopped by te.
func (c *Client) tlsFailure(te *TLSError) error {
	return &core.Error{Code: core.ERejected, Err: te, Message: fmt.Sprintf("%s at %s: %v", c.name, c.base, te)}
}
