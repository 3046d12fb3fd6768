package wal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// TestOpenLeavesTheHoleUnread: Open reads the log, not the preallocated
// zeros after it, so they stay a hole. Reading them (an Open once mapped
// the whole file and checked it for zeros: about 0.9 ms of every command)
// would put zero pages in the page cache, which SEEK_DATA reports as data,
// and every later Open would read them again.
func TestOpenLeavesTheHoleUnread(t *testing.T) {
	if !reportsHoles(t) {
		t.Skip("this filesystem reports no holes (SEEK_DATA): every Open reads the whole log, as before")
	}
	dir := t.TempDir()
	for i := range 3 {
		j, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		in := core.Intent{Op: core.OpCreate, ID: "g1", Token: core.Token("1700000000.00000" + string(rune('1'+i))), Nodes: []string{"node01"}}
		if err := j.Begin(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		if err := j.Finish(context.Background(), in.Token); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ext := dataExtents(int(f.Fd()), DefaultSize)
	if len(ext) == 0 || ext[len(ext)-1].end > 64<<10 {
		t.Fatalf("the log's data extents are %v after three Opens, want them all in its first 64 KiB: an Open read the preallocated zeros", ext)
	}
}

// reportsHoles reports whether the filesystem of t's temporary directory
// tells a preallocated file's unwritten part from its data.
func reportsHoles(t *testing.T) bool {
	f, err := os.Create(filepath.Join(t.TempDir(), "holes"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := preallocate(f, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	_, err = syscall.Seek(int(f.Fd()), 64<<10, seekData)
	return errors.Is(err, syscall.ENXIO)
}

// TestDataExtents: the extents are the file's data, and a file all data is
// one extent.
func TestDataExtents(t *testing.T) {
	if !reportsHoles(t) {
		t.Skip("this filesystem reports no holes (SEEK_DATA)")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 1 << 20
	if err := preallocate(f, size); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{10, 512 << 10} {
		if _, err := f.WriteAt([]byte("data"), off); err != nil {
			t.Fatal(err)
		}
	}
	ext := dataExtents(int(f.Fd()), size)
	if len(ext) != 2 || ext[0].start > 10 || ext[0].end < 14 || ext[1].start > 512<<10 || ext[1].end < 512<<10+4 || ext[1].end > 640<<10 {
		t.Fatalf("extents %v, want two, around the two writes", ext)
	}
	if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
		t.Fatal(err)
	}
	if ext := dataExtents(int(f.Fd()), size); len(ext) != 1 || ext[0] != (extent{0, size}) {
		t.Fatalf("extents %v of a file written whole (zeros), want one of all of it", ext)
	}
}
