package wal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/reliable-ops/rops/core"
)

// The log is a sequence of records, each
//
//	length uint32 (little-endian) | crc uint32 | kind byte | payload [length]byte
//
// where crc is the CRC32-C of the length's four bytes, the kind and the
// payload, so that a damaged length is caught as surely as a damaged
// payload. A record whose length and crc are both zero ends the log: the
// rest of the file is zero, as preallocated.
//
// The first record is the header. Every write of the committer (a batch)
// is then one run of records: a batch record, which gives the write's
// length and says up to where the file was synced when the write was
// made, the write's records, and an end record. Bytes a later batch record
// says were synced cannot have been torn by a crash: unreadable bytes there
// are damage. For the bytes after the last such mark, see torn.
//
// Version 1 (older rops) had no end records, and batch records of
// batchMagic then the synced-to offset; such a log is read, and rewritten
// in this version at Open.
const (
	headerSize = 9 // length, crc, kind

	kindHeader = 'H' // JSON header
	kindBatch  = 'S' // synced-to offset (uint64), the write's length (uint64), batchMagic
	kindEnd    = 'E' // no payload: the end of a write
	kindBegin  = 'B' // JSON intent
	kindUpdate = 'U' // JSON intent
	kindFinish = 'F' // the token
)

// batchMagic is part of every batch record: with the checksum it makes a
// batch record found by scanning damaged bytes a real one.
var batchMagic = [8]byte{'r', 'o', 'p', 's', '-', 'w', 'a', 'l'}

const (
	batchPayload   = 8 + 8 + 8                 // synced-to, length, batchMagic
	batchPayloadV1 = 8 + 8                     // batchMagic, synced-to
	batchSize      = headerSize + batchPayload // a batch record, which starts every write
	endSize        = headerSize                // an end record, which ends it
)

// sectorSize is the smallest unit a disk writes whole: a crash leaves each
// sector of a write as written or as it was before.
const sectorSize = 512

// maxRecord bounds a record's payload: an intent far larger than any
// cluster's is refused, so that a damaged length is seen as such.
const maxRecord = 512 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the payload of the first record.
type header struct {
	Format  string `json:"format"` // "rops-journal"
	Version int    `json:"version"`
	// Cluster is the identity of the cluster the journal is for, and
	// Nodes says which nodes that is, for people.
	Cluster string `json:"cluster,omitempty"`
	Nodes   string `json:"nodes,omitempty"`
	// Size is the file's size as written: preallocated, so that a file
	// cut short (or extended) is seen as damaged.
	Size int64 `json:"size"`
	// Last is the greatest token of any intent the journal recorded
	// before it was rewritten.
	Last core.Token `json:"last,omitempty"`
}

const (
	format  = "rops-journal"
	version = 2 // what this rops writes; it reads 1 too
)

// appendRecord appends a record of kind with payload to b.
func appendRecord(b []byte, kind byte, payload []byte) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	h[8] = kind
	crc := crc32.Update(0, castagnoli, h[0:4])
	crc = crc32.Update(crc, castagnoli, h[8:9])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	b = append(b, h[:]...)
	return append(b, payload...)
}

// appendWrite appends to b one write of recs: its batch record, saying the
// file was synced up to syncedTo, recs, and its end record.
func appendWrite(b []byte, syncedTo int64, recs []byte) []byte {
	var p [batchPayload]byte
	binary.LittleEndian.PutUint64(p[0:8], uint64(syncedTo))
	binary.LittleEndian.PutUint64(p[8:16], uint64(batchSize+len(recs)+endSize))
	copy(p[16:], batchMagic[:])
	b = appendRecord(b, kindBatch, p[:])
	b = append(b, recs...)
	return appendRecord(b, kindEnd, nil)
}

// record is one record read from the log.
type record struct {
	off     int64
	kind    byte
	payload []byte
	// A batch record's: the offset the file was synced up to, and the
	// write's length (0 in version 1).
	syncedTo, size int64
}

func (r record) end() int64 { return r.off + headerSize + int64(len(r.payload)) }

// errEnd is what readRecord returns at the zero record that ends the log.
var errEnd = errors.New("end of the log")

// readRecord reads the record at off in data, a log of version v: errEnd
// at the end of the log, or an error saying why the bytes there are not a
// record.
func readRecord(data []byte, off int64, v int) (record, error) {
	if off+headerSize > int64(len(data)) {
		if allZero(data[off:]) {
			return record{}, errEnd
		}
		return record{}, errors.New("a record cut off by the end of the file")
	}
	h := data[off : off+headerSize]
	n := binary.LittleEndian.Uint32(h[0:4])
	sum := binary.LittleEndian.Uint32(h[4:8])
	if n == 0 && sum == 0 && h[8] == 0 {
		return record{}, errEnd
	}
	if n > maxRecord {
		return record{}, fmt.Errorf("a record length of %d bytes, over the limit of %d", n, maxRecord)
	}
	end := off + headerSize + int64(n)
	if end > int64(len(data)) {
		return record{}, errors.New("a record cut off by the end of the file")
	}
	payload := data[off+headerSize : end]
	crc := crc32.Update(0, castagnoli, h[0:4])
	crc = crc32.Update(crc, castagnoli, h[8:9])
	crc = crc32.Update(crc, castagnoli, payload)
	if crc != sum {
		return record{}, fmt.Errorf("checksum mismatch (%08x, want %08x)", crc, sum)
	}
	r := record{off: off, kind: h[8], payload: payload}
	switch {
	case r.kind == kindHeader, r.kind == kindBegin, r.kind == kindUpdate, r.kind == kindFinish:
	case r.kind == kindBatch && v == 1:
		if n != uint32(batchPayloadV1) || !bytes.Equal(payload[:len(batchMagic)], batchMagic[:]) {
			return record{}, errors.New("a malformed batch record")
		}
		r.syncedTo = int64(binary.LittleEndian.Uint64(payload[len(batchMagic):]))
	case r.kind == kindBatch:
		if n != uint32(batchPayload) || !bytes.Equal(payload[16:], batchMagic[:]) {
			return record{}, errors.New("a malformed batch record")
		}
		r.syncedTo = int64(binary.LittleEndian.Uint64(payload[0:8]))
		r.size = int64(binary.LittleEndian.Uint64(payload[8:16]))
		if r.size < batchSize+endSize || r.size > int64(len(data))-off {
			return record{}, fmt.Errorf("a batch record giving its write a length of %d bytes", r.size)
		}
	case r.kind == kindEnd && v > 1:
		if n != 0 {
			return record{}, errors.New("a malformed end record")
		}
	default:
		return record{}, fmt.Errorf("an unknown record kind %q", h[8])
	}
	return r, nil
}

