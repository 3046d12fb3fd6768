package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reliable-ops/rops/certs"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

// insecureWarning is printed on every run with --insecure-skip-verify.
const insecureWarning = "rops: --insecure-skip-verify: the nodes' certificates are not checked; anyone on the path can read and change what rops sends"

// ClientTLSFlags are the global flags of the TLS of https:// nodes. Each
// overrides its key in the target's --config entry.
type ClientTLSFlags struct {
	CAFile             string `name:"ca-file" type:"path" placeholder:"FILE" help:"PEM file of the CA that signed the https:// nodes' certificates, trusted instead of the system's roots (default: the target's ca_file in --config, else the system's roots)."`
	CertFile           string `name:"cert-file" type:"path" placeholder:"FILE" help:"PEM client certificate to present to https:// nodes that require one (rops serve --client-ca), with --key-file (default: the target's cert_file)."`
	KeyFile            string `name:"key-file" type:"path" placeholder:"FILE" help:"PEM private key of --cert-file (default: the target's key_file)."`
	InsecureSkipVerify bool   `name:"insecure-skip-verify" help:"Do not check the https:// nodes' certificates at all: anyone on the path can read and change what rops sends. Warned of on every run; give the CA with --ca-file instead."`
}

// clientTLS returns the TLS configuration of the https:// nodes of target
// tc (named name, from the config file g.Config): the flags, else the
// target's ca_file, cert_file and key_file (relative to the config file's
// directory); nil for Go's default. It prints the warning of
// --insecure-skip-verify to stderr.
func (g *Globals) clientTLS(stderr io.Writer, name string, tc TargetConfig) (*tls.Config, error) {
	if g.InsecureSkipVerify {
		fmt.Fprintln(stderr, insecureWarning)
	}
	inConfig := func(path string) string {
		if path == "" || filepath.IsAbs(path) || g.Config == "" {
			return path
		}
		return filepath.Join(filepath.Dir(g.Config), path)
	}
	opts := httpapi.ClientTLS{InsecureSkipVerify: g.InsecureSkipVerify}
	var from []string // where the files come from, for the errors
	if opts.CAFile = g.CAFile; opts.CAFile != "" {
		from = append(from, "--ca-file")
	} else if opts.CAFile = inConfig(tc.CAFile); opts.CAFile != "" {
		from = append(from, "ca_file")
	}
	if g.CertFile != "" || g.KeyFile != "" {
		opts.CertFile, opts.KeyFile = g.CertFile, g.KeyFile
		from = append(from, "--cert-file and --key-file")
	} else if tc.CertFile != "" || tc.KeyFile != "" {
		opts.CertFile, opts.KeyFile = inConfig(tc.CertFile), inConfig(tc.KeyFile)
		from = append(from, "cert_file and key_file")
	}
	cfg, err := opts.Config()
	if err != nil {
		if slices.ContainsFunc(from, func(s string) bool { return strings.HasSuffix(s, "_file") }) {
			return nil, fmt.Errorf("target %q (%s in config %s): %w", name, strings.Join(from, ", "), g.Config, err)
		}
		return nil, fmt.Errorf("%s: %w", strings.Join(from, ", "), err)
	}
	return cfg, nil
}

// tlsConfig returns the TLS configuration of cl's HTTP client, for other
// clients of the same nodes (the nemesis's admin calls).
func (cl *Cluster) tlsConfig() *tls.Config {
	if cl.http == nil {
		return nil
	}
	if t, ok := cl.http.Transport.(*http.Transport); ok {
		return t.TLSClientConfig
	}
	return nil
}

// ServeTLSFlags are rops serve's TLS flags.
type ServeTLSFlags struct {
	TLSCert  string `name:"tls-cert" type:"path" placeholder:"FILE" help:"Serve HTTPS with this PEM certificate and --tls-key. Both files (and --client-ca) are reloaded when they change, without a restart; a broken new file keeps the last good one, and is logged."`
	TLSKey   string `name:"tls-key" type:"path" placeholder:"FILE" help:"PEM private key of --tls-cert."`
	ClientCA string `name:"client-ca" type:"path" placeholder:"FILE" help:"Require of every client a certificate signed by the CA in this PEM file (mutual TLS; needs --tls-cert)."`
	// GenTestCerts is a way to try TLS out: certificates for tests, not a
	// deployment's.
	GenTestCerts string   `name:"gen-test-certs" type:"path" placeholder:"DIR" help:"Write a new test CA, a server certificate (for --addr's host, 127.0.0.1, ::1, localhost and each --cert-host) and a client certificate to DIR, print the flags that use them, and exit without serving."`
	CertHost     []string `name:"cert-host" placeholder:"NAME" help:"Another DNS name or IP address for --gen-test-certs's server certificate (repeat the flag, or separate with commas)."`
}

