package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reliable-ops/rops/certs"
)

// load returns the certificate in the PEM file path.
func load(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func pool(t *testing.T, f certs.Files) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	p.AddCert(load(t, f.CA))
	return p
}

func TestGenerate(t *testing.T) {
	f, err := certs.Generate(t.TempDir(), certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ca := load(t, f.CA); !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("CA: IsCA=%v KeyUsage=%v, want a CA that signs certificates", ca.IsCA, ca.KeyUsage)
	}
	// The server certificate is for each default host, as a server only.
	server := load(t, f.ServerCert)
	for _, host := range certs.DefaultHosts {
		if _, err := server.Verify(x509.VerifyOptions{Roots: pool(t, f), DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: pool(t, f), DNSName: "example.com"}); err == nil {
		t.Errorf("the server certificate verifies for example.com, a host it was not made for")
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: pool(t, f), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Errorf("the server certificate verifies for client authentication")
	}
	// The client certificate is for client authentication, named rops.
	client := load(t, f.ClientCert)
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool(t, f), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool(t, f), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Errorf("the client certificate verifies for server authentication")
	}
	if got, want := client.Subject.CommonName, certs.DefaultCommonName; got != want {
		t.Errorf("client CN=%q, want %q", got, want)
	}
	// The keys go with their certificates, and only their owner reads
	// them.
	for _, pair := range [][2]string{{f.ServerCert, f.ServerKey}, {f.ClientCert, f.ClientKey}} {
		if _, err := tls.LoadX509KeyPair(pair[0], pair[1]); err != nil {
			t.Errorf("%s with %s: %v", pair[0], pair[1], err)
		}
		fi, err := os.Stat(pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("%s mode=%v, want %v", pair[1], got, want)
		}
	}
}

func TestGenerateOptions(t *testing.T) {
	f, err := certs.Generate(filepath.Join(t.TempDir(), "new", "dir"), certs.Options{Hosts: []string{"10.1.2.3", "etcd.example"}, CommonName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	server := load(t, f.ServerCert)
	for _, host := range []string{"10.1.2.3", "etcd.example"} {
		if _, err := server.Verify(x509.VerifyOptions{Roots: pool(t, f), DNSName: host}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: pool(t, f), DNSName: "127.0.0.1"}); err == nil {
		t.Errorf("the server certificate verifies for 127.0.0.1 while Hosts leaves it out")
	}
	if got, want := load(t, f.ClientCert).Subject.CommonName, "alice"; got != want {
		t.Errorf("client CN=%q, want %q", got, want)
	}
	// Another PKI's certificates do not verify against this CA.
	other, err := certs.Generate(t.TempDir(), certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, other.ClientCert).Verify(x509.VerifyOptions{Roots: pool(t, f), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("another CA's client certificate: %v, want x509.UnknownAuthorityError", err)
	}
}

// TestGenerateExpired: a validity that ended gives certificates that fail
// verification as expired, for tests of a server or client that must
// refuse them.
func TestGenerateExpired(t *testing.T) {
	f, err := certs.Generate(t.TempDir(), certs.Options{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{f.ServerCert, f.ClientCert} {
		_, err := load(t, path).Verify(x509.VerifyOptions{Roots: pool(t, f), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		var inv x509.CertificateInvalidError
		if !errors.As(err, &inv) || inv.Reason != x509.Expired {
			t.Errorf("%s: %v, want it expired", path, err)
		}
	}
}

func TestGenerateInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts certs.Options
	}{
		{"empty host", certs.Options{Hosts: []string{"127.0.0.1", ""}}},
		{"negative validity", certs.Options{Validity: -time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := certs.Generate(t.TempDir(), tc.opts); err == nil {
				t.Fatalf("Generate(%+v) succeeded, want an error", tc.opts)
			}
		})
	}
}
