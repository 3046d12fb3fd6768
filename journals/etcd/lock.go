package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/reliable-ops/rops/core"
)

// ErrLeaseLost is the cause of a held lock's context that ended because
// the process's lease expired or could not be kept alive.
var ErrLeaseLost = errors.New("etcd lease lost")

// retryAfter is how long a failure to reach etcd for a lease is answered
// at once to the locks asked for meanwhile: a job whose etcd is down ends
// quickly, instead of waiting out a dial per operation.
const retryAfter = time.Second

// Locker is a core.Locker on etcd: an id's lock is a key under locks/ID//
// on one lease (a concurrency.Session) per process, kept alive while the
// process runs and lost Options.TTL after it stops, or after etcd stops
// answering. It is concurrency.Mutex's protocol, so that processes using
// either share the locks: the key of the oldest creation revision under
// the prefix holds the lock, and the others wait for the deletion of the
// keys before theirs. A lock's key is put, and released, as one write of
// the journal's shared transactions. Operations of this process on one id
// first wait in line in the process (core.LocalLocker), since the key is
// the lease's, the same for all of them. It is safe for concurrent use.
type Locker struct {
	j     *Journal
	local core.Locker
	// ctx ends on close; sessions live under it.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	sess     *concurrency.Session
	failed   error // the last failure to get a lease, until failedAt+retryAfter
	failedAt time.Time
}

func newLocker(j *Journal) *Locker {
	ctx, cancel := context.WithCancel(context.Background())
	return &Locker{j: j, local: core.LocalLocker(), ctx: ctx, cancel: cancel}
}

// heldKey is the context key of a held lock, which the journal's writes
// are conditioned on.
type heldKey struct{}

type held struct {
	locker *Locker
	id     core.GroupID
	key    string // the lock's key
	rev    int64  // its creation revision
	// read is the id's intents and floor, read with the lock when it was
	// taken, until the journal's Intents takes it or a write is made
	// under the lock.
	mu   sync.Mutex
	read *intentsRead
}

// intentsRead is what a read of an id's intents and floor answered.
type intentsRead struct {
	intents, floor []*mvccpb.KeyValue
}

// owner returns the comparison that holds while h is held.
func (h *held) owner() *pb.Compare { return createdAt(h.key, pb.Compare_EQUAL, h.rev) }

// take returns the read made with the lock, once, and nil after it was
// taken or a write was made under the lock.
func (h *held) take() *intentsRead {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.read
	h.read = nil
	return r
}

// Lock takes id's lock, waiting while another process (or operation)
// holds it, or until ctx ends or the lease is lost. The context it returns
// ends, with ErrLeaseLost as its cause, as soon as the lease is lost. It
// returns an EUnavailable error if etcd does not answer. Its unlock
// returns at once: the lock's key is deleted in the journal's next
// transaction, and the next operation of this process on id waits for
// that.
func (l *Locker) Lock(ctx context.Context, id core.GroupID) (context.Context, func(), error) {
	_, unlockLocal, err := l.local.Lock(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	sess, err := l.session(ctx)
	if err != nil {
		unlockLocal()
		return nil, nil, err
	}
	lctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(sess.Ctx(), func() { cancel(ErrLeaseLost) })
	h := &held{locker: l, id: id, key: fmt.Sprintf("%s%x", l.prefix(id), sess.Lease())}
	// release deletes the lock's key in the next transaction (if etcd
	// does not answer, the lease's expiry deletes it), and then lets the
	// process's next operation on id have it.
	release := func() {
		stop()
		cancel(nil)
		l.j.batch.send(&write{id: id, op: deleteOp(h.key), after: func(*write) { unlockLocal() }})
	}
	if err := l.acquire(lctx, h, sess.Lease()); err != nil {
		release()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if errors.Is(context.Cause(lctx), ErrLeaseLost) {
			err = ErrLeaseLost
		}
		return nil, nil, l.j.failed("cannot take the lock on "+string(id), err)
	}
	return context.WithValue(lctx, heldKey{}, h), release, nil
}

// prefix returns the prefix of id's lock keys; concurrency.NewMutex adds
// a slash to the prefix the lock had under it.
func (l *Locker) prefix(id core.GroupID) string { return l.j.root + "locks/" + string(id) + "//" }

// acquire puts h's key, on lease, in line for id's lock, and waits until
// it is the oldest there. With the key it reads the id's intents and floor
// into h, if the lock is h's at once.
func (l *Locker) acquire(ctx context.Context, h *held, lease clientv3.LeaseID) error {
	w := &write{id: h.id, ctx: ctx, op: txnOp(
		[]*pb.Compare{createdAt(h.key, pb.Compare_EQUAL, 0)},
		[]*pb.RequestOp{putOp(h.key, "", lease), firstCreatedOp(l.prefix(h.id)), prefixOp(l.j.intentsPrefix(h.id)), getOp(l.j.floorKey(h.id), false)},
		// A key of this lease left by an earlier lock that could not
		// be released stands in line for this one.
		[]*pb.RequestOp{getOp(h.key, false)})}
	if err := l.j.batch.do(w); err != nil {
		return err
	}
	r := w.resp.GetResponseTxn()
	if !r.Succeeded {
		kvs := r.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return ErrLeaseLost
		}
		h.rev = kvs[0].CreateRevision
		return l.wait(ctx, h)
	}
	h.rev = w.rev
	if first := r.Responses[1].GetResponseRange().Kvs; len(first) > 0 && first[0].CreateRevision != h.rev {
		return l.wait(ctx, h)
	}
	h.read = &intentsRead{intents: r.Responses[2].GetResponseRange().Kvs, floor: r.Responses[3].GetResponseRange().Kvs}
	return nil
}

