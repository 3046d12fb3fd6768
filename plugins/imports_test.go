package plugins_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/plugins"
)

// TestImportsNoDriver keeps every driver and decorator out of a program that
// imports plugins: it links badger, HTTP, etcd or the faults only if it
// imports their packages, which register themselves, and no arrow runs from
// the registry back up to what registers with it. It follows the non-test
// imports of plugins, and theirs within the module, and fails on any
// package of the module but core (and core's own packages), or outside the standard library.
func TestImportsNoDriver(t *testing.T) {
	const module = "github.com/reliable-ops/rops"
	allowed := map[string]bool{
		module + "/core": true,
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{module + "/plugins": true}
	for queue := []string{module + "/plugins"}; len(queue) > 0; queue = queue[1:] {
		from := queue[0]
		pkg, err := build.Default.ImportDir(filepath.Join(root, strings.TrimPrefix(from, module)), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if seen[imp] {
				continue
			}
			seen[imp] = true
			first, _, _ := strings.Cut(imp, "/")
			switch {
			case !strings.Contains(first, "."):
				// The standard library.
			case !strings.HasPrefix(imp, module+"/"):
				t.Errorf("%s imports %s: plugins may link only the standard library and the module", from, imp)
			case !allowed[imp] && !strings.HasPrefix(imp, module+"/core/"):
				t.Errorf("%s imports %s: plugins may import only core: drivers and decorators register themselves (or come in Env), and the program imports them", from, imp)
			default:
				queue = append(queue, imp)
			}
		}
	}
}

// TestOpenUnknownScheme checks that a spec of a scheme nobody registered is
// refused with the schemes that are, so that a missing import shows.
func TestOpenUnknownScheme(t *testing.T) {
	r := plugins.NewRegistry()
	r.Register("zeta", openMemory)
	r.Register("alpha", openMemory)
	_, _, err := r.Open(t.Context(), "badger://node01", plugins.Env{})
	if got, want := err.Error(), `unknown scheme "badger" in node spec "badger://node01": known schemes are alpha, zeta`; got != want {
		t.Fatalf("err=%q, want %q", got, want)
	}
	if got, want := core.ErrorCode(err), core.EInvalid; got != want {
		t.Fatalf("ErrorCode=%q, want %q", got, want)
	}
	// The package's own registry holds what the imports registered: here
	// the tests' (main_test.go) and the example's.
	_, _, err = plugins.Open(t.Context(), "nosuch://node01", plugins.Env{})
	if got, want := err.Error(), `unknown scheme "nosuch" in node spec "nosuch://node01": known schemes are badger, fixture, memory`; got != want {
		t.Fatalf("err=%q, want %q", got, want)
	}
}
