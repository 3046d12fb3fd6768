package main

import (
	"fmt"
	"go/build"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// floors is the house: rops' packages from the top floor down, by what
// they are. An import may point to the same floor or one below, never up,
// so a newcomer reads the architecture from the tree: the domain at the
// bottom, knowing nothing above it. Every package of the module must be
// on a floor.
var floors = []struct {
	name     string
	packages []string
}{
	{"main", []string{"."}},
	{"commands", []string{"cli"}},
	{"judges", []string{"nemesis", "report", "history"}},
	{"drivers", []string{"drivers/memory", "drivers/badger", "drivers/httpapi", "journals/wal", "journals/etcd", "journals/etcd/etcdtest"}},
	{"test kit", []string{"storetest"}},
	{"decorators", []string{"decorators/faults", "decorators/reqlog"}},
	{"registry", []string{"plugins"}},
	{"domain", []string{"core", "core/pool", "core/breaker"}},
	{"tools", []string{"e2e/docker", "scripts/barehttp", "certs"}},
}

const module = "github.com/reliable-ops/rops"

// houseImports returns the module's packages (relative paths, "." for the
// root) and, for each, the module's packages its non-test files import.
func houseImports(t *testing.T) map[string][]string {
	t.Helper()
	imports := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if _, none := err.(*build.NoGoError); none {
			return nil
		}
		if err != nil {
			return err
		}
		var own []string
		for _, imp := range pkg.Imports {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				own = append(own, rel)
			}
		}
		imports[filepath.ToSlash(path)] = own
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return imports
}

// TestHouse fails on an import that points up a floor (or a package on no
// floor), and keeps the picture of the house in docs/design.md drawn from
// the code: rewrite it with go test -run TestHouse -update.
func TestHouse(t *testing.T) {
	imports := houseImports(t)
	floorOf := map[string]int{}
	for i, f := range floors {
		for _, p := range f.packages {
			floorOf[p] = i
			if _, ok := imports[p]; !ok {
				t.Errorf("floor %q lists %s, which is no package of the module: remove it", f.name, p)
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(imports)) {
		from, ok := floorOf[p]
		if !ok {
			t.Errorf("%s is on no floor: add it to floors in house_test.go, below everything that imports it", p)
			continue
		}
		for _, imp := range imports[p] {
			if to, ok := floorOf[imp]; ok && to < from {
				t.Errorf("%s (%s) imports %s (%s): an arrow up the house; move the code that needs it down, or register it from above",
					p, floors[from].name, imp, floors[to].name)
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%-11s %-24s %s\n", "floor", "package", "imports of rops")
	for _, f := range floors {
		for i, p := range f.packages {
			name := ""
			if i == 0 {
				name = f.name
			}
			fmt.Fprintln(&b, strings.TrimRight(fmt.Sprintf("%-11s %-24s %s", name, p, strings.Join(imports[p], " ")), " "))
		}
	}
	picture := "```\n" + b.String() + "```\n"
	const doc = "docs/design.md"
	const begin, end = "<!-- house: begin (go test -run TestHouse -update) -->\n", "<!-- house: end -->\n"
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(text), begin)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("%s has no house picture between %q and %q", doc, begin, end)
	}
	want := before + begin + picture + end + after
	if *update {
		if err := os.WriteFile(doc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != string(text) {
		t.Errorf("the house in %s is not the code's; run go test -run TestHouse -update . and read the diff. The code's:\n%s", doc, picture)
	}
}
