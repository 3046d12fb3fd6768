// Package badger keeps group records on disk in a badger database
// (github.com/dgraph-io/badger/v4), so that embedded nodes keep their state
// between commands. One directory holds one node's database; only one
// process at a time may open it.
package badger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/reliable-ops/rops/core"
)

// ErrLocked is the class of the error Open and ReadJournal return when
// another process, or this one, has the directory open. Match it with
// errors.Is; the error is also of class core.ErrInvalid, a usage error: the
// user chose a data dir that is in use.
var ErrLocked = errors.New("data dir in use")

// recordPrefix starts the key of every group record ("g/" + id, value: the
// token), leaving room for other kinds of keys in the same database.
const recordPrefix = "g/"

// tombPrefix starts the key of every tombstone: "t/", the id's length as a
// uvarint, the id, then the token; no value. The length keeps the key one
// pair's alone whatever bytes ids and tokens hold. Only point reads find
// tombstones: List and Count iterate over recordPrefix alone.
const tombPrefix = "t/"

// removalPrefix starts the key of every record of a removal: "r/", the id's
// length as a uvarint, the id, then the token of the Remove; the value is
// the token it removed. Kept with the tombstones' TTL.
const removalPrefix = "r/"

// fencePrefix starts the key of every id's fence: "f/" then the id; the
// value is the greatest fence a request on the id carried
// (core.CheckFence). No TTL: a fence is kept as long as the database, as a
// coordinator may resume after any pause. Only point reads find fences.
const fencePrefix = "f/"

// Store is a core.Store in a badger database. Every write is synced to disk
// before it returns. It is safe for concurrent use.
//
// Its writes go through a committer, which gathers the writes of concurrent
// callers into one transaction and one disk sync (group commit), each still
// with its own outcome: a local target's workers share a sync instead of
// paying one each, and the sync is most of what a synced write costs
// (BenchmarkCreate; BENCHMARKS.md has the figures).
//
// The Store fences (core.Fencer): every conditional Delete(id, token), found
// or not, every unconditional one that removed a record, and every
// Create(id, token) refused with ErrExists leaves a tombstone for (id,
// token) in the same transaction, and a Create(id, token) of an id it does
// not hold fails with core.ErrFenced while that tombstone lasts. A
// Remove(id, before) that removed a record leaves one for the token removed
// and a key recording the removal, from which it answers a copy of itself.
// Tombstones are keys of their own with badger's TTL, kept at least
// WithTombstoneTTL (core.DefaultTombstoneTTL) after the last delete that
// left them, by the wall clock, and removed by badger's compaction after
// that. They are not bounded in number: each costs a few dozen bytes of
// disk, for the TTL.
//
// It also keeps, for every id, the greatest fence a request on it carried
// (core.WithFence, core.CheckFence), and refuses an older one with an
// EStale error before any other rule, touching nothing. A fence is raised
// in the transaction of the request's effect; a Get that raises one is a
// write, through the committer, and a Get that does not stays a read. Fences
// are keys of their own, with no TTL, kept as long as the database: each id
// ever fenced costs one, about 15 bytes of disk in a table plus its id and
// token.
type Store struct {
	db      *badgerdb.DB
	c       *committer // the only writer of db
	dir     string
	ttl     time.Duration // of tombstones
	noTombs bool          // keep none, as the original server
	// mapDir is dir as /proc/self/maps names it, and listed counts the
	// records listed since the tables' pages were last released
	// (releaseTables).
	mapDir    string
	listed    atomic.Int64
	closeOnce sync.Once
	closeErr  error
}

var (
	_ core.Store           = (*Store)(nil)
	_ core.Fencer          = (*Store)(nil)
	_ core.Scanner         = (*Store)(nil)
	_ core.Remover         = (*Store)(nil)
	_ core.TombstoneKeeper = (*Store)(nil)
)

// Option configures Open.
type Option func(*config)

type config struct {
	logger       *slog.Logger
	syncWrites   bool
	tombstoneTTL time.Duration
	noTombstones bool
}

