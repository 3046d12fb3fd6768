package cli

import (
	"os"
	"runtime/debug"
	"testing"
)

// gcPercent returns the garbage collector's target now.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestBulkGC: a bulk job runs with the garbage collector's target at
// bulkGCPercent and restores it after, unless the user set GOGC.
func TestBulkGC(t *testing.T) {
	before := gcPercent()
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	restore := bulkGC()
	if got := gcPercent(); got != bulkGCPercent {
		t.Errorf("GC target %d during a job, want %d", got, bulkGCPercent)
	}
	restore()
	if got := gcPercent(); got != before {
		t.Errorf("GC target %d after a job, want %d restored", got, before)
	}
	t.Setenv("GOGC", "150")
	restore = bulkGC()
	defer restore()
	if got := gcPercent(); got != before {
		t.Errorf("GC target %d during a job with GOGC set, want %d left alone", got, before)
	}
}
