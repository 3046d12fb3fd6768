package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestIsLoopback: only loopback addresses and localhost let --admin run
// without a token.
func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.9.9.9:0": true, "[::1]:8080": true, "localhost:8080": true, "LocalHost:1": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:8080": false, "10.0.0.5:8080": false, "myhost:8080": false, "localhost.example:1": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q)=%v, want %v", addr, got, want)
		}
	}
}

// TestTokenPrecedence: the flag's file wins over the variable, which wins
// over the target's file, found beside the config file.
func TestTokenPrecedence(t *testing.T) {
	dir := t.TempDir()
	for name, tok := range map[string]string{"flag.token": "from-flag\n", "target.token": "  from-target  \n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "targets.json")
	tc := &TargetConfig{AdminTokenFile: "target.token"}
	t.Setenv(adminTokenEnv, "")
	g := &Globals{Config: cfg}
	if got, err := g.adminToken(cfg, tc); got != "from-target" || err != nil {
		t.Fatalf("target's file: %q %v, want from-target", got, err)
	}
	t.Setenv(adminTokenEnv, "from-env")
	if got, err := g.adminToken(cfg, tc); got != "from-env" || err != nil {
		t.Fatalf("variable: %q %v, want from-env", got, err)
	}
	g.AdminTokenFile = filepath.Join(dir, "flag.token")
	if got, err := g.adminToken(cfg, tc); got != "from-flag" || err != nil {
		t.Fatalf("flag: %q %v, want from-flag", got, err)
	}
	if got, err := g.adminToken(cfg, nil); got != "from-flag" || err != nil {
		t.Fatalf("flag without a target: %q %v, want from-flag", got, err)
	}
}
