package wal

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDatasync measures what every batch of Begins waits for: one
// record written into a preallocated log and its data sync. With a fixed
// number of operations at once, each waiting for its Begin's sync, a job
// through the log cannot run faster than that many operations per sync,
// whatever the journal's own code costs (BENCHMARKS.md).
func BenchmarkDatasync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	if err := preallocate(f, size); err != nil {
		b.Fatal(err)
	}
	rec := make([]byte, 128)
	var off int64
	for b.Loop() {
		if _, err := f.WriteAt(rec, off); err != nil {
			b.Fatal(err)
		}
		if err := datasync(f); err != nil {
			b.Fatal(err)
		}
		off = (off + int64(len(rec))) % size
	}
}
