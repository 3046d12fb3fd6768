package wal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// version1Log writes, in a new directory, a log as an older rops wrote it:
// a header of version 1, then one write per intent, each a batch record of
// batchMagic and the synced-to offset, then the intent's Begin; no end
// records. It returns the directory and the log's bytes.
func version1Log(t *testing.T, intents ...core.Intent) (string, []byte) {
	t.Helper()
	const size = 16 << 10
	hp, err := json.Marshal(header{Format: format, Version: 1, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	b := appendRecord(nil, kindHeader, hp)
	for _, in := range intents {
		p := make([]byte, batchPayloadV1)
		copy(p, batchMagic[:])
		binary.LittleEndian.PutUint64(p[len(batchMagic):], uint64(len(b)))
		b = appendRecord(b, kindBatch, p)
		js, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		b = appendRecord(b, kindBegin, js)
	}
	data := make([]byte, size)
	copy(data, b)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, data
}

func v1Intent(id string, tok core.Token) core.Intent {
	return core.Intent{Op: core.OpCreate, ID: core.GroupID(id), Token: tok, Nodes: []string{"node01", "node02"}}
}

// TestVersion1: a log of an older rops is read, and rewritten in this
// version at Open.
func TestVersion1(t *testing.T) {
	dir, _ := version1Log(t, v1Intent("a", "1.000001"), v1Intent("b", "1.000002"))
	j, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ins, err := j.Pending(t.Context())
	if err != nil || len(ins) != 2 || ins[0].ID != "a" || ins[1].ID != "b" {
		t.Fatalf("Pending=%v, %v; want a and b", ins, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if s := scan(data, whole(int64(len(data)))); s.hdr == nil || s.hdr.Version != version || len(s.entries) != 2 || len(s.damage) > 0 {
		t.Fatalf("after Open the log is %+v, want version %d with 2 intents", s, version)
	}
}

// TestVersion1Tail: an unreadable last write of a version 1 log, which
// gives no write's length, is damage, whatever it looks like: a bit
// flipped, or the write cut short. Nothing is dropped without a word.
func TestVersion1Tail(t *testing.T) {
	dir, data := version1Log(t, v1Intent("a", "1.000001"), v1Intent("b", "1.000002"))
	end := len(data)
	for end > 0 && data[end-1] == 0 {
		end--
	}
	for name, damage := range map[string]func(b []byte){
		"a bit flipped in the last Begin": func(b []byte) { b[end-10] ^= 4 },
		"the last Begin cut short":        func(b []byte) { clear(b[end-30 : end]) },
	} {
		t.Run(name, func(t *testing.T) {
			b := append([]byte(nil), data...)
			damage(b)
			if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o644); err != nil {
				t.Fatal(err)
			}
			j, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			ins, err := j.Pending(t.Context())
			if !errors.Is(err, ErrDamaged) || len(ins) != 1 {
				t.Fatalf("Pending=%v, %v; want a, and ErrDamaged", ins, err)
			}
		})
	}
}
