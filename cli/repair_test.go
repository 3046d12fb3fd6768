package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
)

// syncBuffer is a bytes.Buffer that the request log and the command's
// output can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// putRecords writes ids straight into the badger store of each named local
// node under data, to make the nodes disagree.
func putRecords(t *testing.T, data string, ids []core.GroupID, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		st, err := badger.Open(filepath.Join(data, n))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := st.Create(t.Context(), id, "1.000001"); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRepairStreams: repair lists every node once (it plans once, and
// applies each fix as it is planned), and prints each fix as it ends, while
// the repair goes on: the first fix is printed before the last fix's
// requests are sent.
func TestRepairStreams(t *testing.T) {
	data := t.TempDir()
	var ids []core.GroupID
	for i := range 5 {
		ids = append(ids, core.GroupID(fmt.Sprintf("r%d", i)))
	}
	putRecords(t, data, ids, "node01", "node02")

	var out syncBuffer
	code := Run(context.Background(), []string{"--data", data, "--random-behavior", "0", "--concurrency", "1", "-v", "repair"},
		IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out})
	if code != ExitOK {
		t.Fatalf("repair exited %d:\n%s", code, out.String())
	}
	lines := strings.Split(out.String(), "\n")
	lists, firstFix, lastCreate := 0, -1, -1
	for i, l := range lines {
		switch {
		case strings.Contains(l, " msg=request node=node01 op=list "):
			lists++
		case strings.HasPrefix(l, "  create ") && firstFix < 0:
			firstFix = i
		case strings.Contains(l, " msg=request node=node03 op=create groupId=r4 "):
			lastCreate = i
		}
	}
	if got, want := lists, 1; got != want {
		t.Errorf("node01 was listed %d times, want %d: the repair planned more than once\n%s", got, want, out.String())
	}
	if firstFix < 0 || lastCreate < 0 || firstFix > lastCreate {
		t.Errorf("the first fix is printed at line %d, the last fix's create sent at line %d: want the fix printed first\n%s", firstFix, lastCreate, out.String())
	}
	if !strings.Contains(out.String(), "repair: 5 requested, 5 done,") {
		t.Errorf("no report of 5 fixes done:\n%s", out.String())
	}
	code, stdout := rops(t, "--data", data, "stats")
	if code != ExitOK {
		t.Fatalf("stats after repair exited %d:\n%s", code, stdout)
	}
}
