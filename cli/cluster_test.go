package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestClusterModes checks how each command gets its cluster through kong's
// binding: the commands that change records open it journaled and
// recovered, recover journaled, stats and ping read-only, and the others
// take none and so open none. A new command must be added here.
func TestClusterModes(t *testing.T) {
	const none = openMode(-1)
	want := map[string]openMode{
		"create": recovered, "create-one": recovered, "delete": recovered, "delete-one": recovered,
		"repair": recovered, "check": recovered,
		"recover": journaled,
		"stats":   readOnly, "ping": readOnly,
		"serve": none, "version": none, "completion": none, "help": none, "verify": none,
	}
	clusterType := reflect.TypeFor[*Cluster]()
	ct := reflect.TypeFor[CLI]()
	seen := 0
	for i := range ct.NumField() {
		f := ct.Field(i)
		if _, ok := f.Tag.Lookup("cmd"); !ok {
			continue
		}
		name := f.Tag.Get("name")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		seen++
		cmd := reflect.New(f.Type)
		run := cmd.MethodByName("Run")
		if !run.IsValid() {
			t.Fatalf("%s has no Run", name)
		}
		takes := false
		for j := range run.Type().NumIn() {
			takes = takes || run.Type().In(j) == clusterType
		}
		got := none
		if takes {
			got = readOnly
			if m, ok := cmd.Interface().(clusterUser); ok {
				got = m.openMode()
			}
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("command %s is not in the table: say how it opens its cluster", name)
			continue
		}
		if got != w {
			t.Errorf("%s opens its cluster in mode %d, want %d (-1: none)", name, got, w)
		}
	}
	if seen != len(want) {
		t.Errorf("%d commands, want %d", seen, len(want))
	}
}

// TestInputCheckedBeforeOpen checks that a command's own mistakes are
// reported before its cluster opens: here the cluster could not open.
func TestInputCheckedBeforeOpen(t *testing.T) {
	config := filepath.Join(t.TempDir(), "targets.json")
	if err := os.WriteFile(config, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--range", "9-1"}, `invalid --range "9-1"`},
		{[]string{"delete", "a b"}, `"a b"`},
		{[]string{"create-one", "a/b"}, `"a/b"`},
		{[]string{"delete-one", "a/b"}, `"a/b"`},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			code, _, stderr := run(t, append([]string{"--config", config, "--data", t.TempDir()}, tc.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and an error naming %s", code, stderr, ExitUsage, tc.want)
			}
		})
	}
	// And the config is read when the input is fine: the cluster opens.
	if code, _, stderr := run(t, "--config", config, "--data", t.TempDir(), "create", "1"); code != ExitUsage || !strings.Contains(stderr, config) {
		t.Fatalf("exit %d, stderr %q; want %d and an error naming the config", code, stderr, ExitUsage)
	}
	// A command that takes no cluster opens none.
	if code, _, stderr := run(t, "--config", config, "version"); code != ExitOK {
		t.Fatalf("version with a broken config: exit %d, stderr %q", code, stderr)
	}
}

// TestClusterClosedAfterRun checks that Run closes the cluster it gave the
// command: the local badger nodes and the journal open again at once.
func TestClusterClosedAfterRun(t *testing.T) {
	data := t.TempDir()
	for i, args := range [][]string{{"create-one", "5"}, {"delete-one", "5"}, {"stats"}} {
		if code, _, stderr := run(t, append([]string{"--data", data, "--seed", "1"}, args...)...); code != ExitOK {
			t.Fatalf("run %d (%s): exit %d, stderr %q", i+1, args[0], code, stderr)
		}
	}
}
