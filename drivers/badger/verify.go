package badger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4/table"

	"github.com/reliable-ops/rops/core"
)

// ErrDamaged is the class of the error Open and ReadJournal return for a
// database whose files are damaged. Match it with errors.Is.
var ErrDamaged = errors.New("badger database damaged")

// verifyTables checks every table's block checksums, as badger's
// options.OnTableRead would at Open, but without the goroutines badger's
// failed Open leaves running.
func verifyTables(dir, what string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		return nil
	}
	for i, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return core.Errorf(core.EInternal, "cannot read %s: %w", name, err)
		}
		if why := verifyTable(data, uint64(i)); why != "" {
			return &core.Error{Code: core.EInternal, Err: ErrDamaged, Message: fmt.Sprintf(
				"the %s %s is damaged: the table %s fails its checksums (%s). "+
					"Nothing was changed: restore the directory from a copy, or move it away and let rops repair refill the node from the others",
				what, dir, filepath.Base(name), why)}
		}
	}
	return nil
}

// verifyTable reads a table and says why it is damaged, or "".
func verifyTable(data []byte, id uint64) (why string) {
	// badger panics on an index it cannot read.
	defer func() {
		if r := recover(); r != nil {
			why = "its index cannot be read"
		}
	}()
	t, err := table.OpenInMemoryTable(data, id, &table.Options{})
	if err == nil {
		err = t.VerifyChecksum()
	}
	if err != nil {
		return "a block's checksum does not match"
	}
	return ""
}

// badger replays its memtable logs (*.mem, the writes not yet flushed to
// tables) when it opens a database, and stops at the first entry it cannot
// read, truncating the log there: a crash's torn write is dropped so, but
// so is every write after a damaged byte, without a word. verify reads the
// logs first and refuses what a crash cannot explain. Tables (*.sst) are
// checked by badger itself (their checksums, at open).

// The memtable log's format, from badger v4's value.go and structs.go: a
// header of logHeaderSize bytes, then entries, each a header (meta byte,
// user meta byte, uvarint key length, uvarint value length, uvarint expiry),
// the key (the user key and 8 bytes of version), the value, and a
// big-endian CRC32-C of all that. A transaction's entries carry bitTxn and
// end with an entry that carries bitFinTxn; an entry with no key ends the
// log.
const (
	logHeaderSize = 20
	bitTxn        = 1 << 6
	bitFinTxn     = 1 << 7
	maxKeySize    = 1 << 16
)

// memLogSize is the size badger gives a new memtable log: twice the
// memtable. A log that was replayed already is truncated to its end.
const memLogSize = 2 * memTableSize

// verify refuses the database in dir if a memtable log or a table holds
// damage.
func verify(dir, what string) error {
	if err := verifyTables(dir, what); err != nil {
		return err
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	if err != nil || len(names) == 0 {
		return nil
	}
	slices.Sort(names) // badger names them by number, zero-padded
	for i, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return core.Errorf(core.EInternal, "cannot read %s: %w", name, err)
		}
		// Only the newest log, still preallocated, was being written:
		// only it may end in a torn transaction.
		torn := i == len(names)-1 && len(data) == memLogSize
		if start, end, why := verifyMemLog(data, torn); why != "" {
			return &core.Error{Code: core.EInternal, Err: ErrDamaged, Message: fmt.Sprintf(
				"the %s %s is damaged: %s, bytes %d-%d (%s); badger would drop every write from there on. "+
					"Nothing was changed: restore the directory from a copy, or move it away and let rops repair refill the node from the others",
				what, dir, filepath.Base(name), start, end, why)}
		}
	}
	return nil
}

