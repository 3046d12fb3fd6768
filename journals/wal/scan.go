package wal

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/reliable-ops/rops/core"
)

// Damage is one damaged byte range of the log.
type Damage struct {
	File       string // the log file's name
	Start, End int64  // the byte range, End excluded
	Why        string
}

// Key names the range for Discard: FILE@START-END.
func (d Damage) Key() string { return fmt.Sprintf("%s@%d-%d", d.File, d.Start, d.End) }

// DamageError lists the damaged ranges Open found in the log. It comes with
// the intents that could be read; nothing that was in the ranges can be:
// intents whose operations may be half done, and finishes, without which
// finished intents come back.
type DamageError struct {
	Path   string
	Ranges []Damage
}

// Keys returns the ranges' keys, as Discard takes them.
func (e *DamageError) Keys() []string {
	keys := make([]string, len(e.Ranges))
	for i, d := range e.Ranges {
		keys[i] = d.Key()
	}
	return keys
}

// Error names every range and says what to do.
func (e *DamageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "journal %s is damaged: ", e.Path)
	for i, d := range e.Ranges {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "bytes %d-%d (%s), key %s", d.Start, d.End, d.Why, d.Key())
	}
	b.WriteString(". Nothing was rolled back: the operations recorded there may be half done, and what they finished may come back. " +
		"Check the nodes (rops stats --diff), then drop the damage with rops recover --discard KEY for each key, or rops recover --accept-loss, " +
		"and make the nodes agree (rops repair: like every command that writes, it refuses to run until the damage is dropped)")
	return b.String()
}

// Is reports whether target is ErrDamaged.
func (e *DamageError) Is(target error) bool { return target == ErrDamaged }

// scanned is what scan read from a log.
type scanned struct {
	hdr     *header // nil if unreadable
	entries map[core.Token]*entry
	seq     uint64
	last    core.Token
	damage  []Damage
	end     int64 // where the next batch goes
	base    int64 // where the first write ends: the rewrite's that made the log
	torn    bool  // a crash left half-written bytes, to be cleared
}

