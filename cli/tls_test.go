package cli

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/certs"
	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/plugins"
)

// tlsCluster is a server of memory nodes node01..03 over HTTPS, with its
// access log.
type tlsCluster struct {
	url   string // https://127.0.0.1:PORT/v1
	nodes []core.Node
	mu    sync.Mutex
	log   bytes.Buffer
}

func (c *tlsCluster) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.Write(p)
}

func (c *tlsCluster) accessLog() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// count returns the records of each node.
func (c *tlsCluster) count(t *testing.T) []int {
	t.Helper()
	var n []int
	for _, node := range c.nodes {
		k, err := node.Count(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n = append(n, k)
	}
	return n
}

// serveTLSCluster serves memory nodes with the admin API over TLS with
// f's server certificate, requiring client certificates of clientCA if it
// is not empty, until the test ends.
func serveTLSCluster(t *testing.T, f certs.Files, clientCA string) *tlsCluster {
	t.Helper()
	target, err := plugins.OpenTarget(t.Context(), []string{"memory://node01", "memory://node02", "memory://node03"}, plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	s, err := httpapi.NewServerTLS(f.ServerCert, f.ServerKey, clientCA)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &tlsCluster{url: "https://" + ln.Addr().String() + "/v1", nodes: target.Nodes}
	log := slog.New(slog.NewTextHandler(c, nil))
	srv := &http.Server{Handler: httpapi.NewServer(target.Nodes, httpapi.ServerOptions{Admin: true, AccessLog: log})}
	_, serveFn := serveOver(srv, ln, s, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = serveFn()
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return c
}

// writeTLSConfig writes a config file of target lab at c, with keys
// (ca_file and so on) as given, into dir.
func writeTLSConfig(t *testing.T, dir string, c *tlsCluster, keys map[string]string) string {
	t.Helper()
	lab := map[string]any{"nodes": []string{c.url + "?node=node01", c.url + "?node=node02", c.url + "?node=node03"}}
	for k, v := range keys {
		lab[k] = v
	}
	data, err := json.Marshal(map[string]any{"targets": map[string]any{"lab": lab}})
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestClientTLSConfig: a target's ca_file, cert_file and key_file, relative
// to the config file, make a job over mutual TLS; the flags override them;
// without the client certificate, or trusting another CA, the job reaches
// no node (exit 6), says how to fix it, and the nodes hold nothing.
func TestClientTLSConfig(t *testing.T) {
	dir := t.TempDir()
	f, err := certs.Generate(filepath.Join(dir, "pki"), certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.Generate(filepath.Join(t.TempDir(), "other"), certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := serveTLSCluster(t, f, f.CA)
	cfg := writeTLSConfig(t, dir, c, map[string]string{"ca_file": "pki/ca.pem", "cert_file": "pki/client.pem", "key_file": "pki/client-key.pem"})
	data := t.TempDir()

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"another CA", []string{"--ca-file", other.CA}, "x509: certificate signed by unknown authority at " + c.url + ": give the CA with --ca-file"},
			{"client cert of another CA", []string{"--cert-file", other.ClientCert, "--key-file", other.ClientKey}, "the server trusts no CA that signed the client certificate " + other.ClientCert},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"--data", data, "--config", cfg, "-t", "lab"}, tc.args...)
				code, out, errs := run(t, append(args, "create", "--range", "0-9")...)
				if code != ExitUnreachable || !strings.Contains(errs, tc.want) {
					t.Fatalf("create: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d and %q", code, out, errs, ExitUnreachable, tc.want)
				}
				if got := c.count(t); got[0]+got[1]+got[2] != 0 {
					t.Fatalf("the nodes hold %v records, want none", got)
				}
			})
		}
		noCert := writeTLSConfig(t, t.TempDir(), c, map[string]string{"ca_file": f.CA})
		code, out, errs := run(t, "--data", data, "--config", noCert, "-t", "lab", "create", "--range", "0-9")
		if want := "the server refused the TLS connection (tls: certificate required) at " + c.url + ": give a client certificate signed by its --client-ca"; code != ExitUnreachable || !strings.Contains(errs, want) {
			t.Fatalf("create without a client certificate: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d and %q", code, out, errs, ExitUnreachable, want)
		}
		if got := c.count(t); got[0]+got[1]+got[2] != 0 {
			t.Fatalf("the nodes hold %v records, want none", got)
		}
	})

	t.Run("config", func(t *testing.T) {
		code, out, errs := run(t, "--data", data, "--config", cfg, "-t", "lab", "create", "--range", "0-9")
		if code != ExitOK {
			t.Fatalf("create over mutual TLS: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if got := c.count(t); got[0] != 10 || got[1] != 10 || got[2] != 10 {
			t.Fatalf("the nodes hold %v records, want 10 each", got)
		}
	})

	t.Run("env and flags", func(t *testing.T) {
		t.Setenv("ROPS_CA_FILE", f.CA)
		code, out, errs := run(t, "--data", data, "-t", "remote", "--remote", c.url, "--cert-file", f.ClientCert, "--key-file", f.ClientKey, "ping")
		if code != ExitOK {
			t.Fatalf("ping with ROPS_CA_FILE: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
	})

	t.Run("insecure", func(t *testing.T) {
		code, out, errs := run(t, "--data", data, "-t", "remote", "--remote", c.url, "--cert-file", f.ClientCert, "--key-file", f.ClientKey, "--insecure-skip-verify", "ping")
		if code != ExitOK || errs != insecureWarning+"\n" {
			t.Fatalf("ping --insecure-skip-verify: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 0 and the warning alone", code, out, errs)
		}
	})

	t.Run("bad files", func(t *testing.T) {
		missing := writeTLSConfig(t, t.TempDir(), c, map[string]string{"ca_file": "missing.pem"})
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"ca_file", []string{"--config", missing, "-t", "lab"}, `rops: target "lab" (ca_file in config ` + missing + `): cannot read the CA file: open ` + filepath.Join(filepath.Dir(missing), "missing.pem")},
			{"--ca-file", []string{"--ca-file", f.ClientKey, "-t", "remote", "--remote", c.url}, "rops: --ca-file: CA file " + f.ClientKey + " holds no PEM certificate"},
			{"--cert-file alone", []string{"--cert-file", f.ClientCert, "-t", "remote", "--remote", c.url}, "rops: --cert-file and --key-file: client certificate " + f.ClientCert + " has no key: give its private key too"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, errs := run(t, append(append([]string{"--data", data}, tc.args...), "ping")...)
				if code != ExitUsage || !strings.HasPrefix(errs, tc.want) {
					t.Fatalf("ping: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 2 and %q", code, out, errs, tc.want)
				}
			})
		}
	})

	t.Run("chaos", func(t *testing.T) {
		// --chaos reads each node's faults through the admin API over the
		// same mutual TLS.
		code, out, errs := run(t, "--data", t.TempDir(), "--config", cfg, "-t", "lab", "--seed", "7", "check", "--ops", "20", "--chaos", "0.01")
		// Each node's faults are read (before the run, and again to be
		// put back), then switched on and back: PUT twice each.
		if code != ExitOK || strings.Count(c.accessLog(), `"GET /v1/admin/faults HTTP/1.1" remote=127.0.0.1 status=200`) < 3 ||
			strings.Count(c.accessLog(), `"PUT /v1/admin/faults HTTP/1.1" remote=127.0.0.1 status=200`) != 6 {
			t.Fatalf("check --chaos: exit %d\nstdout:\n%s\nstderr:\n%s\naccess log:\n%s\nwant exit 0, GET /admin/faults of each node and PUT twice each", code, out, errs, c.accessLog())
		}
		// So does the nemesis.
		code, out, errs = run(t, "--data", t.TempDir(), "--config", cfg, "-t", "lab", "--seed", "7", "check", "--ops", "20", "--nemesis", "down")
		if code != ExitOK || strings.Count(c.accessLog(), `"GET /v1/admin/faults HTTP/1.1" remote=127.0.0.1 status=200`) < 6 {
			t.Fatalf("check --nemesis down: exit %d\nstdout:\n%s\nstderr:\n%s\naccess log:\n%s\nwant exit 0 and GET /admin/faults of each node", code, out, errs, c.accessLog())
		}
	})
}
