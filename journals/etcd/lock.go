package etcd

import (
	"context"
	"errors"
	"sync"
	"time"

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

// Locker is a core.Locker on etcd: an id's lock is a concurrency.Mutex
// under locks/ID/, on one lease (a concurrency.Session) per process, kept
// alive while the process runs and lost Options.TTL after it stops, or
// after etcd stops answering. Operations of this process on one id first
// wait in line in the process (core.LocalLocker), since a mutex on the same
// session is reentrant. It is safe for concurrent use.
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
	m      *concurrency.Mutex
}

// Lock takes id's lock, waiting while another process (or operation)
// holds it, or until ctx ends or the lease is lost. The context it returns
// ends, with ErrLeaseLost as its cause, as soon as the lease is lost. It
// returns an EUnavailable error if etcd does not answer.
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
	m := concurrency.NewMutex(sess, l.j.root+"locks/"+string(id)+"/")
	if err := l.lockMutex(lctx, m); err != nil {
		stop()
		cancel(nil)
		unlockLocal()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if errors.Is(context.Cause(lctx), ErrLeaseLost) {
			err = ErrLeaseLost
		}
		return nil, nil, l.j.failed("cannot take the lock on "+string(id), err)
	}
	unlock := func() {
		stop()
		cancel(nil)
		// If etcd does not answer, the lease's expiry releases it.
		uctx, ucancel := l.j.request(context.Background())
		_ = m.Unlock(uctx)
		ucancel()
		unlockLocal()
	}
	return context.WithValue(lctx, heldKey{}, &held{locker: l, id: id, m: m}), unlock, nil
}

// lockMutex locks m, returning when ctx ends even if m.Lock does not: when
// its wait fails it releases its key with no deadline, which waits for etcd
// to come back. A lock it gets after all is released in the background.
func (l *Locker) lockMutex(ctx context.Context, m *concurrency.Mutex) error {
	errc := make(chan error, 1)
	go func() { errc <- m.Lock(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		go func() {
			if <-errc == nil {
				uctx, cancel := l.j.request(context.Background())
				_ = m.Unlock(uctx)
				cancel()
			}
		}()
		return context.Cause(ctx)
	}
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
