package main

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScratchImage checks what the Dockerfile relies on without a Docker
// engine: the binary built as the Dockerfile says is static (no
// interpreter, no shared libraries), so it runs FROM scratch, and every file
// the Dockerfile copies from the repository exists.
func TestScratchImage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rops")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the binary is dynamically linked (%v): it cannot run FROM scratch", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary needs %v", libs)
	}

	df, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	sc := bufio.NewScanner(df)
	copies := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == "COPY" && fields[1] != "rops" {
			copies++
			if _, err := os.Stat(fields[1]); err != nil {
				t.Errorf("Dockerfile copies %s: %v", fields[1], err)
			}
		}
	}
	if copies == 0 {
		t.Fatal("found no COPY of repository files in the Dockerfile")
	}
}