// WithoutTombstones makes a Store that keeps no tombstones and so fences
// nothing, as the original server: it ignores the fences requests carry,
// and keeps none. For `rops serve --original`, and for tests of what rops
// does against such a node.
func WithoutTombstones() Option {
	return func(c *config) { c.noTombstones = true }
}

// WithTombstoneTTL keeps tombstones for at least d (core.DefaultTombstoneTTL
// if d is not positive). Keep it longer than any request to the store can
// live.
func WithTombstoneTTL(d time.Duration) Option {
	return func(c *config) { c.tombstoneTTL = d }
}

// WithLogger routes badger's warnings and errors to l; its informational
// chatter goes to l at debug level. Without it badger logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// Open opens the Store in dir, creating dir and the database if need be. It
// fails with an ErrLocked error if the directory is in use.
func Open(dir string, opts ...Option) (*Store, error) {
	db, err := openDB(dir, "data dir", opts)
	if err != nil {
		return nil, err
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.tombstoneTTL <= 0 {
		cfg.tombstoneTTL = core.DefaultTombstoneTTL
	}
	s := &Store{db: db, dir: dir, ttl: cfg.tombstoneTTL, noTombs: cfg.noTombstones, mapDir: mapDir(dir)}
	s.c = newCommitter(db, func(err error) error {
		return core.Errorf(core.EInternal, "badger %s: cannot write; the store refuses writes until reopened: %w", dir, err)
	}, core.Errorf(core.EInternal, "badger %s is closed", dir))
	return s, nil
}

// openDB opens the badger database in dir with the options every rops
// database shares (a Store's, and an older rops' journal). what names dir
// in errors ("data dir", "journal"); a directory in use is an ErrLocked
// error.
func openDB(dir, what string, opts []Option) (*badgerdb.DB, error) {
	cfg := config{syncWrites: true}
	for _, o := range opts {
		o(&cfg)
	}
	// badger drops what it cannot read in its logs; refuse first.
	if err := verify(dir, what); err != nil {
		if inUse(dir) {
			// Its writer may be mid-write.
			return nil, lockedError(what, dir)
		}
		return nil, err
	}
	db, err := badgerdb.Open(badgerOptions(dir, cfg))
	if err != nil {
		if isLocked(err) {
			return nil, lockedError(what, dir)
		}
		return nil, core.Errorf(core.EInternal, "cannot open the badger database of the %s %s: %w", what, dir, err)
	}
	return db, nil
}

// badgerOptions tunes badger for a short-lived CLI that opens a database
// per node at every command, and stores a few dozen bytes per record (an
// older rops' journal, a few hundred per intent). Open and
// Close cost more the larger the memtable (badger sets up a memtable and
// its log file at every Open), so the memtable and the value log files are
// as small as badger allows; flushing so small a memtable often is cheap
// next to the synced writes. Every value stays in the LSM tree next to its key, so reads
// never touch the value log. Nothing is compressed, so no block cache is
// needed.
func badgerOptions(dir string, cfg config) badgerdb.Options {
	opt := badgerdb.DefaultOptions(dir).
		WithSyncWrites(cfg.syncWrites).
		WithMemTableSize(memTableSize).
		WithValueLogFileSize(1 << 20).
		// At most 15% of the memtable, as badger requires.
		WithValueThreshold(64 << 10).
		WithNumVersionsToKeep(1).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithMetricsEnabled(false).
		// Two is the fewest badger allows short of none, and none would
		// stall writes for good once level 0 fills under `rops serve`.
		WithNumCompactors(2).
		WithLogger(nil)
	// Conflict detection stays on although a committer is every
	// database's only writer, so that a second writer, were one added,
	// could not make two check-and-sets both succeed.
	if cfg.logger != nil {
		opt = opt.WithLogger(slogLogger{cfg.logger.With("dir", dir)})
	}
	return opt
}

// memTableSize is the size of badger's memtable, and half that of its
// memtable logs.
const memTableSize = 1 << 20

// isLocked reports whether err is badger's failure to lock its directory.
// badger flattens the cause into the message (y.Wrapf outside its debug
// mode), so the message is all there is to go by; TestOpenLocked pins it.
func isLocked(err error) bool {
	return strings.Contains(err.Error(), "Cannot acquire directory lock")
}

// lockFile is the file in which badger writes the pid of the process that
// holds the directory.
const lockFile = "LOCK"

// lockedError says who holds dir, the what of openDB, as far as badger's
// lock file tells, and what the user can do about it.
func lockedError(what, dir string) error {
	who := "another process (another rops command, or `rops serve`?)"
	b, err := os.ReadFile(filepath.Join(dir, lockFile))
	if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
		who = fmt.Sprintf("another process (pid %d: another rops command, or `rops serve`?)", pid)
		if pid == os.Getpid() {
			who = "this process, which has it open already"
		}
	}
	return &core.Error{Code: core.EInvalid, Err: ErrLocked, Message: fmt.Sprintf(
		"%s %s is in use by %s: wait for it to finish, or use another --data dir", what, dir, who)}
}

