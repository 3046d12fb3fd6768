package badger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"sync"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/reliable-ops/rops/core"
)

// ErrCorrupt is the class of the *CorruptError that Pending returns when
// journal entries cannot be read. Match it with errors.Is.
var ErrCorrupt = errors.New("corrupt journal entry")

// intentPrefix starts the key of every intent: "j/" and the sequence number
// of its Begin in 20 decimal digits. The digits make keys sort oldest first,
// as Pending must return them, and keep them printable, so that an error can
// name a corrupt entry by the key that Discard takes.
const intentPrefix = "j/"

// seqDigits is the most digits a uint64 takes in decimal.
const seqDigits = 20

// crcSize is the length of the CRC32-C checksum that precedes each intent's
// JSON in its value.
const crcSize = 4

// castagnoli is the CRC32-C table: the polynomial with hardware support.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal is a core.Journal in a badger database of its own, so that
// intents survive a crash of the process. Begin, Update, Finish and Discard
// return once their write is synced to disk. It is safe for concurrent use;
// only one Journal at a time, in any process, may have a directory open.
//
// Its writes go through a committer, which gathers the writes of
// concurrent callers into one transaction and one disk sync (group commit):
// a bulk job's 16 workers share a commit about 14 writes at a time.
//
// Space: Finish deletes the intent, so the journal holds only unfinished
// operations. An intent is far below the value threshold, so it lives in
// the LSM tree next to its key and never in the value log: compaction
// reclaims deleted intents, and value log GC would have nothing to do.
type Journal struct {
	db  *badgerdb.DB
	c   *committer // the only writer of db
	dir string

	// Owned by the committer goroutine once OpenJournal returns: only its
	// journalOps use them.
	index map[core.Token]uint64 // the sequence number of each readable intent
	next  uint64                // the sequence number of the next Begin

	closeOnce sync.Once
	closeErr  error
}

var _ core.Journal = (*Journal)(nil)

// opKind names what a journalOp does.
type opKind int

const (
	opBegin opKind = iota
	opUpdate
	opFinish
	opDiscard
)

// journalOp is one write of the Journal, for its committer.
type journalOp struct {
	j     *Journal
	kind  opKind
	token core.Token // Begin, Update, Finish
	value []byte     // Begin, Update: the encoded intent
	key   string     // Discard
}

// OpenJournal opens the Journal in dir, creating dir and the database if
// need be. It fails with an ErrLocked error if the directory is in use. An
// entry that cannot be read does not stop it: Pending reports it.
func OpenJournal(dir string, opts ...Option) (*Journal, error) {
	db, err := openDB(dir, "journal", opts)
	if err != nil {
		return nil, err
	}
	j := &Journal{
		db:    db,
		dir:   dir,
		index: make(map[core.Token]uint64),
		next:  1,
	}
	// Only this process has the directory open, so the index built here
	// stays true as long as every write goes through the committer.
	err = j.scan(func(key, _ []byte, in core.Intent, bad error) {
		if seq, ok := parseKey(key); ok {
			j.next = max(j.next, seq+1)
			if bad == nil {
				j.index[in.Token] = seq
			}
		}
	})
	if err != nil {
		_ = db.Close()
		return nil, j.internal("cannot read the journal", err)
	}
	j.c = newCommitter(db, func(err error) error {
		return j.internal("cannot write to the journal; it refuses writes until reopened", err)
	}, core.Errorf(core.EInternal, "journal %s is closed", dir))
	return j, nil
}

// Close waits for the writes in progress and closes the database. Later
// calls do nothing and return the first call's error; writes after Close
// fail.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		j.c.close()
		if err := j.db.Close(); err != nil {
			j.closeErr = j.internal("cannot close the journal", err)
		}
	})
	return j.closeErr
}

// Begin records in durably. It returns an ErrInvalid error if an intent
// with the same token is already recorded (tokens name one operation each)
// or if in has no token or an unknown Op.
func (j *Journal) Begin(ctx context.Context, in core.Intent) error {
	value, err := encode(in)
	if err != nil {
		return err
	}
	return j.c.do(ctx, &journalOp{j: j, kind: opBegin, token: in.Token, value: value})
}

// Update replaces the intent with in's token durably, keeping its place in
// Pending. It returns an ErrNotFound error if there is none, and an
// ErrInvalid error for an intent Begin would refuse.
func (j *Journal) Update(ctx context.Context, in core.Intent) error {
	value, err := encode(in)
	if err != nil {
		return err
	}
	return j.c.do(ctx, &journalOp{j: j, kind: opUpdate, token: in.Token, value: value})
}

// Finish removes the intent with token durably; an unknown token is not an
// error.
func (j *Journal) Finish(ctx context.Context, token core.Token) error {
	return j.c.do(ctx, &journalOp{j: j, kind: opFinish, token: token})
}

// Discard removes the entry under key durably, whatever it holds: it is how
// an operator clears a corrupt entry that Pending reported (by its key, in a
// *CorruptError), after checking what the operation it recorded left on the
// nodes. It returns an ErrInvalid error for a key that is not a journal
// entry's and an ErrNotFound error if there is no entry under key.
func (j *Journal) Discard(ctx context.Context, key string) error {
	if !strings.HasPrefix(key, intentPrefix) {
		return core.Errorf(core.EInvalid, "%q is not the key of a journal entry: those start with %q", key, intentPrefix)
	}
	return j.c.do(ctx, &journalOp{j: j, kind: opDiscard, key: key})
}

