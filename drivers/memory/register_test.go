package memory_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/decorators/reqlog"
	"github.com/reliable-ops/rops/plugins"
)

func TestRegistered(t *testing.T) {
	if got := plugins.Schemes(); !slices.Contains(got, "memory") {
		t.Fatalf("Schemes()=%v: importing drivers/memory must register memory://", got)
	}
}

func TestOpenSpec(t *testing.T) {
	var log bytes.Buffer
	logger := textLog(&log)
	env := plugins.Env{Seed: 3, Defaults: faults.Faults{ErrorRate: 0.5}.Values(), Wrap: func(n core.Node) core.Node { return reqlog.Wrap(n, logger) }}
	n, c, err := plugins.Open(t.Context(), "memory://node01?error_rate=0", env)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil {
		t.Fatal("memory node has no closer; it must stop the writes its faults queue")
	}
	defer c.Close()
	if got, want := n.Name(), "node01"; got != want {
		t.Fatalf("Name()=%q, want %q", got, want)
	}
	if err := n.Create(t.Context(), "5", "1633806680.000001"); err != nil {
		t.Fatal(err)
	}
	if got, want := log.String(), "level=INFO msg=request node=node01 op=create groupId=5 timestamp=1633806680.000001\nlevel=INFO msg=answer node=node01 op=create groupId=5 result=created\n"; got != want {
		t.Fatalf("log=%q, want %q", got, want)
	}
	fn, ok := faults.Faulty(n)
	if !ok {
		t.Fatal("Faulty(Open(memory://...)) found no *faults.Node")
	}
	if got, want := fn.Faults(), (faults.Faults{}); got != want {
		t.Fatalf("Faults()=%v, want %v", got, want)
	}
}

// TestOpenSpecCloser checks that even a driver that returns no closer gives
// its faulty node one, for the writes it may queue.
func TestOpenSpecCloser(t *testing.T) {
	n, c, err := plugins.Open(t.Context(), "memory://node01?duplicate_rate=1", plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if c == nil {
		t.Fatal("Open(memory://node01) returned no closer")
	}
	if err := n.Create(t.Context(), "5", "1.000001"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestOpenSpecTombstones: tombstones=off opens a store that fences nothing,
// as the original server (rops serve --original); on is the default;
// anything else is refused.
func TestOpenSpecTombstones(t *testing.T) {
	for _, tc := range []struct {
		spec   string
		fences bool
	}{
		{"memory://node01", true},
		{"memory://node01?tombstones=on", true},
		{"memory://node01?tombstones=off", false},
	} {
		n, c, err := plugins.Open(t.Context(), tc.spec, plugins.Env{})
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := core.Fences(n); got != tc.fences {
			t.Errorf("%s: Fences()=%v, want %v", tc.spec, got, tc.fences)
		}
		// A create after a conditional delete of its token is refused
		// only by a store that fences.
		_ = n.Delete(t.Context(), "a", "1.000001")
		err = n.Create(t.Context(), "a", "1.000001")
		if fenced := errors.Is(err, core.ErrFenced); fenced != tc.fences {
			t.Errorf("%s: Create after Delete: %v, want fenced=%v", tc.spec, err, tc.fences)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := plugins.Open(t.Context(), "memory://node01?tombstones=maybe", plugins.Env{})
	if got, want := fmt.Sprint(err), `node spec "memory://node01?tombstones=maybe": tombstones=maybe: give on or off (the default is on)`; got != want {
		t.Errorf("err=%q, want %q", got, want)
	}
	if got, want := core.ErrorCode(err), core.EInvalid; got != want {
		t.Errorf("ErrorCode=%q, want %q", got, want)
	}
}

func TestOpenSpecRefusesDir(t *testing.T) {
	_, _, err := plugins.Open(t.Context(), "memory://node01?dir=/tmp", plugins.Env{})
	if got, want := fmt.Sprint(err), `unknown setting "dir"`; !strings.Contains(got, want) {
		t.Fatalf("err=%q, want it to contain %q: dir= is badger's", got, want)
	}
}

// textLog returns a logger in slog's text format without times, so that
// tests can compare its lines.
func textLog(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}