// Close waits for the writes in progress and closes the database, flushing
// it to disk. Later calls do nothing and return the first call's error;
// writes after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.c.close()
		if err := s.db.Close(); err != nil {
			s.closeErr = core.Errorf(core.EInternal, "cannot close the badger database in %s: %w", s.dir, err)
		}
	})
	return s.closeErr
}

// Fences reports whether the Store keeps tombstones: unless opened
// WithoutTombstones.
func (s *Store) Fences() bool { return !s.noTombs }

// TombstoneTTL returns how long the Store keeps a tombstone at least.
func (s *Store) TombstoneTTL() time.Duration { return s.ttl }

// Create stores a record for id with token. It returns nil if the record is
// new or a replay with the same token, an ErrExists error if id is held
// with another token (and then leaves a tombstone for (id, token)), and an
// ErrFenced error if id is not held and a tombstone for (id, token) is. It
// returns an EStale error, touching nothing, if ctx carries a fence older
// than id's.
func (s *Store) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	return s.c.do(ctx, &storeOp{s: s, id: id, token: token, fence: s.fenceOf(ctx)})
}

// Delete removes the record for id; a non-empty token makes it conditional on
// the record holding that token. It returns an ErrNotFound error if there is
// no such record. A conditional delete leaves a tombstone for (id, token)
// even then; an unconditional one leaves one for the token it removed. It
// returns an EStale error, touching nothing, if ctx carries a fence older
// than id's.
func (s *Store) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	return s.c.do(ctx, &storeOp{s: s, del: true, id: id, token: token, fence: s.fenceOf(ctx)})
}

// Removes reports whether the Store serves Remove: unless opened
// WithoutTombstones, as Remove's answers to late copies rest on its
// records.
func (s *Store) Removes() bool { return s.Fences() }

// Remove deletes the record for id if its token is older than before, and
// returns the token removed (core.Remover, core.CheckRemove). In the same
// transaction it leaves a tombstone for that token and records that before
// removed it, for the tombstones' TTL, and answers a later Remove(id,
// before) from that record. It returns an ErrNotFound error if it removed
// nothing, and an ErrExists error with the token held if that is not older
// than before. It returns an EStale error, touching nothing and answering
// no token, if ctx carries a fence older than id's.
func (s *Store) Remove(ctx context.Context, id core.GroupID, before core.Token) (core.Token, error) {
	op := &storeOp{s: s, remove: true, id: id, token: before, fence: s.fenceOf(ctx)}
	err := s.c.do(ctx, op)
	return op.answer, err
}

// fenceOf returns the fence ctx carries, if the Store fences: "" for none.
func (s *Store) fenceOf(ctx context.Context) core.Token {
	if s.noTombs {
		return ""
	}
	return core.FenceOf(ctx)
}

// storeOp is a Create, a Delete, a Remove, or a Get that raises the id's
// fence, for the Store's committer.
type storeOp struct {
	s      *Store
	del    bool
	remove bool
	get    bool
	id     core.GroupID
	token  core.Token
	fence  core.Token  // the request's, if the Store fences
	answer core.Token  // a Remove's: the token removed, or held if newer
	rec    core.Record // a Get's
}