// scan reads a log file's bytes: the intents its records leave unfinished,
// and its damage.
//
// Bytes that cannot be read are damage unless a crash may have left them,
// and then only if nothing they held was acted on:
//
//   - Bytes that a later batch record says were synced cannot have been
//     torn by a crash: damage. A Begin or an Update is synced before the
//     committer writes anything after it, so the next write's batch record
//     says so of every write that held one.
//   - The bytes of a write that no later batch record says was synced (the
//     last write, whose sync may have completed and its Begins been acted
//     on; or finishes, not synced on their own) are torn only if they bear
//     the mark a crash leaves on a write whose sync never completed (torn):
//     its end missing, or a sector of it zero. Such a write was never
//     synced, so nothing in it reached a node: it is dropped. Anything else
//     is damage: a bit flipped in a write that reached the disk whole
//     leaves no such mark.
//   - In a log of version 1, which gives no write's length, nothing
//     unreadable is taken for torn.
//
// A torn tail must moreover lie within window bytes of the last synced
// offset. Reading resumes at the next batch record, so that the writes
// after unreadable bytes (written, and maybe synced, after them) are kept.
// Past the log's end, scan reads only within ext, the extents of the file
// that may hold anything but zeros (readLog).
func scan(data []byte, ext []extent) scanned {
	file := FileName
	s := scanned{entries: map[core.Token]*entry{}}
	size := int64(len(data))
	r, err := readRecord(data, 0, version)
	if err == nil && r.kind == kindHeader {
		var h header
		if jerr := json.Unmarshal(r.payload, &h); jerr != nil || h.Format != format {
			err = errors.New("not a rops journal header")
		} else if h.Version != 1 && h.Version != version {
			err = fmt.Errorf("a journal of version %d; this rops reads versions 1 and %d", h.Version, version)
		} else {
			s.hdr = &h
		}
	} else if err == nil || errors.Is(err, errEnd) {
		err = errors.New("no header")
	}
	if s.hdr == nil {
		s.damage = []Damage{{File: file, Start: 0, End: size, Why: "the header cannot be read: " + err.Error()}}
		return s
	}
	v := s.hdr.Version
	type bad struct {
		start, end int64
		why        string
		in         write // the write the bytes are in, as far as known
	}
	var bads []bad
	synced := r.end()
	off := r.end()
	w := write{0, off} // where the next write starts (version 2)
	tail := int64(-1)  // unreadable bytes from here to the end of the file
	for {
		r, err := readRecord(data, off, v)
		if errors.Is(err, errEnd) {
			if v == 1 || off == w.end {
				break
			}
			err = errors.New("zeros where the records of a write go")
		}
		if err == nil && v > 1 {
			err = w.check(r)
		}
		if err == nil && r.kind == kindHeader {
			err = errors.New("a second header")
		}
		if err == nil && (r.kind == kindBegin || r.kind == kindUpdate) {
			var in core.Intent
			if in, err = decodeIntent(r.payload); err == nil {
				s.apply(r.kind, in)
			}
		}
		if err == nil && r.kind == kindFinish {
			delete(s.entries, core.Token(r.payload))
		}
		if err == nil && r.kind == kindBatch {
			synced = max(synced, r.syncedTo)
			w = write{r.off, r.off + r.size}
		}
		if err == nil && r.kind == kindEnd && s.base == 0 {
			s.base = r.end()
		}
		if err == nil {
			off = r.end()
			continue
		}
		// The write the bad bytes are in: the one being read, or, where
		// a write starts, the batch record that should be there.
		var in write
		switch {
		case v == 1:
		case off < w.end:
			in = w
		default:
			in = write{off, off + batchSize}
		}
		next := nextBatch(data, off, v)
		if next < 0 {
			tail = off
			bads = append(bads, bad{off, size, err.Error(), in})
			break
		}
		bads = append(bads, bad{off, next, err.Error(), in})
		off = next
		w = write{off, off}
	}
	s.end = off
	if tail >= 0 {
		s.end = tail
	}
	for _, b := range bads {
		isTorn := b.start >= synced && torn(data, b.in.start, b.in.end)
		end := b.end
		if b.end == size {
			// The tail: up to its last non-zero byte, which must be
			// within what a crash can leave unsynced.
			end = lastWritten(data, b.start, ext)
			isTorn = isTorn && end <= synced+window
			if !isTorn {
				end = max(end, b.start+1)
			}
		}
		if isTorn {
			s.torn = true
			continue
		}
		s.damage = append(s.damage, Damage{File: file, Start: b.start, End: end, Why: b.why})
	}
	if tail < 0 {
		// After the end of the log the file is zero, but for what a
		// crash left unsynced: a write whose first sector never reached
		// the disk (a bit flipped cannot zero a record's header).
		if nz := lastWritten(data, off, ext); nz > off {
			if nz > synced+window {
				start := max(off, synced+window)
				start += int64(len(data[start:nz]) - len(strings.TrimLeft(string(data[start:nz]), "\x00")))
				s.damage = append(s.damage, Damage{File: file, Start: start, End: nz, Why: "bytes written after the end of the log"})
			} else {
				s.torn = true
			}
		}
	}
	switch {
	case size < s.hdr.Size:
		s.damage = append(s.damage, Damage{File: file, Start: size, End: s.hdr.Size, Why: fmt.Sprintf("missing: the file is %d bytes long, and was written %d long", size, s.hdr.Size)})
	case size > s.hdr.Size:
		s.damage = append(s.damage, Damage{File: file, Start: s.hdr.Size, End: size, Why: fmt.Sprintf("beyond the end: the file was written %d bytes long", s.hdr.Size)})
	}
	return s
}

// write is the extent of one write of the committer in a log of version
// 2: from its batch record to the end of its end record.
type write struct{ start, end int64 }

// check returns an error for a record out of its place in the writes: a
// write starts with a batch record where the last one ends, and its end
// record ends where its batch record says.
func (w write) check(r record) error {
	switch {
	case r.off == w.end:
		if r.kind != kindBatch {
			return errors.New("a record where a write starts, not a batch record")
		}
	case r.kind == kindBatch:
		return errors.New("a batch record inside a write")
	case r.end() > w.end:
		return errors.New("a record across the end of its write")
	case (r.kind == kindEnd) != (r.end() == w.end):
		return errors.New("a write's end record out of place")
	}
	return nil
}

// apply records a Begin or an Update read from the log. An Update whose
// Begin is gone (dropped with damage) holds the whole intent, and stands
// for it.
func (s *scanned) apply(kind byte, in core.Intent) {
	if core.CompareTokens(in.Token, s.last) > 0 {
		s.last = in.Token
	}
	if e, ok := s.entries[in.Token]; ok {
		e.in = in
		return
	}
	s.seq++
	s.entries[in.Token] = &entry{seq: s.seq, in: in}
}
