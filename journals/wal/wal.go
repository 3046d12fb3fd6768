// Package wal keeps the coordinator's journal (core.Journal) in one
// append-only log file of checksummed records, with group commit, as etcd's
// wal and litestream's file replica do: a Begin costs one write and a share
// of one data sync, a Finish one write and no sync of its own (see
// core.Journal).
//
// Every record carries a CRC32-C. On Open, bytes that cannot be read are
// damage, found and named by file and byte range, unless they are a torn
// tail: a write that a crash cut off before its sync completed, which no
// later write says was synced and which shows the mark of the cut (its end,
// or a whole sector of it, zero). Such a write reached no node, since a
// Begin returns only once its write is synced, and is dropped; a record
// that may have been synced, and so acted on, never is. With damage the
// journal refuses every write, and Pending returns the intents it could
// read with a *DamageError, until Discard drops the damaged ranges on the
// user's word. The file is preallocated to a fixed size written in its
// header, so a file cut short is damage too.
//
// Open reads what was written since the log was last rewritten, and Close
// rewrites a log that holds more than a few KiB of finished history with
// only the unfinished intents: so the next Open reads those, and no more
// than compactAt bytes of history, however many operations went before.
package wal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/reliable-ops/rops/core"
)

// FileName is the log file's name in the journal's directory.
const FileName = "journal.wal"

// lockName is the file whose lock says the directory is in use.
const lockName = "LOCK"

// Sizes. The committer writes at most maxBatch bytes of records per write,
// syncs a write that holds a Begin or an Update before it reports it, and
// syncs unsynced finishes once they reach syncEvery, so that at any time at
// most window bytes are written and not synced: only those may be torn by a
// crash, and Open takes damage anywhere else for what it is.
const (
	// DefaultSize is the size of a new log file: about 40,000 operations
	// (Begin and Finish) before it is rewritten with only the unfinished
	// intents.
	DefaultSize = 4 << 20
	maxBatch    = 1 << 20
	syncEvery   = 64 << 10
	window      = 2 << 20
	// compactAt is how much history (the writes since the log was last
	// rewritten) Close leaves for the next Open to read; past it, Close
	// rewrites the log. Small, as each Open reads it all; not zero, so
	// that a command that wrote one operation (create-one) does not pay
	// for a new file every time.
	compactAt = 4 << 10
)

// ErrDamaged is the class of the *DamageError that Pending returns, and
// writes, while the log holds damage. Match it with errors.Is.
var ErrDamaged = errors.New("journal damaged")

// ErrLocked is the class of the error Open returns when another process,
// or this one, has the directory open. The error is also of class
// core.ErrInvalid.
var ErrLocked = errors.New("journal in use")

// ErrOtherCluster is the class of the errors Open and Pending return for a
// journal, or intents, of another cluster than Options.Cluster. They are
// also of class core.ErrInvalid.
var ErrOtherCluster = errors.New("journal of another cluster")

// Options configures Open.
type Options struct {
	// Cluster is the identity of the cluster the journal is for. A new
	// journal records it, and every intent begun gets it as its Cluster;
	// Open refuses a journal of another cluster, and Pending an intent of
	// another. Empty: no check.
	Cluster string
	// Nodes describes the cluster for people; the header keeps it.
	Nodes string
	// Size is the size of a new log file; default DefaultSize. A file is
	// rewritten larger when the unfinished intents need it.
	Size int64
}

