package badger_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/storetest"
)

// filledStore returns a Store in a new directory holding n records, written
// from 64 goroutines without syncs, closed once so that they are in tables.
func filledStore(tb testing.TB, n int) (*badger.Store, string) {
	tb.Helper()
	dir := tb.TempDir()
	s, err := badger.Open(dir, badger.WithoutSync())
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				if err := s.Create(context.Background(), core.GroupID(fmt.Sprintf("g%07d", i)), "1764646000.000001"); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	s = mustOpen(tb, dir)
	return s, dir
}

// TestScanAll: Scan streams every record in id order from one snapshot,
// after a given id, and stops when asked.
func TestScanAll(t *testing.T) {
	const n = 3000
	s, _ := filledStore(t, n)
	for _, tc := range []struct {
		after    core.GroupID
		stop     int // 0: never
		from, to int
	}{
		{"", 0, 0, n},
		{"g0001233", 0, 1234, n},
		{"g0001233x", 0, 1234, n}, // not held
		{"", 10, 0, 10},
		{"g0002999", 0, n, n},
	} {
		var got []core.Record
		err := s.Scan(t.Context(), tc.after, func(rec core.Record) bool {
			got = append(got, rec)
			return tc.stop == 0 || len(got) < tc.stop
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.to-tc.from {
			t.Fatalf("after %q: %d records, want %d", tc.after, len(got), tc.to-tc.from)
		}
		for i, rec := range got {
			if want := core.GroupID(fmt.Sprintf("g%07d", tc.from+i)); rec.ID != want || rec.Token != "1764646000.000001" {
				t.Fatalf("after %q: record %d is %v, want %s", tc.after, i, rec, want)
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Scan(ctx, "", func(core.Record) bool { return true }); err == nil {
		t.Fatal("Scan with a cancelled context: no error")
	}
}

// TestScanReleasesTables: a scan of every record, or a count, leaves little
// of the tables resident, where badger alone would keep every page read.
func TestScanReleasesTables(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pages are released on Linux only")
	}
	const n = 300_000 // about 12 MB of tables
	s, dir := filledStore(t, n)
	size := tablesSize(t, dir)
	k := 0
	if err := s.Scan(t.Context(), "", func(core.Record) bool { k++; return true }); err != nil || k != n {
		t.Fatalf("Scan: %d records, %v", k, err)
	}
	// What is left is what was read since the last release: less than
	// 16k records' worth.
	if got, limit := residentTables(t, dir), size/8; got > limit {
		t.Fatalf("%d bytes of %d of tables resident after the scan, want at most %d", got, size, limit)
	}
	// Count reads every key, and releases as it goes too.
	if k, err := s.Count(t.Context()); err != nil || k != n {
		t.Fatalf("Count: %d, %v", k, err)
	}
	if got, limit := residentTables(t, dir), size/8; got > limit {
		t.Fatalf("%d bytes of %d of tables resident after Count, want at most %d", got, size, limit)
	}
}

func tablesSize(t *testing.T, dir string) int64 {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	var size int64
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	if size == 0 {
		t.Fatal("no tables")
	}
	return size
}

// residentTables sums the resident bytes of this process's mappings of the
// tables in dir, from /proc/self/smaps.
func residentTables(t *testing.T, dir string) int64 {
	t.Helper()
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-"):
			in = len(fields) == 6 && strings.HasSuffix(fields[5], ".sst") && filepath.Dir(fields[5]) == dir
		case in && len(fields) == 3 && fields[0] == "Rss:":
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			total += kb << 10
		}
	}
	return total
}

// BenchmarkScan reads 100,000 records from tables with one Scan, and with
// List's pages of core.DefaultPageSize.
func BenchmarkScan(b *testing.B) {
	const n = 100_000
	s, _ := filledStore(b, n)
	storetest.BenchmarkScanList(b, s, n)
}
