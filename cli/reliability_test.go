package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// rops runs the command line in-process and returns its exit code and
// standard output.
func rops(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if code == ExitUsage {
		t.Fatalf("rops %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return code, stdout.String()
}

func ropsJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	_, out := rops(t, append([]string{"-o", "json"}, args...)...)
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("rops %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// TestBulkReliability runs 1000 creates and then 1000 deletes on the local
// target (real badger nodes) under faults. Faults are drawn from the seed per
// node, method and id, so each case replays exactly.
func TestBulkReliability(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults []string
		seed   int
		// maxRolledBack is the most operations of a job that may end
		// rolled back: none at the original's 0.2, else 0.5%.
		maxRolledBack int
	}{
		{"random-0.2", []string{"--random-behavior", "0.2"}, 11, 0},
		{"random-0.5", []string{"--random-behavior", "0.5"}, 12, 5},
		{"random-0.2-ambiguous-0.3", []string{"--random-behavior", "0.2", "--ambiguous-rate", "0.3"}, 13, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.maxRolledBack > 0 {
				t.Skip("a long job: run without -short")
			}
			t.Parallel()
			t.Logf("seeds %d (create) and %d (delete)", tc.seed, tc.seed+1)
			data := t.TempDir()
			held := 0
			for i, op := range []core.Op{core.OpCreate, core.OpDelete} {
				args := append([]string{"--data", data, "--seed", fmt.Sprint(tc.seed + i)}, tc.faults...)
				rep := ropsJSON[core.Report](t, append(args, string(op), "--range", "0-999")...)
				t.Logf("%s: %d done, %d rolled back, %d requests", op, rep.Done, rep.RolledBack, rep.Requests)
				// Unchanged: the ids whose create was rolled back are
				// already absent for the delete.
				if rep.Requested != 1000 || rep.Pending != 0 || rep.Unchanged != 1000*i-held || rep.Done+rep.RolledBack+rep.Unchanged != 1000 {
					t.Fatalf("%s report = %+v, want 1000 requested, none pending, %d unchanged, the rest done or rolled back", op, rep, 1000*i-held)
				}
				if rep.RolledBack > tc.maxRolledBack {
					t.Fatalf("%s: %d rolled back (%v), want at most %d", op, rep.RolledBack, rep.RolledBackIDs, tc.maxRolledBack)
				}
				if op == core.OpCreate {
					held = rep.Done
				} else {
					held -= rep.Done
				}
				st := ropsJSON[statsJSON](t, "--data", data, "stats")
				if !st.Consistent {
					t.Fatalf("after %s: stats inconsistent: %+v", op, st.Divergent)
				}
				for node, n := range st.Nodes {
					if n != held {
						t.Fatalf("after %s: %s holds %d records, the reports say %d", op, node, n, held)
					}
				}
			}
		})
	}
}