// wait waits until no key older than h's is left in line for h's id, and
// then checks that h's key is still there (a lease lost meanwhile took it)
// and reads the id's intents and floor into h.
func (l *Locker) wait(ctx context.Context, h *held) error {
	pfx := l.prefix(h.id)
	for {
		rctx, cancel := l.j.request(ctx)
		resp, err := l.j.cli.Get(rctx, pfx, append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(h.rev-1))...)
		cancel()
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			break
		}
		if err := l.waitDelete(ctx, string(resp.Kvs[0].Key), resp.Header.Revision); err != nil {
			return err
		}
	}
	rctx, cancel := l.j.request(ctx)
	defer cancel()
	resp, err := l.j.cli.Txn(rctx).Then(
		clientv3.OpGet(h.key),
		clientv3.OpGet(l.j.intentsPrefix(h.id), clientv3.WithPrefix()),
		clientv3.OpGet(l.j.floorKey(h.id)),
	).Commit()
	if err != nil {
		return err
	}
	if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
		return ErrLeaseLost
	}
	h.read = &intentsRead{intents: resp.Responses[1].GetResponseRange().Kvs, floor: resp.Responses[2].GetResponseRange().Kvs}
	return nil
}

// waitDelete waits until key is deleted at or after revision rev.
func (l *Locker) waitDelete(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wr clientv3.WatchResponse
	for wr = range l.j.cli.Watch(wctx, key, clientv3.WithRev(rev)) {
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if err := wr.Err(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return errors.New("lost the watch of a lock's key")
}

// session returns the process's live session, starting one if there is
// none or it ended (its lease lost).
func (l *Locker) session(ctx context.Context) (*concurrency.Session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess != nil {
		select {
		case <-l.sess.Done():
			l.sess = nil
		default:
			return l.sess, nil
		}
	}
	if l.failed != nil && time.Since(l.failedAt) < retryAfter {
		return nil, l.failed
	}
	ttl := int64(l.j.opts.TTL / time.Second)
	gctx, cancel := l.j.request(ctx)
	defer cancel()
	lease, err := l.j.cli.Grant(gctx, ttl)
	if err == nil {
		l.sess, err = concurrency.NewSession(l.j.cli, concurrency.WithLease(lease.ID),
			concurrency.WithTTL(int(ttl)), concurrency.WithContext(l.ctx))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l.failed, l.failedAt = l.j.failed("cannot get a lease for locks", err), time.Now()
		return nil, l.failed
	}
	l.failed = nil
	return l.sess, nil
}

// Lease returns the lease of the process's current session, or
// clientv3.NoLease if it has none: for tests and tools.
func (l *Locker) Lease() clientv3.LeaseID {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess == nil {
		return clientv3.NoLease
	}
	return l.sess.Lease()
}

// close revokes the process's lease, releasing its locks.
func (l *Locker) close() error {
	l.mu.Lock()
	sess := l.sess
	l.sess = nil
	l.mu.Unlock()
	var err error
	if sess != nil {
		// Revoke within a request's time; else the lease expires.
		rctx, cancel := l.j.request(context.Background())
		sess.Orphan()
		_, err = l.j.cli.Revoke(rctx, sess.Lease())
		cancel()
		if err != nil {
			err = l.j.failed("cannot release the locks", err)
		}
	}
	l.cancel()
	return err
}
