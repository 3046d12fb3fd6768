package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/certs"
)

// tlsTarget writes a config file, in dir, of target lab: the nodes
// node01..03 of the server at base (such as https://127.0.0.1:PORT/v1),
// with keys such as ca_file.
func tlsTarget(t *testing.T, dir, base string, keys map[string]string) string {
	t.Helper()
	lab := map[string]any{"nodes": []string{base + "?node=node01", base + "?node=node02", base + "?node=node03"}}
	for k, v := range keys {
		lab[k] = v
	}
	data, err := json.Marshal(map[string]any{"targets": map[string]any{"lab": lab}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "targets-"+strings.Join(strings.Fields(strings.ReplaceAll(base, "/", " ")), "-")+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeMutualTLS: a real rops serve with --tls-cert, --tls-key and
// --client-ca takes a create job of a client with the CA and a client
// certificate in its config; every other client is refused (a plain HTTP
// one, one trusting other roots, one with a client certificate of another
// CA or none, whatever it checks itself) and the nodes do not change.
// New certificates written under the running server are served to new
// connections, without a restart.
func TestServeMutualTLS(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	f, err := certs.Generate(pki, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.Generate(filepath.Join(t.TempDir(), "other"), certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", nil, "--store", "memory", "--tls-cert", f.ServerCert, "--tls-key", f.ServerKey, "--client-ca", f.CA)
	base := "https://" + srv.addr + "/v1"
	good := tlsTarget(t, dir, base, map[string]string{"ca_file": "pki/ca.pem", "cert_file": "pki/client.pem", "key_file": "pki/client-key.pem"})
	data := t.TempDir()

	if code, out, errs := runStderr(t, "--data", data, "--config", good, "-t", "lab", "create"); code != 0 {
		t.Fatalf("create over mutual TLS: exit %d\n%s%s", code, out, errs)
	}
	// stats reads every node through the same TLS: 100 records each.
	wantStats := func(t *testing.T) {
		t.Helper()
		code, out, errs := runStderr(t, "--data", data, "--config", good, "-t", "lab", "-o", "json", "stats")
		if code != 0 || !strings.HasPrefix(out, `{"consistent":true,"nodes":{"node01":100,"node02":100,"node03":100}`) {
			t.Fatalf("stats: exit %d\n%s%s\nwant 100 records on each node, consistent", code, out, errs)
		}
	}
	wantStats(t)

	for _, tc := range []struct {
		name string
		base string
		keys map[string]string
		want string
	}{
		{"plain HTTP", "http://" + srv.addr + "/v1", nil, "the server speaks HTTPS, and refused a plain HTTP request (400)"},
		{"system roots", base, map[string]string{"cert_file": f.ClientCert, "key_file": f.ClientKey}, "x509: certificate signed by unknown authority at " + base + ": give the CA with --ca-file"},
		{"another CA", base, map[string]string{"ca_file": other.CA, "cert_file": f.ClientCert, "key_file": f.ClientKey}, "certificate signed by unknown authority"},
		{"no client certificate", base, map[string]string{"ca_file": f.CA}, "the server refused the TLS connection (tls: certificate required) at " + base + ": give a client certificate signed by its --client-ca"},
		{"client certificate of another CA", base, map[string]string{"ca_file": f.CA, "cert_file": other.ClientCert, "key_file": other.ClientKey}, "the server trusts no CA that signed the client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tlsTarget(t, t.TempDir(), tc.base, tc.keys)
			code, out, errs := runStderr(t, "--data", t.TempDir(), "--config", cfg, "-t", "lab", "create", "--range", "100-199")
			if code != 6 || !strings.Contains(errs, tc.want) {
				t.Fatalf("create: exit %d\n%s%s\nwant exit 6 (no node reached) and %q", code, out, errs, tc.want)
			}
			wantStats(t)
		})
	}

	// An attacker's client sends a certificate of another CA, or none,
	// whatever the server asks for: the server refuses it.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	otherCert, err := tls.LoadX509KeyPair(other.ClientCert, other.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]*tls.Certificate{"another CA": &otherCert, "none": {}} {
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
			RootCAs:              pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		}}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/group", strings.NewReader(`{"groupId":"100"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("node", "node01")
		req.Header.Set("Content-Type", "application/json")
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("a client certificate of %s: %s, want the handshake refused", name, resp.Status)
		}
	}
	wantStats(t)

	// New certificates of a new CA in the same files: new connections get
	// them, without a restart. The config's ca_file is the new CA now.
	oldCA := filepath.Join(t.TempDir(), "old-ca.pem")
	if err := os.WriteFile(oldCA, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.Generate(pki, certs.Options{}); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runStderr(t, "--data", data, "--config", good, "-t", "lab", "ping"); code != 0 {
		t.Fatalf("ping with the new CA and client certificate: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := runStderr(t, "--data", data, "--config", good, "-t", "lab", "--ca-file", oldCA, "ping")
	if want := "certificate signed by unknown authority"; code != 6 || !strings.Contains(errs, want) {
		t.Fatalf("ping trusting the old CA after the reload: exit %d\n%s%s\nwant exit 6 and %q", code, out, errs, want)
	}
	wantStats(t)
}

// TestServeExpiredCert: a client refuses a server whose certificate has
// expired, saying so, and sends nothing.
func TestServeExpiredCert(t *testing.T) {
	f, err := certs.Generate(filepath.Join(t.TempDir(), "pki"), certs.Options{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", nil, "--store", "memory", "--tls-cert", f.ServerCert, "--tls-key", f.ServerKey)
	base := "https://" + srv.addr + "/v1"
	code, out, errs := runStderr(t, "--data", t.TempDir(), "--remote", base, "-t", "remote", "--ca-file", f.CA, "create-one", "1")
	if want := "certificate has expired or is not yet valid"; code != 6 || !strings.Contains(errs+out, want) {
		t.Fatalf("create-one against an expired certificate: exit %d\n%s%s\nwant exit 6 and %q", code, out, errs, want)
	}
	// Nothing was created: the nodes, read without checking the
	// certificate, hold nothing.
	code, out, errs = runStderr(t, "--data", t.TempDir(), "--remote", base, "-t", "remote", "--insecure-skip-verify", "-o", "json", "stats")
	if code != 0 || !strings.Contains(out, `"nodes":{"node01":0,"node02":0,"node03":0}`) || !strings.HasPrefix(errs, "rops: --insecure-skip-verify: the nodes' certificates are not checked") {
		t.Fatalf("stats --insecure-skip-verify: exit %d\n%s%s\nwant no records, and the warning", code, out, errs)
	}
}