// serverTLS checks the TLS flags and loads the files: nil without
// --tls-cert. Its errors are usage errors naming the flag or file.
func (f *ServeTLSFlags) serverTLS() (*httpapi.ServerTLS, error) {
	switch {
	case f.TLSCert != "" && f.TLSKey == "":
		return nil, usageError(errors.New("--tls-cert needs --tls-key: give the private key of the certificate too"))
	case f.TLSKey != "" && f.TLSCert == "":
		return nil, usageError(errors.New("--tls-key needs --tls-cert: give the certificate of the key too"))
	case f.ClientCA != "" && f.TLSCert == "":
		return nil, usageError(errors.New("--client-ca needs --tls-cert and --tls-key: clients present certificates only over TLS"))
	case f.TLSCert == "":
		return nil, nil
	}
	s, err := httpapi.NewServerTLS(f.TLSCert, f.TLSKey, f.ClientCA)
	if err != nil {
		return nil, usageError(fmt.Errorf("cannot serve TLS: %w", err))
	}
	return s, nil
}

// serveOver returns the scheme of srv's URL and a function that serves srv
// on ln: over TLS with s if it is not nil, logging to log the handshakes
// that fail.
func serveOver(srv *http.Server, ln net.Listener, s *httpapi.ServerTLS, log *slog.Logger) (scheme string, run func() error) {
	if s == nil {
		return "http", func() error { return srv.Serve(ln) }
	}
	srv.TLSConfig = s.Config(log)
	// "TLS handshake error" lines: a client refused, or not speaking TLS.
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	return "https", func() error { return srv.ServeTLS(ln, "", "") }
}

// genTestCerts writes the certificates of --gen-test-certs for a server
// at addr and prints what it wrote and how to use it.
func (f *ServeTLSFlags) genTestCerts(addr string, w io.Writer) error {
	if f.TLSCert != "" || f.TLSKey != "" || f.ClientCA != "" {
		return usageError(errors.New("--gen-test-certs writes certificates and exits: give it without --tls-cert, --tls-key and --client-ca"))
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError(fmt.Errorf("--addr %s: %v; give HOST:PORT", addr, err))
	}
	var hosts []string
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		hosts = append(hosts, host)
	}
	for _, h := range append(slices.Clone(certs.DefaultHosts), f.CertHost...) {
		if h = strings.TrimSpace(h); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	files, err := certs.Generate(f.GenTestCerts, certs.Options{Hosts: hosts})
	if err != nil {
		return usageError(fmt.Errorf("--gen-test-certs %s: %w", f.GenTestCerts, err))
	}
	connect := hosts[0]
	if port == "0" {
		port = "PORT"
	}
	fmt.Fprintf(w, `Wrote a new test CA and two certificates it signed, valid for a year, to %s
(the CA's key is not kept: nothing else can be signed by it):
  %s  the CA: clients trust it (--ca-file); a server requiring client certificates too (--client-ca)
  %s  the server's certificate, for %s; its key: %s
  %s  a client certificate (%s); its key: %s
Serve HTTPS, requiring client certificates (leave out --client-ca for TLS alone):
  rops serve --addr %s --tls-cert %s --tls-key %s --client-ca %s
Connect (leave out --cert-file and --key-file without --client-ca):
  rops --remote https://%s/v1 --ca-file %s --cert-file %s --key-file %s ping
`, f.GenTestCerts, files.CA, files.ServerCert, strings.Join(hosts, ", "), files.ServerKey,
		files.ClientCert, certs.DefaultCommonName, files.ClientKey,
		addr, files.ServerCert, files.ServerKey, files.CA,
		net.JoinHostPort(connect, port), files.CA, files.ClientCert, files.ClientKey)
	return nil
}
