package plugins_test

import (
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/plugins"
)

func TestSchemes(t *testing.T) {
	got := plugins.Schemes()
	if !slices.IsSorted(got) {
		t.Fatalf("Schemes()=%v, not sorted", got)
	}
	for _, want := range []string{"badger", "memory"} {
		if !slices.Contains(got, want) {
			t.Fatalf("Schemes()=%v, want it to hold %s", got, want)
		}
	}
}

func TestRegisterPanics(t *testing.T) {
	d := func(context.Context, *url.URL, plugins.Env) (core.Node, io.Closer, error) { return nil, nil, nil }
	for _, tc := range []struct {
		name   string
		scheme string
		d      plugins.Driver
	}{
		{"empty", "", d},
		{"upper case", "Mem", d},
		{"starts with digit", "9p", d},
		{"nil driver", "fine", nil},
		{"duplicate", "memory", d},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := plugins.NewRegistry()
			r.Register("memory", d)
			defer func() {
				if recover() == nil {
					t.Fatalf("register(%q) did not panic", tc.scheme)
				}
			}()
			r.Register(tc.scheme, tc.d)
		})
	}
}

// runOf returns which of n Gets on the node of spec failed, as a string.
func runOf(t *testing.T, spec string, env plugins.Env, n int) string {
	t.Helper()
	node, _, err := plugins.Open(t.Context(), spec, env)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range n {
		_, err := node.Get(t.Context(), core.GroupID(strconv.Itoa(i)))
		if core.ErrorCode(err) == core.ETransient {
			b.WriteByte('x')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

func TestSeedsAreReproduciblePerNode(t *testing.T) {
	env := plugins.Env{Seed: 99, Defaults: faults.Faults{ErrorRate: 0.5}.Values()}
	a1, a2 := runOf(t, "memory://node01", env, 64), runOf(t, "memory://node01", env, 64)
	if a1 != a2 {
		t.Fatalf("seed %d: node01 ran differently twice:\n%s\n%s", env.Seed, a1, a2)
	}
	if b := runOf(t, "memory://node02", env, 64); a1 == b {
		t.Fatalf("seed %d: node01 and node02 failed in lockstep: %s", env.Seed, a1)
	}
	// An explicit seed is the node's seed, whatever its name.
	if x, y := runOf(t, "memory://x?seed=5", env, 64), runOf(t, "memory://y?seed=5", env, 64); x != y {
		t.Fatalf("seed=5 gave different runs for x and y:\n%s\n%s", x, y)
	}
}

func TestOpenTarget(t *testing.T) {
	env := plugins.Env{DataDir: t.TempDir(), Seed: 1}
	target, err := plugins.OpenTarget(t.Context(), []string{"badger://node01", "memory://node02", "badger://node03?error_rate=0.1"}, env)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range target.Nodes {
		names = append(names, n.Name())
	}
	if got, want := strings.Join(names, ","), "node01,node02,node03"; got != want {
		t.Fatalf("nodes=%s, want %s", got, want)
	}
	if err := target.Close(); err != nil {
		t.Fatal(err)
	}
	if err := target.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestOpenTargetClosesOnFailure proves that a target that fails to open
// leaves no directory locked: the same directories open again at once.
func TestOpenTargetClosesOnFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []string
		want  string
	}{
		{"bad spec last", []string{"badger://node01", "badger://node02", "memory://bad name"}, "is not a URL"},
		{"duplicate name", []string{"badger://node01", "badger://node02", "memory://node01"},
			`node node01 appears twice in the target (specs "badger://node01" and "memory://node01")`},
		{"same directory", []string{"badger://node01", "badger://node02", "badger://node01"}, `node spec "badger://node01"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := plugins.Env{DataDir: t.TempDir()}
			_, err := plugins.OpenTarget(t.Context(), tc.specs, env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenTarget(%q)=%v, want an error containing %q", tc.specs, err, tc.want)
			}
			target, err := plugins.OpenTarget(t.Context(), []string{"badger://node01", "badger://node02"}, env)
			if err != nil {
				t.Fatalf("reopening after a failed OpenTarget: %v", err)
			}
			if err := target.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenTargetEmpty(t *testing.T) {
	_, err := plugins.OpenTarget(t.Context(), nil, plugins.Env{})
	if got, want := core.ErrorCode(err), core.EInvalid; got != want {
		t.Fatalf("ErrorCode=%q, want %q (err=%v)", got, want, err)
	}
}

// openMemory opens memory://NAME as drivers/memory does, for tests that keep
// their own registry.
func openMemory(_ context.Context, u *url.URL, env plugins.Env) (core.Node, io.Closer, error) {
	spec, err := plugins.ParseNodeSpec(u, env)
	if err != nil {
		return nil, nil, err
	}
	n, c := spec.New(memory.New(), nil)
	return n, c, nil
}

// closerFunc adapts a function to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func TestDriverErrors(t *testing.T) {
	disk := errors.New("disk on fire")
	var closed []string
	r := plugins.NewRegistry()
	r.Register("broken", func(context.Context, *url.URL, plugins.Env) (core.Node, io.Closer, error) {
		return nil, closerFunc(func() error { closed = append(closed, "broken"); return nil }), disk
	})
	r.Register("empty", func(context.Context, *url.URL, plugins.Env) (core.Node, io.Closer, error) { return nil, nil, nil })
	r.Register("badname", func(context.Context, *url.URL, plugins.Env) (core.Node, io.Closer, error) {
		return faults.New("bad name", memory.New(), faults.Options{}), nil, nil
	})
	r.Register("leaky", func(_ context.Context, u *url.URL, _ plugins.Env) (core.Node, io.Closer, error) {
		return faults.New(u.Host, memory.New(), faults.Options{}),
			closerFunc(func() error { closed = append(closed, u.Host); return errors.New("cannot close " + u.Host) }), nil
	})

	_, _, err := r.Open(t.Context(), "broken://x", plugins.Env{})
	if !errors.Is(err, disk) {
		t.Fatalf("err=%v, want it to wrap the driver's error", err)
	}
	if got, want := err.Error(), `node spec "broken://x": disk on fire`; got != want {
		t.Fatalf("err=%q, want %q", got, want)
	}
	if got, want := core.ErrorCode(err), core.EInternal; got != want {
		t.Fatalf("ErrorCode=%q, want %q", got, want)
	}
	if got, want := strings.Join(closed, ","), "broken"; got != want {
		t.Fatalf("closed %s, want %s: a failed open must release what it got", got, want)
	}
	if _, _, err := r.Open(t.Context(), "empty://x", plugins.Env{}); core.ErrorCode(err) != core.EInternal {
		t.Fatalf("driver returning no node: err=%v, want EInternal", err)
	}
	if _, _, err := r.Open(t.Context(), "badname://x", plugins.Env{}); core.ErrorCode(err) != core.EInvalid {
		t.Fatalf("driver returning an invalid name: err=%v, want EInvalid", err)
	}

	closed = nil
	target, err := r.OpenTarget(t.Context(), []string{"leaky://a", "leaky://b"}, plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	err = target.Close()
	if got, want := strings.Join(closed, ","), "b,a"; got != want {
		t.Fatalf("closed %s, want %s", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), "cannot close a") || !strings.Contains(err.Error(), "cannot close b") {
		t.Fatalf("Close()=%v, want both errors", err)
	}
}

func TestOpenTargetCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := plugins.OpenTarget(ctx, []string{"memory://node01"}, plugins.Env{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenTarget with an ended context=%v, want context.Canceled", err)
	}
}

// FuzzOpenSpec checks that no spec makes Open panic, and that every spec it
// refuses gets an EInvalid error naming it. Only the memory driver is
// registered, so no input writes to disk.
func FuzzOpenSpec(f *testing.F) {
	for _, s := range []string{
		"memory://node01",
		"memory://node01?error_rate=0.2&seed=7",
		"memory://node01?latency=15ms&jitter=1ms&hang_rate=0.1&down&ambiguous_rate=1",
		"memory://node01?late_rate=0.5&late_delay=3s&reset_rate=0.1&duplicate_rate=0.2&gateway_rate=0.3",
		"memory://",
		"memory:node01",
		"memory://n%41me",
		"memory://[::1]:80/x?y#z",
		"memory://u:p@node01",
		"badger://node01?dir=/tmp",
		"://",
		"%",
		"memory://node01?error_rate=%zz",
		"memory://node01?seed=18446744073709551616",
		" MEMORY://node01 ",
	} {
		f.Add(s)
	}
	r := plugins.NewRegistry()
	r.Register("memory", openMemory)
	f.Fuzz(func(t *testing.T, spec string) {
		n, c, err := r.Open(context.Background(), spec, plugins.Env{Seed: 1})
		if err != nil {
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("Open(%q): ErrorCode=%q, want %q (err=%v)", spec, got, want, err)
			}
			if s := strings.TrimSpace(spec); s != "" && !strings.Contains(err.Error(), plugins.Quote(s)) && !strings.Contains(err.Error(), "xxxxx") {
				t.Fatalf("Open(%q)=%q, does not name the spec", spec, err)
			}
			return
		}
		if c == nil {
			t.Fatalf("Open(%q): a faulty node without a closer", spec)
		}
		defer c.Close()
		if err := plugins.ValidateNodeName(n.Name()); err != nil {
			t.Fatalf("Open(%q) gave node name %q: %v", spec, n.Name(), err)
		}
		fn, ok := faults.Faulty(n)
		if !ok {
			t.Fatalf("Open(%q): no *faults.Node", spec)
		}
		if err := fn.Faults().Validate(); err != nil {
			t.Fatalf("Open(%q) gave invalid faults: %v", spec, err)
		}
	})
}
