package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// The steps of replace, in the order they must come: the new file is whole
// and synced before it is renamed over the log.
var replaceSteps = []string{"created", "preallocated", "written", "synced", "renamed", "dir synced"}

// compactSize is the size of the tests' logs: compactLog's history fits.
const compactSize = 1 << 20

// compactLog opens a journal in a new directory and leaves in it more
// history than Close keeps: intents 0-399 begun and finished, but for 7
// (updated to one node), 100 and 399 (pending), the finishes of the last
// not synced. It returns the journal, open.
func compactLog(t *testing.T) *Journal {
	t.Helper()
	j, err := Open(t.TempDir(), Options{Size: compactSize})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		if err := j.Begin(t.Context(), compactIntent(i)); err != nil {
			t.Fatal(err)
		}
		if i == 7 {
			in := compactIntent(i)
			in.Nodes = in.Nodes[:1]
			if err := j.Update(t.Context(), in); err != nil {
				t.Fatal(err)
			}
		}
		if i != 7 && i != 100 && i < 395 {
			if err := j.Finish(t.Context(), compactIntent(i).Token); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 395; i < 399; i++ {
		if err := j.Finish(t.Context(), compactIntent(i).Token); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Pending(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := j.end - j.base; h <= compactAt || j.end == j.synced {
		t.Fatalf("the log holds %d bytes of history, all synced: want more than %d, and finishes not synced", h, compactAt)
	}
	return j
}

func compactIntent(i int) core.Intent {
	return core.Intent{Op: core.OpCreate, ID: core.GroupID(fmt.Sprint("id", i)), Token: core.Token(fmt.Sprintf("1700000002.%06d", i)),
		Nodes: []string{"node01", "node02", "node03"}}
}

// checkCompacted opens the journal in dir and checks that it holds exactly
// what compactLog left unfinished, in order, 7 updated, and the last token;
// then that it takes a Begin and keeps it.
func checkCompacted(t *testing.T, dir, what string) {
	t.Helper()
	j, err := Open(dir, Options{Size: compactSize})
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	defer j.Close()
	ins, err := j.Pending(t.Context())
	var toks []core.Token
	for _, in := range ins {
		toks = append(toks, in.Token)
	}
	want := []core.Token{compactIntent(7).Token, compactIntent(100).Token, compactIntent(399).Token}
	if err != nil || !slices.Equal(toks, want) {
		t.Fatalf("%s: Pending=%v, %v; want %v", what, toks, err, want)
	}
	if got := len(ins[0].Nodes); got != 1 {
		t.Errorf("%s: the updated intent has %d nodes, want 1", what, got)
	}
	if got, want := j.LastToken(), compactIntent(399).Token; got != want {
		t.Errorf("%s: LastToken=%s, want %s", what, got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".tmp")); !os.IsNotExist(err) {
		t.Errorf("%s: the new file of a rewrite that did not finish is still there: %v", what, err)
	}
	more := compactIntent(500)
	if err := j.Begin(t.Context(), more); err != nil {
		t.Fatalf("%s: Begin: %v", what, err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("%s: Close: %v", what, err)
	}
	j, err = Open(dir, Options{Size: compactSize})
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	ins, err = j.Pending(t.Context())
	toks = toks[:0]
	for _, in := range ins {
		toks = append(toks, in.Token)
	}
	if want := append(want, more.Token); err != nil || !slices.Equal(toks, want) {
		t.Fatalf("%s: after a Begin and reopening: Pending=%v, %v; want %v", what, toks, err, want)
	}
}

// crashImage is the journal's directory as a crash at one step of a
// rewrite may leave it: its files' contents by name.
type crashImage struct {
	what  string
	files map[string][]byte
}

// TestCompactCrash: a crash at any step of the rewrite Close makes leaves
// a journal that opens with exactly the unfinished intents, 7's update and
// the last token, without damage, and takes writes. At each step the
// directory is copied as it is; and as a crash may leave it otherwise: the
// new file's bytes not on disk yet (cut short, or zero) and, once it is
// renamed, the rename lost. The log was synced before the rewrite began,
// and the new file is synced before it is renamed, so every crash leaves
// the old log whole or the new one whole.
func TestCompactCrash(t *testing.T) {
	j := compactLog(t)
	var old []byte
	var steps []string
	var images []crashImage
	j.crashPoint = func(step string) error {
		steps = append(steps, step)
		if j.synced != j.end {
			t.Errorf("at step %q of the rewrite the log is synced to %d of %d", step, j.synced, j.end)
		}
		files := map[string][]byte{}
		for _, name := range []string{FileName, FileName + ".tmp"} {
			if b, err := os.ReadFile(filepath.Join(j.dir, name)); err == nil {
				files[name] = b
			} else if !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		if old == nil {
			old = files[FileName]
		}
		images = append(images, crashImage{step, files})
		if tmp, ok := files[FileName+".tmp"]; ok && slices.Index(replaceSteps, step) < slices.Index(replaceSteps, "synced") {
			images = append(images,
				crashImage{step + ", the new file cut to half", map[string][]byte{FileName: files[FileName], FileName + ".tmp": tmp[:len(tmp)/2]}},
				crashImage{step + ", the new file zero", map[string][]byte{FileName: files[FileName], FileName + ".tmp": make([]byte, len(tmp))}})
		}
		if step == "renamed" {
			images = append(images, crashImage{step + ", the rename lost", map[string][]byte{FileName: old, FileName + ".tmp": files[FileName]}})
		}
		return nil
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !slices.Equal(steps, replaceSteps) {
		t.Fatalf("Close's rewrite took the steps %q, want %q", steps, replaceSteps)
	}
	checkCompacted(t, j.dir, "after Close")
	for _, im := range images {
		t.Run(im.what, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range im.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			checkCompacted(t, dir, "a crash at "+im.what)
		})
	}
}

// TestCompactFails: a step of Close's rewrite that fails leaves the log,
// or the new file renamed over it, whole; Close reports no error (the log
// is synced, and the next Close tries again), and the journal opens with
// exactly the unfinished intents.
func TestCompactFails(t *testing.T) {
	for _, fail := range replaceSteps {
		t.Run(fail, func(t *testing.T) {
			j := compactLog(t)
			failed := false
			j.crashPoint = func(step string) error {
				if step == fail {
					failed = true
					return errors.New("injected failure")
				}
				return nil
			}
			if err := j.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if !failed {
				t.Fatalf("Close's rewrite never reached step %q", fail)
			}
			checkCompacted(t, j.dir, "after a failure at "+fail)
		})
	}
}