// apply checks the request's fence, then checks and sets the record, and
// the tombstone a delete leaves, in txn, and raises the fence with them.
// The checks read txn, which holds the earlier writes of the batch, so two
// writes of one id in a batch act as if committed one after the other.
func (op *storeOp) apply(txn *badgerdb.Txn) (wrote bool, err error) {
	raised, err := op.raiseFence(txn)
	if err != nil {
		return false, err
	}
	wrote, err = op.applyRules(txn)
	return wrote || raised, err
}

// raiseFence applies core.CheckFence to op's fence and the id's, in txn,
// and sets the id's fence to op's if it raises it. It goes first, so that
// a stale request writes nothing, and so that, should the request's writes
// then not fit the transaction (ErrTxnTooBig), the committer commits the
// fence and applies op again, which finds it raised already.
func (op *storeOp) raiseFence(txn *badgerdb.Txn) (bool, error) {
	if op.fence == "" {
		return false, nil
	}
	held, _, err := getValue(txn, fenceKey(op.id))
	if err != nil {
		return false, err
	}
	raise, err := core.CheckFence(op.id, core.Token(held), op.fence)
	if !raise {
		return false, err
	}
	return true, txn.Set(fenceKey(op.id), []byte(op.fence))
}

// applyRules is apply past the fence: the rules of the request's kind.
func (op *storeOp) applyRules(txn *badgerdb.Txn) (wrote bool, err error) {
	held, ok, err := get(txn, op.id)
	if err != nil {
		return false, err
	}
	if op.get {
		if !ok {
			return false, core.Errorf(core.ENotFound, "no group record %q", op.id)
		}
		op.rec = core.Record{ID: op.id, Token: held}
		return false, nil
	}
	if op.remove {
		return op.applyRemove(txn, held, ok)
	}
	if !op.del {
		fenced := false
		if !ok && !op.s.noTombs {
			if fenced, err = tombstoned(txn, op.id, op.token); err != nil {
				return false, err
			}
		}
		write, err := core.CheckCreate(op.id, held, ok, op.token, fenced)
		if core.ErrorCode(err) == core.EExists && !op.s.noTombs {
			// A copy of this create delivered later must not land once
			// the record is gone (core.CheckDelete's note).
			if terr := txn.SetEntry(badgerdb.NewEntry(tombKey(op.id, op.token), nil).WithTTL(op.s.tombstoneLife())); terr != nil {
				return false, terr
			}
			return true, err
		}
		if !write {
			return false, err // a replay writes nothing
		}
		err = txn.Set(key(op.id), []byte(op.token))
		return err == nil, err
	}
	_, refused := core.CheckDelete(op.id, held, ok, op.token)
	fence := op.token
	if fence == "" && refused == nil {
		fence = held
	}
	if fence != "" && !op.s.noTombs {
		// The tombstone goes first: should the delete then not fit the
		// transaction (ErrTxnTooBig), the committer commits what is in
		// it and applies op again, which finds the record still there
		// and does both.
		if err := txn.SetEntry(badgerdb.NewEntry(tombKey(op.id, fence), nil).WithTTL(op.s.tombstoneLife())); err != nil {
			return false, err
		}
		wrote = true
	}
	if refused != nil {
		return wrote, refused
	}
	if err := txn.Delete(key(op.id)); err != nil {
		return wrote, err
	}
	return true, nil
}

