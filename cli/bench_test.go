package cli

import (
	"io"
	"testing"
)

// BenchmarkVersion is what `rops version` costs once the process has
// started: building the command line's model, parsing, running. With the
// package inits, which no benchmark can time, it is the fixed cost of every
// command (create-one's, in scripts/bench's create-one row).
func BenchmarkVersion(b *testing.B) {
	for b.Loop() {
		if code := Run(b.Context(), []string{"version"}, IO{Stdout: io.Discard, Stderr: io.Discard}); code != ExitOK {
			b.Fatalf("rops version exited %d", code)
		}
	}
}