// nextBatch returns the offset of the first batch record after off in
// data, a log of version v, or -1: where reading resumes after damaged
// bytes.
func nextBatch(data []byte, off int64, v int) int64 {
	n := uint32(batchPayload)
	if v == 1 {
		n = uint32(batchPayloadV1)
	}
	for o := off + 1; o+headerSize+int64(n) <= int64(len(data)); o++ {
		// Cheap tests first: most offsets fail the length.
		if binary.LittleEndian.Uint32(data[o:o+4]) != n || data[o+8] != kindBatch {
			continue
		}
		if r, err := readRecord(data, o, v); err == nil && r.kind == kindBatch {
			return o
		}
	}
	return -1
}

// torn reports whether the write data[start:end] bears the mark a crash
// leaves on a write whose sync never completed; only such a write may be
// dropped without a word. See scan for what it is asked about.
//
// A write is appended over zeros: the file is preallocated, and a torn
// tail is cleared (rewritten) at the next Open. A crash before the write's
// sync completed leaves each sector of it as written or as it was, zero;
// a process that dies in write(2) leaves a prefix of it, the rest zero.
// So a torn write has a zero last byte, or a sector whose share of the
// write is all zero (etcd's wal decoder takes the same mark for a torn
// last entry). A write that reached the disk whole and was damaged
// afterwards has neither, for damage short of zeroing whole sectors: a bit
// flipped cannot zero a byte or a share whose bytes, as written, hold two
// bits or more, and each does. The first share begins with the batch
// record's length, 24 (two bits); the last byte is the end record's kind,
// 'E' (three bits); a whole sector of a write is never zero (JSON holds no
// zero byte, a record header or a batch record a few in a row, and a
// finish's token would need 512 NULs). The same holds for a batch record
// alone (start, start+batchSize), which ends with batchMagic: where a
// write should start, scan asks about that.
func torn(data []byte, start, end int64) bool {
	if start >= end || end > int64(len(data)) {
		return false
	}
	if data[end-1] == 0 {
		return true
	}
	for s := start; s < end; {
		e := min(end, (s/sectorSize+1)*sectorSize)
		if allZero(data[s:e]) {
			return true
		}
		s = e
	}
	return false
}

func allZero(b []byte) bool { return lastNonZero(b) == 0 }

// zeros is a block of zero bytes to compare with: bytes.Equal is a
// vectorized memcmp, many times faster than a loop over the bytes of the
// mostly zero, preallocated log (DefaultSize) that every Open reads.
var zeros [4096]byte

// extent is a byte range of the log file, end excluded.
type extent struct{ start, end int64 }

// whole is the extents of a file of size bytes all of which may be data.
func whole(size int64) []extent { return []extent{{0, size}} }

// lastWritten returns the offset after the last non-zero byte of data at
// or after from, or from if there is none, reading only within ext (the
// extents that may hold anything but zeros, in order; see readLog).
func lastWritten(data []byte, from int64, ext []extent) int64 {
	for i := len(ext) - 1; i >= 0; i-- {
		start, end := max(ext[i].start, from), min(ext[i].end, int64(len(data)))
		if start >= end {
			continue
		}
		if n := lastNonZero(data[start:end]); n > 0 {
			return start + int64(n)
		}
	}
	return from
}

// lastNonZero returns the offset after the last non-zero byte of b, or 0.
func lastNonZero(b []byte) int {
	end := len(b)
	for end >= len(zeros) && bytes.Equal(b[end-len(zeros):end], zeros[:]) {
		end -= len(zeros)
	}
	for end > 0 && b[end-1] == 0 {
		end--
	}
	return end
}

// encodeIntent returns in's payload, or an EInvalid error for an intent
// that Recover could not act on or that is too large.
func encodeIntent(in core.Intent) ([]byte, error) {
	if err := in.Validate(); err != nil {
		return nil, core.Errorf(core.EInvalid, "journal: refusing intent %s for %q: %v", in.Token, in.ID, err)
	}
	js, err := json.Marshal(in)
	if err != nil {
		return nil, core.Errorf(core.EInvalid, "journal: cannot encode intent %s for %q: %v", in.Token, in.ID, err)
	}
	if len(js) > maxRecord {
		return nil, core.Errorf(core.EInvalid, "journal: intent %s for %q is %d bytes long: the limit is %d", in.Token, in.ID, len(js), maxRecord)
	}
	return js, nil
}

func decodeIntent(p []byte) (core.Intent, error) {
	var in core.Intent
	if err := json.Unmarshal(p, &in); err != nil {
		return core.Intent{}, fmt.Errorf("not an intent: %v", err)
	}
	if err := in.Validate(); err != nil {
		return core.Intent{}, fmt.Errorf("not an intent: %v", err)
	}
	return in, nil
}