// verifyMemLog reads a memtable log and returns the damaged byte range and
// why, or why "" if it holds none. A torn transaction at the end, as a
// crash may leave it, is not damage if torn is set: the bytes after the
// last whole transaction then hold at most one transaction's entries.
func verifyMemLog(data []byte, torn bool) (start, end int64, why string) {
	if len(data) < logHeaderSize {
		if allZero(data) {
			return 0, 0, ""
		}
		return 0, int64(len(data)), "shorter than its header"
	}
	off := int64(logHeaderSize)
	valid := off // the end of the last whole transaction
	var txn uint64
	var lastTs uint64
	for {
		e, n, err := readMemEntry(data, off)
		if err != nil || n == 0 {
			// Unreadable, or a zero entry: the end of the log.
			break
		}
		ts := parseTs(e.key)
		switch {
		case e.meta&bitTxn != 0:
			if txn != 0 && ts != txn {
				return valid, off + n, "a transaction mixed with another"
			}
			txn = ts
		case e.meta&bitFinTxn != 0:
			if ts != txn {
				return valid, off + n, "the end of a transaction that did not begin"
			}
			txn = 0
			valid = off + n
			lastTs = max(lastTs, ts)
		default:
			if txn != 0 {
				return valid, off + n, "an entry inside a transaction"
			}
			valid = off + n
			lastTs = max(lastTs, ts)
		}
		off += n
	}
	rest := data[valid:]
	nz := int64(lastNonZero(rest))
	if nz == 0 {
		return 0, 0, ""
	}
	if !torn {
		return valid, valid + nz, "unreadable bytes after the last whole transaction, in a log that was complete"
	}
	// A crash tears only the transaction being written: every readable
	// entry after valid must be one of it, newer than all before.
	var ts uint64
	for o := valid; o < valid+nz; o++ {
		e, n, err := readMemEntry(data, o)
		if err != nil || n == 0 {
			continue
		}
		t := parseTs(e.key)
		if t <= lastTs || ts != 0 && t != ts {
			return valid, valid + nz, "entries of more than one transaction after an unreadable one"
		}
		ts = t
		o += n - 1
	}
	if nz > maxTxnBytes {
		return valid, valid + nz, "more unreadable bytes than one transaction holds"
	}
	return 0, 0, ""
}

// maxTxnBytes bounds one transaction's entries in the log: badger refuses a
// transaction over 15% of the memtable (ErrTxnTooBig), plus its end entry.
const maxTxnBytes = 15*memTableSize/100 + 1024

// memEntry is one entry of a memtable log.
type memEntry struct {
	meta byte
	key  []byte
}

// readMemEntry reads the entry at off: n is its length, 0 at the zero
// entry that ends the log.
func readMemEntry(data []byte, off int64) (memEntry, int64, error) {
	b := data[off:]
	if len(b) < 2 {
		return memEntry{}, 0, errors.New("cut off")
	}
	i := 2
	var fields [3]uint64
	for k := range fields {
		v, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return memEntry{}, 0, errors.New("bad header")
		}
		fields[k] = v
		i += n
	}
	klen, vlen := fields[0], fields[1]
	if klen == 0 {
		return memEntry{}, 0, nil
	}
	if klen > maxKeySize || vlen > math.MaxInt32 || uint64(len(b)) < uint64(i)+klen+vlen+4 {
		return memEntry{}, 0, errors.New("bad lengths")
	}
	body := uint64(i) + klen + vlen
	sum := binary.BigEndian.Uint32(b[body : body+4])
	if crc32.Checksum(b[:body], castagnoli) != sum {
		return memEntry{}, 0, errors.New("checksum mismatch")
	}
	return memEntry{meta: b[0], key: b[i : uint64(i)+klen]}, int64(body + 4), nil
}

// parseTs returns the version at the end of a badger key.
func parseTs(key []byte) uint64 {
	if len(key) <= 8 {
		return 0
	}
	return math.MaxUint64 - binary.BigEndian.Uint64(key[len(key)-8:])
}

func allZero(b []byte) bool { return lastNonZero(b) == 0 }

// lastNonZero returns the offset after the last non-zero byte of b, or 0.
func lastNonZero(b []byte) int {
	return len(strings.TrimRight(string(b), "\x00"))
}