// Journal is a core.Journal in a log file. Begin and Update return once
// their record is synced; the records of concurrent callers share one
// write and one data sync (group commit). Finish returns once its record is
// queued; the next sync makes it durable (see core.Journal). It is safe for
// concurrent use; only one Journal at a time, in any process, may have a
// directory open.
//
// Space: the log file is preallocated (DefaultSize), so writes never need
// more disk. Once it is full it is rewritten with only the unfinished
// intents, into a new file renamed over it; so is a log more than half full
// when it is opened, and, at Close, one that holds more than compactAt
// bytes of history.
type Journal struct {
	dir, path string
	opts      Options
	lock      *os.File

	mu      sync.Mutex // guards the state below, which Pending reads
	entries map[core.Token]*entry
	seq     uint64
	last    core.Token
	damage  *DamageError
	broken  error // a write failed: every later one fails (the committer's failed, for callers)

	// Owned by the committer goroutine once Open returns.
	f                   *os.File
	size, end, synced   int64
	base                int64 // where the rewrite that made the log ended: history follows
	failed              error
	buf                 []byte
	syncs, writes, rews atomic.Uint64

	qmu     sync.Mutex
	queue   []*op
	closed  bool
	wake    chan struct{}
	stopped chan struct{}

	closeOnce sync.Once
	closeErr  error

	// crashPoint, set by tests, is called after each step of replace
	// with the step's name; an error fails replace there.
	crashPoint func(step string) error
}

var (
	_ core.Journal     = (*Journal)(nil)
	_ core.TokenKeeper = (*Journal)(nil)
)

// entry is one unfinished intent and the order of its Begin.
type entry struct {
	seq uint64
	in  core.Intent
}

// Open opens the journal in dir, creating dir and the log if need be. It
// fails with an ErrLocked error if the directory is in use, and with an
// ErrOtherCluster error if the log is another cluster's. Damage does not
// stop it: Pending reports it, and writes are refused until Discard.
func Open(dir string, opts Options) (*Journal, error) {
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, core.Errorf(core.EInternal, "cannot create the journal directory %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	j := &Journal{
		dir: dir, path: filepath.Join(dir, FileName), opts: opts, lock: lock,
		entries: map[core.Token]*entry{},
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	if err := j.load(); err != nil {
		_ = j.f.Close()
		unlock(lock)
		return nil, err
	}
	go j.run()
	return j, nil
}

// load reads the log, or creates it, and leaves it open for appending.
func (j *Journal) load() error {
	_ = os.Remove(j.path + ".tmp") // a rewrite that did not finish
	data, ext, release, err := readLog(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return j.rewrite(0)
	}
	if err != nil {
		return j.internal("cannot read the journal", err)
	}
	s := scan(data, ext)
	release()
	if s.hdr != nil && j.opts.Cluster != "" && s.hdr.Cluster != "" && s.hdr.Cluster != j.opts.Cluster {
		return &core.Error{Code: core.EInvalid, Err: ErrOtherCluster, Message: fmt.Sprintf(
			"journal %s belongs to cluster %s (%s), not to this target's cluster %s (%s): it was moved or copied here; move it back, or run rops with the target it names",
			j.path, s.hdr.Cluster, s.hdr.Nodes, j.opts.Cluster, j.opts.Nodes)}
	}
	j.entries, j.seq, j.last = s.entries, s.seq, s.last
	if s.hdr != nil && core.CompareTokens(s.hdr.Last, j.last) > 0 {
		j.last = s.hdr.Last
	}
	if len(s.damage) > 0 {
		j.damage = &DamageError{Path: j.path, Ranges: s.damage}
	}
	if j.f, err = os.OpenFile(j.path, os.O_RDWR, 0); err != nil {
		return j.internal("cannot open the journal", err)
	}
	if j.damage != nil {
		// Writes are refused until Discard rewrites the log.
		return nil
	}
	j.size, j.end, j.base = s.hdr.Size, s.end, s.base
	if s.torn || s.end > j.size/2 || s.hdr.Version != version {
		// Clear what a crash left half written (a later batch's synced
		// mark would make it look like damage), the finished intents of
		// a log half full, and an older rops's format.
		return j.rewrite(0)
	}
	// What was read may not be on disk yet (the process that wrote it
	// died before its sync).
	if err := datasync(j.f); err != nil {
		return j.internal("cannot sync the journal", err)
	}
	j.synced = j.end
	return nil
}

// Close waits for the writes in progress, makes every finish durable and
// closes the log, rewritten with only the unfinished intents if it holds
// more than compactAt bytes of history. Later calls return the first
// call's error; writes after Close fail.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		j.qmu.Lock()
		j.closed = true
		close(j.wake)
		j.qmu.Unlock()
		<-j.stopped
		var errs []error
		if j.failed == nil && j.damage == nil {
			if err := j.settle(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := j.f.Close(); err != nil {
			errs = append(errs, j.internal("cannot close the journal", err))
		}
		unlock(j.lock)
		j.closeErr = errors.Join(errs...)
	})
	return j.closeErr
}

