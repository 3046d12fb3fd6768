package badger_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
)

// crashedStore returns the directory of a store that holds n records and
// whose process died before it closed the store: its writes are in its
// memtable log (*.mem) only, as badger's replay on the next Open finds
// them. The records are written 16 at a time, as a job writes them.
func crashedStore(t *testing.T, n int) string {
	t.Helper()
	live := t.TempDir()
	s, err := badger.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if err := s.Create(context.Background(), core.GroupID(fmt.Sprint("id", i)), "1700000000.000001"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Every write is synced: a copy now is what a crash leaves.
	crashed := t.TempDir()
	entries, err := os.ReadDir(live)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(live, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return crashed
}

// memLog returns the path of dir's one memtable log.
func memLog(t *testing.T, dir string) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
	if len(names) != 1 {
		t.Fatalf("memtable logs %v, want one", names)
	}
	return names[0]
}

func count(t *testing.T, dir string) (int, error) {
	t.Helper()
	s, err := badger.Open(dir)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.Count(t.Context())
}

func change(t *testing.T, path string, f func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesDamage: a store whose files are damaged refuses to open,
// and says which file and bytes, instead of dropping the records after the
// damage (1074 of them in issue 8).
func TestOpenRefusesDamage(t *testing.T) {
	const n = 2000
	t.Run("crashed, intact: every record", func(t *testing.T) {
		if got, err := count(t, crashedStore(t, n)); err != nil || got != n {
			t.Fatalf("Count=%d, %v; want %d", got, err, n)
		}
	})
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{{
		name: "memtable log: 20 bytes flipped in the middle",
		damage: func(t *testing.T, dir string) {
			change(t, memLog(t, dir), func(b []byte) []byte {
				end := len(strings.TrimRight(string(b), "\x00"))
				for i := range 20 {
					b[end/2+i] ^= 0x5a
				}
				return b
			})
		},
		want: "entries of more than one transaction after an unreadable one",
	}, {
		name: "memtable log: cut in its records",
		damage: func(t *testing.T, dir string) {
			path := memLog(t, dir)
			b, _ := os.ReadFile(path)
			end := len(strings.TrimRight(string(b), "\x00"))
			if err := os.Truncate(path, int64(end/2)); err != nil {
				t.Fatal(err)
			}
		},
		want: "in a log that was complete",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := crashedStore(t, n)
			tc.damage(t, dir)
			got, err := count(t, dir)
			if !errors.Is(err, badger.ErrDamaged) {
				t.Fatalf("Open of a damaged store: Count=%d, err=%v; want ErrDamaged", got, err)
			}
			if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, ".mem, bytes ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name the file, the bytes and %q", msg, tc.want)
			}
			// Refusing changed nothing: the damage is still there.
			if _, err := count(t, dir); !errors.Is(err, badger.ErrDamaged) {
				t.Errorf("second Open: %v, want ErrDamaged again", err)
			}
		})
	}

	t.Run("torn last transaction: the others kept", func(t *testing.T) {
		dir := crashedStore(t, n)
		change(t, memLog(t, dir), func(b []byte) []byte {
			end := len(strings.TrimRight(string(b), "\x00"))
			clear(b[end-30 : end-10]) // inside the last transaction
			return b
		})
		got, err := count(t, dir)
		if err != nil {
			t.Fatalf("Open after a torn write: %v", err)
		}
		if got >= n || got < n-16 {
			t.Errorf("Count=%d, want the records of every transaction but the last (%d to %d)", got, n-16, n-1)
		}
	})

	t.Run("table: bytes flipped", func(t *testing.T) {
		dir := t.TempDir()
		s, err := badger.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := s.Create(t.Context(), core.GroupID(fmt.Sprint("id", i)), "1700000000.000001"); err != nil {
				t.Fatal(err)
			}
		}
		s.Close() // flushes the memtable to a table
		names, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
		if len(names) == 0 {
			t.Fatal("no table after Close")
		}
		change(t, names[0], func(b []byte) []byte {
			for i := range 20 {
				b[len(b)/3+i] ^= 0x5a
			}
			return b
		})
		got, err := count(t, dir)
		if !errors.Is(err, badger.ErrDamaged) {
			t.Fatalf("Open with a damaged table: Count=%d, err=%v; want ErrDamaged", got, err)
		}
		if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "fails its checksums") {
			t.Errorf("error %q does not name the directory and the checksum", err)
		}
	})
}