// applyRemove is apply for a Remove: what CheckRemove says, given the
// record of an earlier removal by the same token, read in txn.
func (op *storeOp) applyRemove(txn *badgerdb.Txn, held core.Token, found bool) (bool, error) {
	removed, known, err := getValue(txn, removalKey(op.id, op.token))
	if err != nil {
		return false, err
	}
	if known && found && held == core.Token(removed) {
		// The record of the removal was committed without the delete
		// (ErrTxnTooBig, below): finish it. Nothing else can bring the
		// token back, as it is tombstoned.
		op.answer = held
		return true, txn.Delete(key(op.id))
	}
	write, tok, refused := core.CheckRemove(op.id, held, found, op.token, core.Token(removed), known)
	op.answer = tok
	if !write {
		return false, refused
	}
	// As in a delete, the tombstones go first; should the delete then
	// not fit the transaction, the committer commits them and applies op
	// again, which finishes it (above).
	life := op.s.tombstoneLife()
	if err := txn.SetEntry(badgerdb.NewEntry(tombKey(op.id, held), nil).WithTTL(life)); err != nil {
		return false, err
	}
	if err := txn.SetEntry(badgerdb.NewEntry(removalKey(op.id, op.token), []byte(held)).WithTTL(life)); err != nil {
		return true, err
	}
	return true, txn.Delete(key(op.id))
}

// tombstoneLife is the TTL a tombstone is written with: badger rounds its
// expiry down to a whole second, so a second more keeps it at least s.ttl.
func (s *Store) tombstoneLife() time.Duration { return s.ttl + time.Second }

// tombstoned reports whether txn holds a live tombstone for (id, token).
func tombstoned(txn *badgerdb.Txn, id core.GroupID, token core.Token) (bool, error) {
	_, err := txn.Get(tombKey(id, token))
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// fail wraps an error of badger's that apply returned.
func (op *storeOp) fail(err error) error {
	what := "create"
	switch {
	case op.get:
		what = "get"
	case op.remove:
		what = "remove"
	case op.del:
		what = "delete"
	}
	return op.s.internal(what, op.id, err)
}

// Get returns the record for id, or an ErrNotFound error. It returns an
// EStale error, and not the record, if ctx carries a fence older than
// id's; a newer one it records, as a write would, in a synced transaction.
func (s *Store) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	if err := ctx.Err(); err != nil {
		return core.Record{}, err
	}
	op := &storeOp{s: s, get: true, id: id, fence: s.fenceOf(ctx)}
	raise := false
	err := s.view("get", id, func(txn *badgerdb.Txn) error {
		if op.fence != "" {
			held, _, err := getValue(txn, fenceKey(id))
			if err != nil {
				return err
			}
			if raise, err = core.CheckFence(id, core.Token(held), op.fence); err != nil || raise {
				return err
			}
		}
		_, err := op.applyRules(txn)
		return err
	})
	if raise {
		// A read cannot write: the committer checks the fence again, in
		// its transaction, and raises it there.
		err = s.c.do(ctx, op)
	}
	return op.rec, err
}

// List returns up to limit records with ids greater than after, sorted
// bytewise by id. A limit below 1 means core.DefaultPageSize, so a caller
// that does not care still gets bounded pages.
func (s *Store) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	if limit < 1 {
		limit = core.DefaultPageSize
	}
	var page []core.Record
	err := s.Scan(ctx, after, func(rec core.Record) bool {
		page = append(page, rec)
		return len(page) < limit
	})
	return page, err
}

// Scan calls fn with every record whose id is greater than after, in
// bytewise id order, until fn returns false; all from one snapshot. It
// returns ctx's error if ctx ends first.
func (s *Store) Scan(ctx context.Context, after core.GroupID, fn func(core.Record) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := 0
	defer func() { s.noteListed(n) }()
	return s.view("list after", after, func(txn *badgerdb.Txn) error {
		// Tokens are far below badger's value threshold, so they live in
		// the LSM tree next to their keys: prefetching them would only add
		// goroutines.
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte(recordPrefix)})
		defer it.Close()
		for it.Seek(key(after)); it.Valid(); it.Next() {
			item := it.Item()
			id := core.GroupID(item.Key()[len(recordPrefix):])
			if id == after {
				continue
			}
			var token core.Token
			if err := item.Value(func(v []byte) error { token = core.Token(v); return nil }); err != nil {
				return err
			}
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				if n >= releaseEvery {
					s.noteListed(n)
					n = 0
				}
			}
			if !fn(core.Record{ID: id, Token: token}) {
				return nil
			}
		}
		return nil
	})
}

