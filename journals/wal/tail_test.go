package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/journals/wal"
)

// The tests of this file find the records of a log by their content and by
// the record header every version shares (length, crc, kind), not by the
// package's own reading of it.

// sector is the unit a disk writes whole.
const sector = 512

// smallLog is the size of the tests' logs: each case writes and reads one.
const smallLog = 16 << 10

// tailLog is a log whose last writes are, in this order: a Begin of
// intent 1 (padded), a Finish of 0 (unsynced, a write of its own), and a
// Begin of 2, synced: a process that touched the nodes for 2 and was then
// killed leaves this.
type tailLog struct {
	dir, path string
	data      []byte // the log file as the journal left it
	// finish and last are the extents of the last two writes: the
	// Finish of 0's, and the Begin of 2's. end is last[1], the end of the
	// log.
	finish, last [2]int
}

// writeStart returns the offset of the batch record that starts the write
// whose first record is at rec: the record just before it, of kind 'S'.
func writeStart(t *testing.T, data []byte, rec int) int {
	t.Helper()
	for p := rec - 9; p >= 0; p-- {
		if data[p+8] == 'S' && p+9+int(binary.LittleEndian.Uint32(data[p:p+4])) == rec {
			return p
		}
	}
	t.Fatalf("no batch record before offset %d", rec)
	return 0
}

// lastNonZero returns the offset after the last non-zero byte of b.
func lastNonZero(b []byte) int {
	return len(bytes.TrimRight(b, "\x00"))
}

// newTailLog writes a tailLog in a new directory, its Begin of 1 padded
// with a node name of pad bytes (at least 1).
func newTailLog(t *testing.T, pad int) *tailLog {
	t.Helper()
	j := mustOpen(t, t.TempDir(), wal.Options{Size: smallLog})
	mustBegin(t, j, 0)
	padded := intent(1)
	padded.Nodes = []string{strings.Repeat("n", pad)}
	if err := j.Begin(t.Context(), padded); err != nil {
		t.Fatal(err)
	}
	mustFinishEach(t, j, 0)
	mustBegin(t, j, 2)
	l := &tailLog{dir: j.Dir(), path: logOf(t, j)}
	var err error
	if l.data, err = os.ReadFile(l.path); err != nil {
		t.Fatal(err)
	}
	// The finish's payload is the bare token, after every Begin's JSON
	// that holds token 0.
	fin := bytes.LastIndex(l.data, []byte(token(0))) - 9
	begin := bytes.LastIndex(l.data, []byte(`{"op":"create","id":"id2"`)) - 9
	end := lastNonZero(l.data)
	l.finish = [2]int{writeStart(t, l.data, fin), writeStart(t, l.data, begin)}
	l.last = [2]int{l.finish[1], end}
	return l
}

// tailLogAt returns a tailLog whose last write has a sector boundary at
// offset at of it (negative: from its end).
func tailLogAt(t *testing.T, at int) *tailLog {
	t.Helper()
	l := newTailLog(t, 1)
	boundary := l.last[0] + at
	if at < 0 {
		boundary = l.last[1] + at
	}
	// Every byte of padding moves the last two writes one byte on.
	l = newTailLog(t, 1+(sector-boundary%sector)%sector)
	if boundary = l.last[0] + at; at < 0 {
		boundary = l.last[1] + at
	}
	if boundary%sector != 0 {
		t.Fatalf("the last write is at %d-%d: no sector boundary at %d of it", l.last[0], l.last[1], at)
	}
	return l
}

