package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// e2eAdminToken is the admin token of TestAdminTokenServe's server.
const e2eAdminToken = "e2e-admin-token-0123456789abcdef"

// adminRequest sends method path to the server at addr with body and
// headers (name, value pairs; "Host" sets the Host) and returns the status
// and body of its answer.
func adminRequest(t *testing.T, addr, method, path, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tokenFaults returns the server's faults, read with the admin token.
func tokenFaults(t *testing.T, addr string) map[string]serverFaults {
	t.Helper()
	status, body := adminRequest(t, addr, "GET", "/admin/faults", "", "Authorization", "Bearer "+e2eAdminToken)
	var all map[string]serverFaults
	if err := json.Unmarshal([]byte(body), &all); err != nil || status != http.StatusOK {
		t.Fatalf("GET /admin/faults with the token: %d %s", status, body)
	}
	return all
}

// writeTargetIn writes dir/targets.json, naming target with nodes and one
// more key (a file beside it, such as a token file), and returns its path.
func writeTargetIn(t *testing.T, dir, target, key, value string, nodes ...string) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{"targets": map[string]any{target: map[string]any{"nodes": nodes, key: value}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestAdminTokenServe runs a real rops serve --admin --admin-token-file:
// every attack on it is refused and changes nothing (no token, a wrong
// one, one in the query, a rebinding Host, a cross-site Origin, an
// oversized header), and rops check --chaos works through it with the
// token, from the flag or the target's admin_token_file, and stops at
// once without it, saying how to give it.
func TestAdminTokenServe(t *testing.T) {
	skipLong(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(e2eAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", nil, "--store", "memory", "--admin", "--admin-token-file", tokenFile, "--random-behavior", "0")
	before := tokenFaults(t, s.addr)
	auth := []string{"Authorization", "Bearer " + e2eAdminToken}
	const down = `{"node01": {"down": true}, "node02": {"error_rate": 0.9}}`
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		msg                      string
	}{
		{"no token", "PUT", "/admin/faults", down, nil, 401, "the admin API wants a token"},
		{"no token GET", "GET", "/v1/admin/faults", "", nil, 401, "the admin API wants a token"},
		{"wrong token", "PUT", "/admin/faults", down, []string{"Authorization", "Bearer " + e2eAdminToken[:len(e2eAdminToken)-1] + "0"}, 401, "wrong token for the admin API"},
		{"token in query", "PUT", "/admin/faults?token=" + e2eAdminToken, down, nil, 400, "send it in the Authorization header"},
		{"access_token in query", "PUT", "/admin/faults?access_token=" + e2eAdminToken, down, auth, 400, "a token in the URL is refused"},
		{"rebinding Host", "PUT", "/admin/faults", down, append([]string{"Host", "attacker.example:80"}, auth...), 403, `Host \"attacker.example:80\" is not a name of this server`},
		{"cross-site admin PUT", "PUT", "/admin/faults", down, append([]string{"Origin", "http://attacker.example"}, auth...), 403, "cross-site request refused"},
		{"cross-site write", "POST", "/v1/group", `{"groupId": "stolen"}`, []string{"node", "node01", "Origin", "http://attacker.example"}, 403, "cross-site request refused"},
		{"rebinding write", "POST", "/v1/group", `{"groupId": "stolen"}`, []string{"node", "node01", "Host", "attacker.example"}, 403, "--allowed-host"},
		{"oversized header", "PUT", "/admin/faults", down, append([]string{"X-Pad", strings.Repeat("a", 100<<10)}, auth...), 431, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := adminRequest(t, s.addr, tc.method, tc.path, tc.body, tc.headers...)
			if status != tc.status || !strings.Contains(body, tc.msg) {
				t.Fatalf("%d %s, want %d %q", status, body, tc.status, tc.msg)
			}
			if after := tokenFaults(t, s.addr); after["node01"] != before["node01"] || after["node02"] != before["node02"] {
				t.Fatalf("the faults changed: %+v, were %+v", after, before)
			}
			if status, _ := adminRequest(t, s.addr, "GET", "/v1/group/stolen", "", "node", "node01"); status != http.StatusNotFound {
				t.Fatalf("GET /group/stolen: %d, want 404: a refused write was applied", status)
			}
		})
	}

	cfg := writeConfig(t, "lab", remoteSpecs(s.addr, s.addr, s.addr)...)
	t.Run("check --chaos without the token", func(t *testing.T) {
		code, _, stderr := runStderr(t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "--seed", "81", "check", "--ops", "20", "--chaos", "0.05")
		if want := "the server wants an admin token: give it with --admin-token-file or ROPS_ADMIN_TOKEN"; code != 2 || !strings.Contains(stderr, want) {
			t.Fatalf("exit %d, stderr %s; want 2 and %q", code, stderr, want)
		}
		if strings.Contains(stderr, e2eAdminToken) {
			t.Fatalf("stderr shows the token: %s", stderr)
		}
	})
	t.Run("check --nemesis without the token", func(t *testing.T) {
		code, _, stderr := runStderr(t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "--seed", "82", "check", "--ops", "20", "--nemesis", "down")
		if want := "the server wants an admin token"; code != 2 || !strings.Contains(stderr, want) {
			t.Fatalf("exit %d, stderr %s; want 2 and %q", code, stderr, want)
		}
	})
	t.Run("check --chaos with the token", func(t *testing.T) {
		c := runCheck(t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "--seed", "83", "--admin-token-file", tokenFile, "check", "--ops", "50", "--chaos", "0.05")
		if want := "at 0.05 on 3 of 3 nodes"; !strings.HasSuffix(c.Chaos, want) {
			t.Fatalf("chaos=%q, want it to end %q", c.Chaos, want)
		}
	})
	t.Run("check --chaos with the target's admin_token_file", func(t *testing.T) {
		cfg := writeTargetIn(t, dir, "lab", "admin_token_file", "admin.token", remoteSpecs(s.addr, s.addr, s.addr)...)
		c := runCheck(t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "--seed", "84", "check", "--ops", "50", "--chaos", "0.05")
		if want := "at 0.05 on 3 of 3 nodes"; !strings.HasSuffix(c.Chaos, want) {
			t.Fatalf("chaos=%q, want it to end %q", c.Chaos, want)
		}
	})
}

// TestWriteTokenJob runs jobs against a real rops serve --write-token-file:
// with the token (the flag, or the target's write_token_file) a create
// and a delete are done; without it, or with a wrong one, nothing is
// written, and the job says why.
func TestWriteTokenJob(t *testing.T) {
	skipLong(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "write.token")
	if err := os.WriteFile(tokenFile, []byte("e2e-write-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(dir, "wrong.token")
	if err := os.WriteFile(wrongFile, []byte("not-the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", nil, "--store", "memory", "--random-behavior", "0", "--write-token-file", tokenFile)
	cfg := writeConfig(t, "lab", remoteSpecs(s.addr, s.addr, s.addr)...)
	target := []string{"--config", cfg, "--target", "lab"}

	for _, tc := range []struct {
		name string
		args []string
	}{{"no token", nil}, {"wrong token", []string{"--write-token-file", wrongFile}}} {
		code, out := run(t, append(append(append([]string{"--data", t.TempDir()}, target...), tc.args...), "create", "--range", "0-9")...)
		// Refused, so not applied: rolled back cleanly, none pending.
		if code != 1 || !strings.Contains(out, ", 10 rolled back, 0 pending") || !strings.Contains(out, "token for a write") && !strings.Contains(out, "a write wants a token") {
			t.Fatalf("%s: create exited %d, want 1, every id rolled back and the token named:\n%s", tc.name, code, out)
		}
		if st := runJSON[statsOut](t, append(append([]string{"--data", t.TempDir()}, target...), "stats")...); st.Nodes["node01"] != 0 {
			t.Fatalf("%s: the nodes hold %v after a refused job, want nothing", tc.name, st.Nodes)
		}
	}

	rep := runJSON[struct{ Done int }](t, append(append([]string{"--data", t.TempDir()}, target...), "--write-token-file", tokenFile, "create", "--range", "0-9")...)
	if rep.Done != 10 {
		t.Fatalf("create with the write token: %d done, want 10", rep.Done)
	}
	withKey := writeTargetIn(t, dir, "lab", "write_token_file", "write.token", remoteSpecs(s.addr, s.addr, s.addr)...)
	rep = runJSON[struct{ Done int }](t, "--data", t.TempDir(), "--config", withKey, "--target", "lab", "delete", "--range", "0-9")
	if rep.Done != 10 {
		t.Fatalf("delete with the target's write_token_file: %d done, want 10", rep.Done)
	}
}
