package cli

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/reliable-ops/rops/journals/wal"
)

func TestClusterIdentity(t *testing.T) {
	remote := builtinTargets["remote"].Nodes
	id, _ := clusterIdentity(remote, "/data")
	for _, tc := range []struct {
		name  string
		specs []string
		data  string
		same  bool
	}{
		{"the same nodes, listed in another order, spelled otherwise", []string{
			"http://127.0.0.1:8080/v1/?node=node03",
			"HTTP://127.0.0.1:8080/v1?node=node01",
			"http://127.0.0.1:8080/v1?node=node02",
		}, "/data", true},
		{"another data dir: remote nodes keep theirs", remote, "/elsewhere", true},
		{"one node fewer", remote[:2], "/data", false},
		{"another port", []string{
			"http://127.0.0.1:8081/v1?node=node01",
			"http://127.0.0.1:8081/v1?node=node02",
			"http://127.0.0.1:8081/v1?node=node03",
		}, "/data", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := clusterIdentity(tc.specs, tc.data)
			if (got == id) != tc.same {
				t.Errorf("identity %s, remote's %s: same=%v, want %v", got, id, got == id, tc.same)
			}
		})
	}
	local := builtinTargets["local"].Nodes
	a, _ := clusterIdentity(local, "/data")
	b, _ := clusterIdentity([]string{"badger://node01?error_rate=0.3", "badger://node02?dir=/data/node02", "badger://node03"}, "/data")
	c, _ := clusterIdentity(local, "/other")
	if a != b || a == c {
		t.Errorf("local identities: %s, with faults and dir= %s, other data dir %s; want the first two equal, the third not", a, b, c)
	}
}

// TestOneLockPerCluster: --target remote and a config target naming the
// same nodes share one journal and one lock, whatever their names; the
// targets "a.b" and "a_b" of two clusters never share one.
func TestOneLockPerCluster(t *testing.T) {
	data := t.TempDir()
	config := filepath.Join(t.TempDir(), "targets.json")
	if err := os.WriteFile(config, []byte(`{"targets": {
		"lab": {"nodes": ["http://127.0.0.1:8080/v1?node=node01", "http://127.0.0.1:8080/v1?node=node02", "http://127.0.0.1:8080/v1/?node=node03"]},
		"a.b": {"nodes": ["http://127.0.0.1:9001/v1?node=node01"]},
		"a_b": {"nodes": ["http://127.0.0.1:9002/v1?node=node01"]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func(target string) (*Cluster, error) {
		g := &Globals{Target: target, Config: config, Data: data}
		return g.open(t.Context(), io.Discard, journaled)
	}
	remote, err := open("remote")
	if err != nil {
		t.Fatalf("open remote: %v", err)
	}
	if _, err := open("lab"); !errors.Is(err, wal.ErrLocked) {
		t.Fatalf("open lab while remote is open: %v, want the journal in use", err)
	}
	remote.Close()
	lab, err := open("lab")
	if err != nil {
		t.Fatalf("open lab once remote is closed: %v", err)
	}
	defer lab.Close()
	if got, want := lab.journal.Dir(), remote.journal.Dir(); got != want {
		t.Errorf("lab's journal %s, remote's %s: want one", got, want)
	}

	ab, err := open("a.b")
	if err != nil {
		t.Fatalf("open a.b: %v", err)
	}
	defer ab.Close()
	a_b, err := open("a_b")
	if err != nil {
		t.Fatalf("open a_b while a.b is open: %v", err)
	}
	defer a_b.Close()
	if ab.journal.Dir() == a_b.journal.Dir() {
		t.Errorf("a.b and a_b share the journal %s", ab.journal.Dir())
	}
}