// open writes data as the log and opens the journal; the caller closes it.
func (l *tailLog) open(t *testing.T, data []byte) *wal.Journal {
	t.Helper()
	if err := os.WriteFile(l.path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := wal.Open(l.dir, wal.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

// geometries place a sector boundary at the edges of the last write (an
// offset into it, or from its end), where a crash could leave a share of a
// few bytes of it zero; and "as written", wherever it fell.
var geometries = []struct {
	name string
	at   int
}{
	{"as written", 0},
	{"boundary 1 byte into the write", 1},
	{"boundary 4 bytes into the write", 4},
	{"boundary 9 bytes into the write", 9},
	{"boundary 33 bytes into the write", 33},
	{"boundary 1 byte before its end", -1},
	{"boundary 9 bytes before its end", -9},
	{"boundary 20 bytes before its end", -20},
}

// tailLogs returns the tailLog of each geometry, and the bytes of its
// last two writes to try: all of them as written, and those near the
// boundary otherwise (only the sector shares change).
func tailLogs(t *testing.T, f func(t *testing.T, l *tailLog, from, to int)) {
	for _, g := range geometries {
		t.Run(g.name, func(t *testing.T) {
			if g.at == 0 {
				l := newTailLog(t, 1)
				f(t, l, l.finish[0], l.last[1])
				return
			}
			l := tailLogAt(t, g.at)
			b := l.last[0] + g.at
			if g.at < 0 {
				b = l.last[1] + g.at
			}
			f(t, l, max(l.finish[0], b-16), min(l.last[1], b+16))
		})
	}
}

// TestTailBitFlips: every bit of every byte of the last two writes
// flipped in turn (the synced Begin of 2 and its batch record, and the
// unsynced Finish before it), with a sector boundary at each edge of the
// last write: Open and Pending refuse with a damage error naming a byte
// range that holds the flipped byte. None is taken for a torn tail: the
// Begin was synced and may have been acted on, and the Finish with it.
func TestTailBitFlips(t *testing.T) {
	tailLogs(t, func(t *testing.T, l *tailLog, from, to int) {
		failures := 0
		data := slices.Clone(l.data)
		for off := from; off < to; off++ {
			for bit := range 8 {
				data[off] ^= 1 << bit
				if err := l.checkRefused(t, data, off); err != nil {
					t.Errorf("bit %d of byte %d flipped (the last writes are at %d-%d and %d-%d): %v",
						bit, off, l.finish[0], l.finish[1], l.last[0], l.last[1], err)
					failures++
				}
				data[off] ^= 1 << bit
				if failures >= 10 {
					t.Fatal("giving up")
				}
			}
		}
	})
}

// checkRefused opens the journal on data, damaged at off, and says what is
// wrong with what Pending returns, if anything.
func (l *tailLog) checkRefused(t *testing.T, data []byte, off int) error {
	t.Helper()
	j := l.open(t, data)
	defer j.Close()
	got, err := pendingTokens(t, j)
	var de *wal.DamageError
	if !errors.As(err, &de) {
		return fmt.Errorf("Pending=%v, %v; want a DamageError", got, err)
	}
	for _, d := range de.Ranges {
		if d.Start <= int64(off) && int64(off) < d.End {
			if msg := err.Error(); !strings.Contains(msg, l.path) || !strings.Contains(msg, fmt.Sprintf("bytes %d-%d", d.Start, d.End)) {
				return fmt.Errorf("error %q names neither the file nor bytes %d-%d", msg, d.Start, d.End)
			}
			return nil
		}
	}
	return fmt.Errorf("no damaged range holds byte %d: %v", off, err)
}

// TestTailCutShort: the last write, or the unsynced Finish's before it,
// cut short at every byte (a crash before the write's sync completed left
// only a prefix of it; the rest of the file region it was written to is
// zero) is a torn tail: dropped without a word, and the journal takes
// writes again. What was cut off was never synced, so never acted on.
func TestTailCutShort(t *testing.T) {
	tailLogs(t, func(t *testing.T, l *tailLog, from, to int) {
		for _, w := range [][2]int{l.finish, l.last} {
			for cut := max(w[0], from); cut < min(w[1], to); cut++ {
				data := slices.Clone(l.data)
				clear(data[cut:w[1]])
				l.checkTorn(t, data, fmt.Sprintf("the write at %d-%d cut at %d", w[0], w[1], cut), cut%16 == 0)
			}
		}
	})
}

// TestTailSectorsLost: the last write, made of a Begin large enough to
// span several sectors, with any set of its sectors lost (zero, as a crash
// leaves sectors the disk had not written, in any order), is a torn tail.
func TestTailSectorsLost(t *testing.T) {
	j := mustOpen(t, t.TempDir(), wal.Options{Size: smallLog})
	mustBegin(t, j, 0, 1)
	big := intent(2)
	for i := range 150 {
		big.Nodes = append(big.Nodes, fmt.Sprintf("node%03d", i))
	}
	if err := j.Begin(t.Context(), big); err != nil {
		t.Fatal(err)
	}
	l := &tailLog{dir: j.Dir(), path: logOf(t, j)}
	var err error
	if l.data, err = os.ReadFile(l.path); err != nil {
		t.Fatal(err)
	}
	begin := bytes.LastIndex(l.data, []byte(`{"op":"create","id":"id2"`)) - 9
	l.last = [2]int{writeStart(t, l.data, begin), lastNonZero(l.data)}
	// The shares of the write's sectors.
	var shares [][2]int
	for s := l.last[0]; s < l.last[1]; {
		e := min(l.last[1], (s/sector+1)*sector)
		shares = append(shares, [2]int{s, e})
		s = e
	}
	if len(shares) < 4 {
		t.Fatalf("the last write spans %d sectors, want 4 or more", len(shares))
	}
	for lost := 1; lost < 1<<len(shares); lost++ {
		data := slices.Clone(l.data)
		var which []int
		for i, s := range shares {
			if lost&(1<<i) != 0 {
				clear(data[s[0]:s[1]])
				which = append(which, i)
			}
		}
		l.checkTorn(t, data, fmt.Sprintf("sectors %v of %v lost", which, shares), true)
	}
}

// checkTorn opens the journal on data, a tailLog's with its tail torn, and
// checks that Pending returns intent 1 (0 is finished, or back if its
// finish was torn; 2 if its record is whole) without an error; and if
// write, that the journal takes writes and keeps them.
func (l *tailLog) checkTorn(t *testing.T, data []byte, what string, write bool) {
	t.Helper()
	j := l.open(t, data)
	defer j.Close()
	got, err := pendingTokens(t, j)
	if err != nil {
		t.Fatalf("%s: Pending: %v", what, err)
	}
	if !slices.Contains(got, token(1)) || slices.ContainsFunc(got, func(tok core.Token) bool { return tok != token(0) && tok != token(1) && tok != token(2) }) {
		t.Fatalf("%s: Pending=%v, want 1, and 0 and 2 if readable", what, got)
	}
	if !write {
		return
	}
	mustBegin(t, j, 3)
	j = reopen(t, j, wal.Options{})
	if got2, err := pendingTokens(t, j); err != nil || !slices.Equal(got2, append(got, token(3))) {
		t.Fatalf("%s: after a Begin of 3 and reopening: Pending=%v, %v; want %v", what, got2, err, append(got, token(3)))
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}
