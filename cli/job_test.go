package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
)

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true, core.OpCreate, 3)
	clock := time.Unix(1e9, 0)
	p.now = func() time.Time { return clock } // the clock stands still
	for range 3 {
		p.add(core.Result{})
	}
	p.done()
	// The first result is shown, the next within 100 ms is not, the last
	// always is, and the line is cleared at the end.
	if got, want := b.String(), "\rcreate: 1/3\rcreate: 3/3\r\033[K"; got != want {
		t.Fatalf("progress wrote %q, want %q", got, want)
	}

	b.Reset()
	p = newProgress(&b, false, core.OpCreate, 3)
	p.add(core.Result{})
	p.done()
	if b.Len() != 0 {
		t.Fatalf("progress wrote %q to a non-terminal", b.String())
	}
}