// releaseEvery is how many records a Store lists between two releases of
// its tables' memory-mapped pages: few enough that a listing keeps only a
// small share of the tables resident, many enough that the releases (each
// reads /proc/self/maps) cost little next to the listing. Without them a
// listing of every record would keep every table resident (releaseTables).
const releaseEvery = 16 << 10

// noteListed counts n records listed, and releases the tables' pages every
// releaseEvery records.
func (s *Store) noteListed(n int) {
	if s.listed.Add(int64(n)) >= releaseEvery {
		s.listed.Store(0)
		releaseTables(s.mapDir)
	}
}

// mapDir returns dir as the kernel names it in /proc/self/maps: absolute,
// without symbolic links.
func mapDir(dir string) string {
	if d, err := filepath.Abs(dir); err == nil {
		dir = d
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	return dir
}

// Count returns the number of records held. It reads every key, so it costs
// time in proportion to the number of records.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := s.view("count", "", func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte(recordPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%releaseEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				s.noteListed(releaseEvery)
			}
		}
		return nil
	})
	return n, err
}

// view runs f in a read-only transaction. Errors of f that are *core.Error
// pass through; the rest are badger's and become EInternal.
func (s *Store) view(op string, id core.GroupID, f func(txn *badgerdb.Txn) error) error {
	err := s.db.View(f)
	if _, ok := errors.AsType[*core.Error](err); ok || err == nil {
		return err
	}
	return s.internal(op, id, err)
}

// internal wraps a storage failure of badger.
func (s *Store) internal(op string, id core.GroupID, err error) error {
	return core.Errorf(core.EInternal, "badger %s: %s %q: %w", s.dir, op, id, err)
}

// get reads id's token within txn; ok is false if there is no record.
func get(txn *badgerdb.Txn, id core.GroupID) (token core.Token, ok bool, err error) {
	v, ok, err := getValue(txn, key(id))
	return core.Token(v), ok, err
}

// getValue reads k's value within txn; ok is false if there is no such key
// (or it expired).
func getValue(txn *badgerdb.Txn, k []byte) (value string, ok bool, err error) {
	item, err := txn.Get(k)
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	err = item.Value(func(v []byte) error { value = string(v); return nil })
	return value, err == nil, err
}

func key(id core.GroupID) []byte {
	return append([]byte(recordPrefix), id...)
}

// fenceKey returns the key of id's fence; see fencePrefix.
func fenceKey(id core.GroupID) []byte {
	return append([]byte(fencePrefix), id...)
}

// tombKey returns the key of the tombstone for (id, token); see tombPrefix.
func tombKey(id core.GroupID, token core.Token) []byte { return pairKey(tombPrefix, id, token) }

// removalKey returns the key of the record of Remove(id, before); see
// removalPrefix.
func removalKey(id core.GroupID, before core.Token) []byte { return pairKey(removalPrefix, id, before) }

// pairKey returns prefix, id's length as a uvarint, id and token: one
// pair's key alone whatever bytes ids and tokens hold.
func pairKey(prefix string, id core.GroupID, token core.Token) []byte {
	k := make([]byte, 0, len(prefix)+binary.MaxVarintLen64+len(id)+len(token))
	k = append(k, prefix...)
	k = binary.AppendUvarint(k, uint64(len(id)))
	k = append(k, id...)
	return append(k, token...)
}

// slogLogger adapts a *slog.Logger to badger's Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Errorf(format string, args ...any) { s.log(slog.LevelError, format, args) }

func (s slogLogger) Warningf(format string, args ...any) { s.log(slog.LevelWarn, format, args) }

// Infof logs at debug level: badger's informational messages (replaying the
// log, compactions) mean nothing to a rops user.
func (s slogLogger) Infof(format string, args ...any) { s.log(slog.LevelDebug, format, args) }

func (s slogLogger) Debugf(format string, args ...any) { s.log(slog.LevelDebug, format, args) }

func (s slogLogger) log(level slog.Level, format string, args []any) {
	s.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}
