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
// The first record is the header; every write of the committer (a batch)
// starts with a batch record, which says up to where the file was synced
// when the batch was written. That is what tells a torn tail from damage:
// bytes a later batch says were synced cannot have been torn by a crash.
const (
	headerSize = 9 // length, crc, kind

	kindHeader = 'H' // JSON header
	kindBatch  = 'S' // batchMagic, then synced-to offset (uint64)
	kindBegin  = 'B' // JSON intent
	kindUpdate = 'U' // JSON intent
	kindFinish = 'F' // the token
)

// batchMagic starts a batch record's payload: with the checksum it makes
// a batch record found by scanning damaged bytes a real one.
var batchMagic = [8]byte{'r', 'o', 'p', 's', '-', 'w', 'a', 'l'}

const batchPayload = len(batchMagic) + 8

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
	version = 1
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

// batchRecord returns the payload of a batch record.
func batchRecord(syncedTo int64) []byte {
	p := make([]byte, batchPayload)
	copy(p, batchMagic[:])
	binary.LittleEndian.PutUint64(p[len(batchMagic):], uint64(syncedTo))
	return p
}

// record is one record read from the log.
type record struct {
	off     int64
	kind    byte
	payload []byte
}

func (r record) end() int64 { return r.off + headerSize + int64(len(r.payload)) }

// errEnd is what readRecord returns at the zero record that ends the log.
var errEnd = errors.New("end of the log")

// readRecord reads the record at off in data: errEnd at the end of the log,
// or an error saying why the bytes there are not a record.
func readRecord(data []byte, off int64) (record, error) {
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
	switch h[8] {
	case kindHeader, kindBegin, kindUpdate, kindFinish:
	case kindBatch:
		if n != uint32(batchPayload) || !bytes.Equal(payload[:len(batchMagic)], batchMagic[:]) {
			return record{}, errors.New("a malformed batch record")
		}
	default:
		return record{}, fmt.Errorf("an unknown record kind %q", h[8])
	}
	return record{off: off, kind: h[8], payload: payload}, nil
}

// syncedTo returns the offset a batch record says was synced.
func (r record) syncedTo() int64 {
	return int64(binary.LittleEndian.Uint64(r.payload[len(batchMagic):]))
}

// nextBatch returns the offset of the first batch record after off in
// data, or -1: where reading resumes after damaged bytes.
func nextBatch(data []byte, off int64) int64 {
	for o := off + 1; o+headerSize+int64(batchPayload) <= int64(len(data)); o++ {
		// Cheap tests first: most offsets fail the length.
		if binary.LittleEndian.Uint32(data[o:o+4]) != uint32(batchPayload) || data[o+8] != kindBatch {
			continue
		}
		if r, err := readRecord(data, o); err == nil && r.kind == kindBatch {
			return o
		}
	}
	return -1
}

func allZero(b []byte) bool { return lastNonZero(b) == 0 }

// zeros is a block of zero bytes to compare with: bytes.Equal is a
// vectorized memcmp, many times faster than a loop over the bytes of the
// mostly zero, preallocated log (DefaultSize) that every Open reads.
var zeros [4096]byte

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
