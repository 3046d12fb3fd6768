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
		"Check the nodes (rops stats --diff) and make them agree (rops repair), then drop the damage with rops recover --discard KEY for each key, " +
		"or rops recover --accept-loss")
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
	torn    bool  // a crash left half-written bytes, to be cleared
}

// scan reads a log file's bytes: the intents its records leave unfinished,
// and its damage.
//
// Bytes that cannot be read are damage unless a crash may have left them:
// only bytes written after the last completed sync may be torn, and a batch
// record says up to where the file was synced when it was written. So
// unreadable bytes at offset y are torn only if no batch record after them
// says the file was synced past y, and none lies further than window bytes
// past the last synced offset any batch record gives. Reading resumes at
// the next batch record, so that the batches after torn bytes (written, and
// maybe synced, after them) are kept.
func scan(data []byte) scanned {
	file := FileName
	s := scanned{entries: map[core.Token]*entry{}}
	size := int64(len(data))
	r, err := readRecord(data, 0)
	if err == nil && r.kind == kindHeader {
		var h header
		if jerr := json.Unmarshal(r.payload, &h); jerr != nil || h.Format != format {
			err = errors.New("not a rops journal header")
		} else if h.Version != version {
			err = fmt.Errorf("a journal of version %d; this rops reads version %d", h.Version, version)
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
	type bad struct {
		start, end int64
		why        string
	}
	var bads []bad
	type batch struct{ off, syncedTo int64 }
	batches := []batch{{0, r.end()}}
	off := r.end()
	tail := int64(-1) // unreadable bytes from here to the end of the file
	for {
		r, err := readRecord(data, off)
		if errors.Is(err, errEnd) {
			break
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
			batches = append(batches, batch{r.off, r.syncedTo()})
		}
		if err == nil {
			off = r.end()
			continue
		}
		next := nextBatch(data, off)
		if next < 0 {
			tail = off
			bads = append(bads, bad{off, size, err.Error()})
			break
		}
		bads = append(bads, bad{off, next, err.Error()})
		off = next
	}
	s.end = off
	if tail >= 0 {
		s.end = tail
	}
	synced := int64(0)
	for _, b := range batches {
		synced = max(synced, b.syncedTo)
	}
	for _, b := range bads {
		// Torn: only bytes written after the last sync, and nothing
		// written later says they were synced.
		torn := b.start >= synced
		end := b.end
		if b.end == size {
			// The tail: up to its last non-zero byte, which must be
			// within what a crash can leave unsynced.
			end = b.start + int64(lastNonZero(data[b.start:]))
			torn = torn && end <= synced+window
			if !torn {
				end = max(end, b.start+1)
			}
		}
		if torn {
			s.torn = true
			continue
		}
		s.damage = append(s.damage, Damage{File: file, Start: b.start, End: end, Why: b.why})
	}
	if tail < 0 {
		// After the end of the log the file is zero, but for what a
		// crash left unsynced.
		if nz := off + int64(lastNonZero(data[off:])); nz > off {
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
