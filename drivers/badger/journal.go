package badger

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/reliable-ops/rops/core"
)

// The journal of an older rops: a badger database of its own per target
// name, one entry per unfinished intent. rops now keeps its journal in
// journals/wal; ReadJournal is what is left of the old one, so that a command
// can move an old journal's intents into the new and recover settles them
// as any other. Nothing here writes an old journal.

// intentPrefix starts the key of every intent: "j/" and the sequence number
// of its Begin in seqDigits decimal digits, so keys sort oldest first.
const intentPrefix = "j/"

// seqDigits is the most digits a uint64 takes in decimal.
const seqDigits = 20

// crcSize is the length of the CRC32-C checksum, big-endian, that precedes
// each intent's JSON in its value.
const crcSize = 4

// castagnoli is the CRC32-C table, the old journal's checksum and badger's.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ReadJournal returns the unfinished intents of the journal an older rops
// kept in the badger database in dir, oldest first; it writes no entry. It
// fails with an ErrLocked error if dir is in use (an older rops still
// running) and an ErrDamaged error if badger's files are damaged. If some
// entries cannot be read (torn, damaged, or not intents), it returns the
// readable intents with a *CorruptError naming the others.
func ReadJournal(dir string) (intents []core.Intent, err error) {
	db, err := openDB(dir, "journal", nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = core.Errorf(core.EInternal, "journal %s: cannot close: %w", dir, cerr)
		}
	}()
	var corrupt []CorruptEntry
	err = db.View(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte(intentPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			in, bad := decode(item.Key(), v)
			if bad != nil {
				corrupt = append(corrupt, CorruptEntry{Key: string(item.Key()), Err: bad})
				continue
			}
			intents = append(intents, in)
		}
		return nil
	})
	if err != nil {
		return nil, core.Errorf(core.EInternal, "journal %s: cannot read: %w", dir, err)
	}
	if len(corrupt) > 0 {
		return intents, &CorruptError{Dir: dir, Entries: corrupt}
	}
	return intents, nil
}

// decode reads the intent of one entry, saying why it cannot. The checksum
// finds an entry torn or damaged on disk, which JSON alone may not (a
// damaged token still parses).
func decode(key, v []byte) (core.Intent, error) {
	var in core.Intent
	digits, ok := bytes.CutPrefix(key, []byte(intentPrefix))
	if _, err := strconv.ParseUint(string(digits), 10, 64); !ok || len(digits) != seqDigits || err != nil {
		return in, errors.New("not a journal key")
	}
	if len(v) < crcSize {
		return in, fmt.Errorf("torn: %d bytes, shorter than a checksum", len(v))
	}
	js := v[crcSize:]
	if got, want := crc32.Checksum(js, castagnoli), binary.BigEndian.Uint32(v); got != want {
		return in, fmt.Errorf("checksum mismatch (%08x, want %08x): torn or damaged", got, want)
	}
	if err := json.Unmarshal(js, &in); err != nil {
		return core.Intent{}, fmt.Errorf("not an intent: %w", err)
	}
	if err := in.Validate(); err != nil {
		return core.Intent{}, fmt.Errorf("not an intent: %w", err)
	}
	return in, nil
}

// CorruptError lists the entries of an old journal that ReadJournal could
// not read. The operations they recorded may be half done.
type CorruptError struct {
	Dir     string
	Entries []CorruptEntry
}

// CorruptEntry is one journal entry that cannot be read.
type CorruptEntry struct {
	Key string // the entry's key
	Err error  // why it cannot be read
}

// Error names the journal and every entry that cannot be read.
func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "journal %s: %d unreadable entries: ", e.Dir, len(e.Entries))
	for i, c := range e.Entries {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%q: %v", c.Key, c.Err)
	}
	return b.String()
}
