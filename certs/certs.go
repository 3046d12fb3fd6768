// Package certs writes a fresh test PKI as PEM files: a certificate
// authority, a server certificate it signed for given hosts, and a client
// certificate it signed, with their ECDSA P-256 keys. It is for tests and
// for trying TLS out (such as an etcd journal with mutual TLS); a real
// deployment's certificates come from its own authority.
package certs

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names Generate writes in its directory.
const (
	CAFile         = "ca.pem"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server-key.pem"
	ClientCertFile = "client.pem"
	ClientKeyFile  = "client-key.pem"
)

// Defaults of Options.
const (
	DefaultValidity   = 365 * 24 * time.Hour
	DefaultCommonName = "rops"
)

// DefaultHosts are the hosts of the server certificate when Options.Hosts
// is empty: the loopback addresses and localhost.
var DefaultHosts = []string{"127.0.0.1", "::1", "localhost"}

// Options configures Generate. The zero value gives certificates valid for
// a year from a minute ago, for the loopback host, with client "rops".
type Options struct {
	// Hosts are the IP addresses or DNS names the server certificate is
	// for (its subject alternative names). Default DefaultHosts.
	Hosts []string
	// NotBefore is when every certificate starts to be valid. Zero: a
	// minute ago, so that a clock a little behind accepts them.
	NotBefore time.Time
	// Validity is how long every certificate is valid from NotBefore.
	// Zero: DefaultValidity. A NotBefore and Validity that end in the past
	// give expired certificates.
	Validity time.Duration
	// CommonName is the client certificate's common name (etcd takes it
	// as the user name when it authenticates clients by certificate).
	// Default DefaultCommonName.
	CommonName string
}

// Files are the paths of the PEM files Generate wrote.
type Files struct {
	// CA is the authority's certificate, which signed the other two.
	CA string
	// ServerCert and ServerKey are the server's certificate (for server
	// authentication, for Options.Hosts) and its private key.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are the client's certificate (for client
	// authentication, named Options.CommonName) and its private key.
	ClientCert, ClientKey string
}

// Generate makes a new certificate authority, a server certificate and a
// client certificate it signs, and writes them to dir (created if need
// be, 0700) as the files named by CAFile and the others, replacing any
// there; private keys are written 0600. The CA's key is not kept: nothing
// else can be signed by it. It is safe for concurrent use on different
// directories.
func Generate(dir string, opts Options) (Files, error) {
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	for _, h := range hosts {
		if h == "" {
			return Files{}, errors.New("certs: an empty host: give IP addresses or DNS names")
		}
	}
	if opts.Validity < 0 {
		return Files{}, fmt.Errorf("certs: validity %v is negative: give a positive duration, or zero for %v", opts.Validity, DefaultValidity)
	}
	notBefore := opts.NotBefore
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Minute)
	}
	notAfter := notBefore.Add(cmp.Or(opts.Validity, DefaultValidity))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("certs: %w", err)
	}

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("certs: %w", err)
	}
	// Each CA has a name of its own: a TLS client picks the certificate
	// to present by the names of the CAs the server trusts.
	caID, err := rand.Int(rand.Reader, big.NewInt(1<<32))
	if err != nil {
		return Files{}, fmt.Errorf("certs: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: fmt.Sprintf("rops test CA %08x", caID), Organization: []string{"rops test"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Files{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Files{}, fmt.Errorf("certs: %w", err)
	}

	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0], Organization: []string{"rops test"}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cmp.Or(opts.CommonName, DefaultCommonName), Organization: []string{"rops test"}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}

	files := Files{
		CA:         filepath.Join(dir, CAFile),
		ServerCert: filepath.Join(dir, ServerCertFile),
		ServerKey:  filepath.Join(dir, ServerKeyFile),
		ClientCert: filepath.Join(dir, ClientCertFile),
		ClientKey:  filepath.Join(dir, ClientKeyFile),
	}
	if err := writePEM(files.CA, "CERTIFICATE", caDER, 0o644); err != nil {
		return Files{}, err
	}
	for _, leaf := range []struct {
		tmpl      *x509.Certificate
		cert, key string
	}{{server, files.ServerCert, files.ServerKey}, {client, files.ClientCert, files.ClientKey}} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return Files{}, fmt.Errorf("certs: %w", err)
		}
		der, err := sign(leaf.tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return Files{}, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return Files{}, fmt.Errorf("certs: %w", err)
		}
		if err := writePEM(leaf.key, "PRIVATE KEY", keyDER, 0o600); err != nil {
			return Files{}, err
		}
		if err := writePEM(leaf.cert, "CERTIFICATE", der, 0o644); err != nil {
			return Files{}, err
		}
	}
	return files, nil
}

// sign signs tmpl with parent's key, giving it a random serial number.
func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("certs: cannot sign %q: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

// writePEM writes one PEM block to path with perm, replacing the file: a
// key is never readable by others, even for a moment.
func writePEM(path, kind string, der []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer os.Remove(tmp.Name()) // if not renamed
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: %w", err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: kind, Bytes: der}); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: cannot write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