// settle makes every finish durable, then rewrites the log if it holds
// more than compactAt bytes of history. The log is synced first, so that
// a crash at any step of the rewrite leaves either it or the new file,
// each whole and holding the same unfinished intents. A rewrite that fails
// (no room for a new file) leaves the log as it is, whole and synced, to
// the next Close; it is no error of Close.
func (j *Journal) settle() error {
	if j.end > j.synced {
		if err := datasync(j.f); err != nil {
			return j.internal("cannot sync the journal", err)
		}
		j.syncs.Add(1)
		j.synced = j.end
	}
	if j.end-j.base > compactAt {
		_ = j.rewrite(0)
	}
	return nil
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// Begin records in durably, with Options.Cluster as its Cluster if it has
// none. It returns an ErrInvalid error if an intent with the same token is
// already recorded, if in has no token or an unknown Op, or is larger than
// 512 KiB, and an ErrOtherCluster error if it names another cluster.
func (j *Journal) Begin(ctx context.Context, in core.Intent) error {
	if in.Cluster == "" {
		in.Cluster = j.opts.Cluster
	}
	if j.opts.Cluster != "" && in.Cluster != j.opts.Cluster {
		return &core.Error{Code: core.EInvalid, Err: ErrOtherCluster, Message: fmt.Sprintf(
			"journal %s: intent %s is for cluster %s, and this journal is cluster %s's", j.path, in.Token, in.Cluster, j.opts.Cluster)}
	}
	p, err := encodeIntent(in)
	if err != nil {
		return err
	}
	return j.do(ctx, &op{kind: kindBegin, in: clone(in), payload: p})
}

// Update replaces the intent with in's token durably, keeping its place in
// Pending. It returns an ErrNotFound error if there is none, and an
// ErrInvalid error for an intent Begin would refuse.
func (j *Journal) Update(ctx context.Context, in core.Intent) error {
	if in.Cluster == "" {
		in.Cluster = j.opts.Cluster
	}
	p, err := encodeIntent(in)
	if err != nil {
		return err
	}
	return j.do(ctx, &op{kind: kindUpdate, in: clone(in), payload: p})
}

// Finish removes the intent with token; an unknown token is not an error.
// It returns once the finish is queued, in order with every later write,
// without waiting for its write or a sync: the next Begin's or Update's
// sync, or Close's, makes it durable, and Pending sees it. It fails only if
// the journal is closed, damaged or broken already.
func (j *Journal) Finish(ctx context.Context, token core.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	err := j.broken
	if j.damage != nil {
		err = j.damage
	}
	j.mu.Unlock()
	if err != nil {
		return err
	}
	if ctx.Done() != nil {
		// Queued, a Finish is not the caller's to withdraw.
		ctx = context.WithoutCancel(ctx)
	}
	return j.enqueue(&op{ctx: ctx, kind: kindFinish, in: core.Intent{Token: token}, payload: []byte(token)})
}

// Pending returns the unfinished intents, oldest first. While the log
// holds damage it returns the intents it could read with the
// *DamageError; it returns an ErrOtherCluster error, with the others, if
// some intents name another cluster.
func (j *Journal) Pending(ctx context.Context) ([]core.Intent, error) {
	// After the writes queued before it, Finishes included.
	if err := j.do(ctx, &op{kind: kindBarrier}); err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	es := slices.SortedFunc(maps.Values(j.entries), func(a, b *entry) int { return int(a.seq - b.seq) })
	var intents []core.Intent
	var foreign []string
	for _, e := range es {
		if j.opts.Cluster != "" && e.in.Cluster != "" && e.in.Cluster != j.opts.Cluster {
			foreign = append(foreign, fmt.Sprintf("%s of %q (token %s) is cluster %s's", e.in.Op, e.in.ID, e.in.Token, e.in.Cluster))
			continue
		}
		intents = append(intents, clone(e.in))
	}
	switch {
	case j.damage != nil:
		return intents, j.damage
	case len(foreign) > 0:
		return intents, &core.Error{Code: core.EInvalid, Err: ErrOtherCluster, Message: fmt.Sprintf(
			"journal %s holds %d intents of another cluster than this target's (%s): %s; they were not written here: run rops with the target they name",
			j.path, len(foreign), j.opts.Cluster, strings.Join(foreign, "; "))}
	}
	return intents, nil
}

// LastToken returns the greatest token of any intent the journal
// recorded, finished or not.
func (j *Journal) LastToken() core.Token {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.last
}

// Damage returns the damage Open found and Discard has not dropped, or nil.
func (j *Journal) Damage() *DamageError {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.damage
}

// Discard drops the damaged ranges named by keys (Damage().Keys()), which
// must name every one, and rewrites the log with the intents that could be
// read: the user's word that what the damage held is lost (the nodes
// checked, and repaired). The journal then takes writes again. It returns
// an ErrInvalid error for a key that names no damage, or if a damaged
// range is not named, and an ErrNotFound error if there is no damage.
func (j *Journal) Discard(ctx context.Context, keys []string) error {
	return j.do(ctx, &op{kind: kindDiscard, keys: keys})
}

// Ops that write no record of their own, and see every op queued before
// them done: Discard's, and Pending's barrier.
const (
	kindDiscard = 'D'
	kindBarrier = 'P'
)

// op is one write, for the committer.
type op struct {
	ctx     context.Context
	kind    byte
	in      core.Intent   // Begin, Update; Finish: the token
	payload []byte        // the record's payload
	keys    []string      // Discard
	err     error         // the outcome, set before done is closed
	done    chan struct{} // nil: nobody waits (a Finish)
}

// end reports o's outcome to its caller, if one waits.
func (o *op) end(err error) {
	o.err = err
	if o.done != nil {
		close(o.done)
	}
}

// do queues o for the committer and waits for its outcome. A ctx that has
// ended before the committer takes o means nothing is written and ctx's
// error is returned; once queued, o is not abandoned.
func (j *Journal) do(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.ctx, o.done = ctx, make(chan struct{})
	if err := j.enqueue(o); err != nil {
		return err
	}
	<-o.done
	return o.err
}

// enqueue queues o for the committer.
func (j *Journal) enqueue(o *op) error {
	j.qmu.Lock()
	defer j.qmu.Unlock()
	if j.closed {
		return core.Errorf(core.EInternal, "journal %s is closed", j.path)
	}
	j.queue = append(j.queue, o)
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// run is the committer goroutine: it writes the queued ops a batch at a
// time until Close.
func (j *Journal) run() {
	defer close(j.stopped)
	for range j.wake {
		for {
			// Let the callers the last commit woke queue their next
			// writes first, so that they share the next sync.
			runtime.Gosched()
			j.qmu.Lock()
			batch := j.queue
			j.queue = nil
			j.qmu.Unlock()
			if len(batch) == 0 {
				break
			}
			for len(batch) > 0 {
				batch = j.commit(batch)
			}
		}
	}
}

// commit writes a batch of the ops at the head of batch, at most maxBatch
// bytes of records, ends each with its outcome, and returns the ops left.
func (j *Journal) commit(batch []*op) []*op {
	type change struct {
		token core.Token
		e     *entry // nil: finished
	}
	var changes []change
	lookup := func(t core.Token) *entry {
		for i := len(changes) - 1; i >= 0; i-- {
			if changes[i].token == t {
				return changes[i].e
			}
		}
		return j.entries[t]
	}
	recs := j.buf[:0]
	sync := false
	var applied []*op
	seq := j.seq
	last := j.last
	var rest []*op
	for i, o := range batch {
		if len(recs) >= maxBatch || (o.kind == kindDiscard || o.kind == kindBarrier) && len(applied) > 0 {
			// A barrier starts a batch of its own, after the writes
			// before it are done.
			rest = batch[i:]
			break
		}
		var err error
		switch {
		case j.failed != nil:
			err = j.failed
		case o.ctx.Err() != nil:
			err = o.ctx.Err()
		case o.kind == kindBarrier:
		case o.kind == kindDiscard:
			err = j.discard(o.keys)
		case j.damage != nil:
			err = j.damage
		case o.kind == kindBegin && lookup(o.in.Token) != nil:
			err = core.Errorf(core.EInvalid, "journal %s: intent %s is recorded already", j.path, o.in.Token)
		case o.kind == kindUpdate && lookup(o.in.Token) == nil:
			err = core.Errorf(core.ENotFound, "journal %s: no intent %s to update", j.path, o.in.Token)
		case o.kind == kindFinish && lookup(o.in.Token) == nil:
			// Nothing to write.
		default:
			recs = appendRecord(recs, o.kind, o.payload)
			switch o.kind {
			case kindBegin:
				seq++
				changes = append(changes, change{o.in.Token, &entry{seq: seq, in: o.in}})
				if core.CompareTokens(o.in.Token, last) > 0 {
					last = o.in.Token
				}
				sync = true
			case kindUpdate:
				changes = append(changes, change{o.in.Token, &entry{seq: lookup(o.in.Token).seq, in: o.in}})
				sync = true
			case kindFinish:
				changes = append(changes, change{o.in.Token, nil})
			}
		}
		o.err = err
		applied = append(applied, o)
		if o.kind == kindDiscard || o.kind == kindBarrier {
			rest = batch[i+1:]
			break
		}
	}
	j.buf = recs
	err := j.write(recs, sync)
	if err == nil {
		j.mu.Lock()
		for _, c := range changes {
			if c.e == nil {
				delete(j.entries, c.token)
			} else {
				j.entries[c.token] = c.e
			}
		}
		j.seq, j.last = seq, last
		j.mu.Unlock()
	}
	if err != nil {
		j.mu.Lock()
		j.broken = err
		j.mu.Unlock()
	}
	for _, o := range applied {
		if err != nil && o.err == nil {
			o.err = err
		}
		o.end(o.err)
	}
	return rest
}

// write appends recs to the log as one write (appendWrite), rewriting the
// log first if they do not fit, and syncs if sync or if the unsynced bytes
// call for it. A failure breaks the journal: what is on disk is unknown, so
// every later write fails too.
func (j *Journal) write(recs []byte, sync bool) error {
	if len(recs) == 0 {
		return nil
	}
	need := int64(batchSize + len(recs) + endSize)
	if j.end+need > j.size {
		if err := j.rewrite(need); err != nil {
			return err
		}
	}
	if j.end-j.synced+need > window {
		if err := j.sync(); err != nil {
			return err
		}
	}
	b := appendWrite(make([]byte, 0, need), j.synced, recs)
	if _, err := j.f.WriteAt(b, j.end); err != nil {
		return j.fail("cannot write to the journal", err)
	}
	j.writes.Add(1)
	j.end += int64(len(b))
	if sync || j.end-j.synced > syncEvery {
		return j.sync()
	}
	return nil
}

func (j *Journal) sync() error {
	if err := datasync(j.f); err != nil {
		return j.fail("cannot sync the journal", err)
	}
	j.syncs.Add(1)
	j.synced = j.end
	return nil
}

// fail breaks the journal with err.
func (j *Journal) fail(what string, err error) error {
	j.failed = j.internal(what+"; it refuses writes until reopened", err)
	return j.failed
}

// rewrite writes the unfinished intents to a new log file, with room for
// extra more bytes, and puts it in place of the old one: atomically, by a
// rename once it is synced. The new file is preallocated to Options.Size,
// or larger if the intents need it.
func (j *Journal) rewrite(extra int64) error {
	j.mu.Lock()
	es := slices.SortedFunc(maps.Values(j.entries), func(a, b *entry) int { return int(a.seq - b.seq) })
	last := j.last
	j.mu.Unlock()
	var body []byte
	for _, e := range es {
		p, err := json.Marshal(e.in)
		if err != nil {
			return j.fail("cannot encode an intent", err)
		}
		body = appendRecord(body, kindBegin, p)
	}
	hdr := header{Format: format, Version: version, Cluster: j.opts.Cluster, Nodes: j.opts.Nodes, Last: last}
	size := j.opts.Size
	for {
		hdr.Size = size
		hp, err := json.Marshal(hdr)
		if err != nil {
			return j.fail("cannot encode the journal's header", err)
		}
		b := appendRecord(nil, kindHeader, hp)
		// The whole file is synced before it takes the log's place.
		b = appendWrite(b, int64(len(b)+batchSize+len(body)+endSize), body)
		if int64(len(b))+extra > size/2 && int64(len(b))+extra > size-window {
			size *= 2
			continue
		}
		return j.replace(b, size)
	}
}

// replace writes b at the start of a new file of size bytes and renames it
// over the log.
func (j *Journal) replace(b []byte, size int64) error {
	tmp := j.path + ".tmp"
	step := func(name string, err error) error {
		if err == nil && j.crashPoint != nil {
			err = j.crashPoint(name)
		}
		return err
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err = step("created", err); err != nil {
		if f != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
		return j.fail("cannot create a new journal file", err)
	}
	err = step("preallocated", preallocate(f, size))
	if err == nil {
		_, err = f.WriteAt(b, 0)
		err = step("written", err)
	}
	if err == nil {
		err = step("synced", f.Sync())
	}
	if err == nil {
		err = step("renamed", os.Rename(tmp, j.path))
	}
	if err == nil {
		err = step("dir synced", syncDir(j.dir))
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return j.fail("cannot write a new journal file", err)
	}
	if j.f != nil {
		_ = j.f.Close()
	}
	j.f, j.size, j.end, j.synced, j.base = f, size, int64(len(b)), int64(len(b)), int64(len(b))
	j.rews.Add(1)
	return nil
}

// discard drops the damage keys name (all of it) by rewriting the log.
func (j *Journal) discard(keys []string) error {
	j.mu.Lock()
	d := j.damage
	j.mu.Unlock()
	if d == nil {
		return core.Errorf(core.ENotFound, "journal %s has no damage to discard", j.path)
	}
	want := d.Keys()
	for _, k := range keys {
		if !slices.Contains(want, k) {
			return core.Errorf(core.EInvalid, "journal %s has no damaged range %q: the damaged ranges are %s", j.path, k, strings.Join(want, ", "))
		}
	}
	for _, k := range want {
		if !slices.Contains(keys, k) {
			return core.Errorf(core.EInvalid, "journal %s: discard every damaged range at once: %q is not named (the damaged ranges are %s)", j.path, k, strings.Join(want, ", "))
		}
	}
	if err := j.rewrite(0); err != nil {
		return err
	}
	j.mu.Lock()
	j.damage = nil
	j.mu.Unlock()
	return nil
}

// internal wraps a storage failure.
func (j *Journal) internal(what string, err error) error {
	return core.Errorf(core.EInternal, "journal %s: %s: %w", j.path, what, err)
}

func clone(in core.Intent) core.Intent {
	in.Nodes = slices.Clone(in.Nodes)
	in.PreImage = maps.Clone(in.PreImage)
	return in
}