// Pending returns the unfinished intents, oldest first. If some entries
// cannot be read (torn, corrupted on disk, or not intents), it returns the
// readable intents together with a *CorruptError (class ErrCorrupt) that
// names every other entry: they stay in the journal until Discard removes
// them, so that no half-done operation is forgotten in silence.
func (j *Journal) Pending(ctx context.Context) ([]core.Intent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var intents []core.Intent
	var corrupt []CorruptEntry
	err := j.scan(func(key, value []byte, in core.Intent, bad error) {
		if bad != nil {
			corrupt = append(corrupt, CorruptEntry{Key: string(key), Value: bytes.Clone(value), Err: bad})
			return
		}
		intents = append(intents, in)
	})
	if err != nil {
		return nil, j.internal("cannot read the journal", err)
	}
	if len(corrupt) > 0 {
		return intents, &CorruptError{Dir: j.dir, Entries: corrupt}
	}
	return intents, nil
}

// scan calls f with every entry under intentPrefix in key order: its key
// and value, and its intent or why it cannot be read. The key and the value
// are valid only during f.
func (j *Journal) scan(f func(key, value []byte, in core.Intent, bad error)) error {
	return j.db.View(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte(intentPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			err := item.Value(func(v []byte) error {
				in, bad := decode(v)
				if _, ok := parseKey(item.Key()); !ok {
					bad = errors.New("not a journal key")
				}
				f(item.Key(), v, in, bad)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// apply writes op into txn and brings the index up to date. On an error,
// neither txn nor the index has changed.
func (op *journalOp) apply(txn *badgerdb.Txn) (wrote bool, err error) {
	j := op.j
	switch op.kind {
	case opBegin:
		if seq, ok := j.index[op.token]; ok {
			return false, core.Errorf(core.EInvalid, "journal %s: intent %s is recorded already, under %s", j.dir, op.token, keyOf(seq))
		}
		if err := txn.Set([]byte(keyOf(j.next)), op.value); err != nil {
			return false, err
		}
		j.index[op.token] = j.next
		j.next++
	case opUpdate:
		seq, ok := j.index[op.token]
		if !ok {
			return false, core.Errorf(core.ENotFound, "journal %s: no intent %s to update", j.dir, op.token)
		}
		if err := txn.Set([]byte(keyOf(seq)), op.value); err != nil {
			return false, err
		}
	case opFinish:
		seq, ok := j.index[op.token]
		if !ok {
			return false, nil
		}
		if err := txn.Delete([]byte(keyOf(seq))); err != nil {
			return false, err
		}
		delete(j.index, op.token)
	case opDiscard:
		if _, err := txn.Get([]byte(op.key)); errors.Is(err, badgerdb.ErrKeyNotFound) {
			return false, core.Errorf(core.ENotFound, "journal %s: no entry %s", j.dir, op.key)
		} else if err != nil {
			return false, err
		}
		if err := txn.Delete([]byte(op.key)); err != nil {
			return false, err
		}
		if seq, ok := parseKey([]byte(op.key)); ok {
			for token, s := range j.index {
				if s == seq {
					delete(j.index, token)
				}
			}
		}
	}
	return true, nil
}

// fail wraps an error of badger's that apply returned.
func (op *journalOp) fail(err error) error {
	if errors.Is(err, badgerdb.ErrTxnTooBig) {
		return core.Errorf(core.EInvalid, "journal %s: an intent of %d bytes is too large", op.j.dir, len(op.value))
	}
	return op.j.internal("cannot write to the journal", err)
}

// internal wraps a storage failure of badger.
func (j *Journal) internal(what string, err error) error {
	return core.Errorf(core.EInternal, "journal %s: %s: %w", j.dir, what, err)
}

// keyOf returns the key of the intent with sequence number seq.
func keyOf(seq uint64) string {
	return fmt.Sprintf("%s%0*d", intentPrefix, seqDigits, seq)
}

// parseKey returns the sequence number in an intent's key; ok is false if
// key is not one.
func parseKey(key []byte) (seq uint64, ok bool) {
	digits, found := bytes.CutPrefix(key, []byte(intentPrefix))
	if !found || len(digits) != seqDigits {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	return seq, err == nil
}

// encode returns in's value: the CRC32-C of its JSON, big-endian, then the
// JSON. The checksum finds an entry torn or damaged on disk, which JSON
// alone may not (a damaged token still parses).
func encode(in core.Intent) ([]byte, error) {
	if err := in.Validate(); err != nil {
		return nil, core.Errorf(core.EInvalid, "journal: refusing intent %s for %q: %w", in.Token, in.ID, err)
	}
	js, err := json.Marshal(in)
	if err != nil {
		return nil, core.Errorf(core.EInvalid, "journal: cannot encode intent %s for %q: %w", in.Token, in.ID, err)
	}
	v := make([]byte, crcSize, crcSize+len(js))
	binary.BigEndian.PutUint32(v, crc32.Checksum(js, castagnoli))
	return append(v, js...), nil
}

// decode reads an intent's value written by encode, saying why it cannot.
func decode(v []byte) (core.Intent, error) {
	var in core.Intent
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

// CorruptError lists the journal entries that Pending could not read. It
// comes with the intents that could be read; the entries it names stay in
// the journal until Discard removes them.
type CorruptError struct {
	Dir     string
	Entries []CorruptEntry
}

// CorruptEntry is one journal entry that cannot be read.
type CorruptEntry struct {
	Key   string // the entry's key, as Discard takes it
	Value []byte // its raw value, for inspection
	Err   error  // why it cannot be read
}

// Error names every entry and says what to do about them.
func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "journal %s: %d unreadable entries, left in place: ", e.Dir, len(e.Entries))
	for i, c := range e.Entries {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%q: %v", c.Key, c.Err)
	}
	b.WriteString(". The operations they recorded may be half done: check the nodes (rops stats --diff), fix them (rops repair), then remove each entry with rops recover --discard KEY")
	return b.String()
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
