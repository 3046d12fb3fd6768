package badger_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/plugins"

	// badger:// nodes take fault settings when the program imports the
	// faults, as rops does.
	_ "github.com/reliable-ops/rops/decorators/faults"
)

func TestRegistered(t *testing.T) {
	if got := plugins.Schemes(); !slices.Contains(got, "badger") {
		t.Fatalf("Schemes()=%v: importing drivers/badger must register badger://", got)
	}
}

func TestOpenSpec(t *testing.T) {
	data := t.TempDir()
	env := plugins.Env{DataDir: data}
	n, c, err := plugins.Open(t.Context(), "badger://node01", env)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Create(t.Context(), "5", "1633806680.000001"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "node01")); err != nil {
		t.Fatalf("no data directory for node01: %v", err)
	}
	// The record outlives the node.
	n, c, err = plugins.Open(t.Context(), "badger://node01", env)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec, err := n.Get(t.Context(), "5")
	if err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if got, want := rec.Token, core.Token("1633806680.000001"); got != want {
		t.Fatalf("token=%q, want %q", got, want)
	}
}

func TestOpenSpecDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "elsewhere")
	_, c, err := plugins.Open(t.Context(), "badger://node01?dir="+url.QueryEscape(dir), plugins.Env{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("dir= was not used: %v", err)
	}
}

func TestOpenSpecLocked(t *testing.T) {
	env := plugins.Env{DataDir: t.TempDir()}
	_, c, err := plugins.Open(t.Context(), "badger://node01", env)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = plugins.Open(t.Context(), "badger://node01", env)
	if !errors.Is(err, badger.ErrLocked) {
		t.Fatalf("second Open of one directory=%v, want badger.ErrLocked", err)
	}
	if !strings.Contains(err.Error(), `node spec "badger://node01": `) {
		t.Fatalf("err=%q, want it to name the spec", err)
	}
}

// TestOpenSpecTombstones: tombstones=off opens a store that fences nothing,
// as the original server; on is the default.
func TestOpenSpecTombstones(t *testing.T) {
	env := plugins.Env{DataDir: t.TempDir()}
	for _, tc := range []struct {
		spec   string
		fences bool
	}{
		{"badger://node02", true},
		{"badger://node03?tombstones=off", false},
	} {
		n, c, err := plugins.Open(t.Context(), tc.spec, env)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := core.Fences(n); got != tc.fences {
			t.Errorf("%s: Fences()=%v, want %v", tc.spec, got, tc.fences)
		}
		_ = n.Delete(t.Context(), "a", "1.000001")
		err = n.Create(t.Context(), "a", "1.000001")
		if fenced := errors.Is(err, core.ErrFenced); fenced != tc.fences {
			t.Errorf("%s: Create after Delete: %v, want fenced=%v", tc.spec, err, tc.fences)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenSpecInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"without directory", "badger://node01", "no directory for node node01: set a data directory (--data) or give one with dir=/path"},
		{"empty dir", "badger://node01?dir=", "dir= is empty"},
		{"bad tombstones", "badger://node01?dir=/nonexistent&tombstones=no", "tombstones=no: give on or off (the default is on)"},
		{"unknown setting", "badger://node01?colour=red", `unknown setting "colour": badger nodes take error_rate, ambiguous_rate, latency, jitter, hang_rate, down, late_rate, late_delay, reset_rate, duplicate_rate, gateway_rate, batch_rate, seed, dir, tombstones`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, err := plugins.Open(t.Context(), tc.spec, plugins.Env{})
			if err == nil {
				c.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.spec)
			}
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("ErrorCode=%q, want %q (err=%v)", got, want, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q)=%q, want it to contain %q", tc.spec, err, tc.want)
			}
		})
	}
}
