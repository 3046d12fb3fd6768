// Package etcd keeps a cluster's journal of unfinished operations in etcd,
// and a lock per id on etcd leases, so that coordinators in any number of
// processes, on any machines, run jobs on the same cluster with the
// guarantee of one: each operation holds its id's lock (a
// concurrency.Mutex on the process's session), reads the id's intents
// afresh under it (core.SharedJournal), and records its intent with a
// write that succeeds only while it still holds the lock.
//
// Keys, under /PREFIX/CLUSTER/ (CLUSTER the cluster's identity):
//
//	intents/ID/TOKEN   an unfinished operation's intent, JSON
//	floor/ID           the greatest token begun on ID: later tokens are above
//	locks/ID//LEASE    the lock's waiters, oldest first (concurrency.Mutex's)
//
// The writes of the operations in flight share etcd transactions (see
// committer), each with its own conditions and answer.
package etcd

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reliable-ops/rops/core"
)

// Defaults of Options.
const (
	DefaultTTL            = 10 * time.Second
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
)

// Options configures Open.
type Options struct {
	// Endpoints are the etcd members' HOST:PORT (or URLs).
	Endpoints []string
	// Prefix is the root of rops' keys in etcd, without slashes at its
	// ends; several rops installations may share an etcd under different
	// prefixes.
	Prefix string
	// Cluster is the identity of the cluster the journal is for: its keys
	// live under it, and every intent begun gets it as its Cluster.
	Cluster string
	// TTL is the lease of the process's locks: a process that dies, or is
	// cut off from etcd, loses them this long after its last keepalive.
	// Whole seconds; default DefaultTTL.
	TTL time.Duration
	// DialTimeout bounds the first contact with etcd. Default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// RequestTimeout bounds every request to etcd. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Username and Password, if Username is set, authenticate rops to an
	// etcd with auth enabled; Password is never printed.
	Username, Password string
	// TLS, if not nil, has rops talk to etcd over TLS with it: its
	// RootCAs verify the members, its Certificates authenticate rops to
	// members that require client certificates.
	TLS *tls.Config
}

// Journal is a core.SharedJournal in etcd, with the Locker that fences its
// writes. It is safe for concurrent use.
type Journal struct {
	cli    *clientv3.Client
	opts   Options
	root   string // /PREFIX/CLUSTER/
	locker *Locker
	batch  *committer
}

var (
	_ core.SharedJournal = (*Journal)(nil)
	_ core.Locker        = (*Locker)(nil)
)

// ErrUnreachable is the class of the errors of a request etcd did not
// answer.
var ErrUnreachable = errors.New("etcd unreachable")

// Open connects to etcd and checks that it answers, within
// opts.DialTimeout, before anything else is done: an unreachable etcd gives
// an ErrUnreachable error that names the endpoints; one that refuses the
// user, its password, its permission on the prefix or the TLS certificates
// (or whose certificate rops refuses) an ErrRefused error (code
// core.EInvalid) that says what was refused and how to fix it.
func Open(ctx context.Context, opts Options) (*Journal, error) {
	if len(opts.Endpoints) == 0 {
		return nil, core.Errorf(core.EInvalid, "no etcd endpoints: give HOST:PORT[,HOST:PORT...]")
	}
	if strings.Trim(opts.Prefix, "/") == "" || strings.Contains(opts.Prefix, "//") {
		return nil, core.Errorf(core.EInvalid, "etcd prefix %q is empty or has an empty part: give a name such as rops", opts.Prefix)
	}
	if opts.Cluster == "" || strings.Contains(opts.Cluster, "/") {
		return nil, core.Errorf(core.EInvalid, "cluster identity %q is empty or has a '/'", opts.Cluster)
	}
	if opts.TTL != 0 && opts.TTL < time.Second {
		return nil, core.Errorf(core.EInvalid, "lease TTL %v is under a second: etcd counts leases in whole seconds", opts.TTL)
	}
	if opts.Username != "" && opts.Password == "" {
		return nil, core.Errorf(core.EInvalid, "etcd user %s has no password: set ROPS_ETCD_PASSWORD, or give ?password_file=FILE", opts.Username)
	}
	if opts.Username == "" && opts.Password != "" {
		return nil, core.Errorf(core.EInvalid, "a password without a user: give the user, as etcd://USER@HOST:PORT/PREFIX")
	}
	opts.TTL = cmp.Or(opts.TTL, DefaultTTL)
	opts.DialTimeout = cmp.Or(opts.DialTimeout, DefaultDialTimeout)
	opts.RequestTimeout = cmp.Or(opts.RequestTimeout, DefaultRequestTimeout)
	if opts.TLS != nil {
		pctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
		err := probeTLS(pctx, opts)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		Logger:      zap.NewNop(),
		Username:    opts.Username,
		Password:    opts.Password,
		TLS:         opts.TLS,
		// Find out soon that a member is gone, and fail over.
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: opts.DialTimeout,
	})
	if err != nil {
		// With a user, New authenticates.
		return nil, cmp.Or(refusal(opts, err), unreachable(opts, err))
	}
	j := &Journal{cli: cli, opts: opts, root: "/" + strings.Trim(opts.Prefix, "/") + "/" + opts.Cluster + "/"}
	cctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	if _, err := cli.Get(cctx, j.root+"intents/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		if opts.TLS == nil && errors.Is(err, context.DeadlineExceeded) {
			sctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
			defer cancel()
			if speaksTLS(sctx, opts) {
				return nil, &core.Error{Code: core.EInvalid, Err: errors.Join(ErrRefused, err),
					Message: fmt.Sprintf("etcd at %s speaks TLS only, and rops spoke without: give the CA that signed its certificate with ?ca=FILE (and a client certificate with ?cert=FILE&key=FILE if it wants one)", strings.Join(opts.Endpoints, ","))}
			}
		}
		return nil, cmp.Or(refusal(opts, err), unreachable(opts, err))
	}
	if opts.Username != "" || opts.TLS != nil && len(opts.TLS.Certificates) > 0 {
		// An etcd user may read the prefix and not write it: find out now,
		// before any node is touched, with a write whose condition never
		// holds (etcd checks the permissions of both branches). Without a
		// user, etcd has no auth (the read above would have been refused):
		// no need to spend a raft entry.
		probe := j.root + "access-check"
		if _, err := cli.Txn(cctx).If(clientv3.Compare(clientv3.Version(probe), "<", 0)).Then(clientv3.OpPut(probe, "")).Commit(); err != nil {
			cli.Close()
			return nil, cmp.Or(refusal(opts, err), unreachable(opts, err))
		}
	}
	j.batch = newCommitter(cli, opts.RequestTimeout)
	j.locker = newLocker(j)
	return j, nil
}

func unreachable(opts Options, err error) error {
	return &core.Error{Code: core.EUnavailable, Err: errors.Join(ErrUnreachable, err),
		Message: fmt.Sprintf("etcd at %s did not answer within %v: %v; start it, or check the --journal address", strings.Join(opts.Endpoints, ","), opts.DialTimeout, err)}
}

// Locker returns the lock that goes with the journal: per id, on the
// process's lease.
func (j *Journal) Locker() *Locker { return j.locker }

// Client returns the etcd client, for tests and tools.
func (j *Journal) Client() *clientv3.Client { return j.cli }

// Close writes what is queued (locks released), releases the process's
// locks (revoking its lease) and closes the connection to etcd.
func (j *Journal) Close() error {
	j.batch.close()
	err := j.locker.close()
	return errors.Join(err, j.cli.Close())
}

// Writes returns how many writes the journal and its locks made, and in
// how many etcd transactions: for benchmarks and tools.
func (j *Journal) Writes() (writes, txns int64) {
	return j.batch.writes.Load(), j.batch.txns.Load()
}

// request bounds a request to etcd by Options.RequestTimeout.
func (j *Journal) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, j.opts.RequestTimeout)
}

// failed turns an etcd client error into a core error: EUnavailable with
// ErrUnreachable for an etcd that did not answer.
func (j *Journal) failed(what string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &core.Error{Code: core.EUnavailable, Err: errors.Join(ErrUnreachable, err),
		Message: fmt.Sprintf("etcd at %s: %s: %v", strings.Join(j.opts.Endpoints, ","), what, err)}
}

func (j *Journal) intentKey(id core.GroupID, token core.Token) string {
	return j.root + "intents/" + string(id) + "/" + string(token)
}

func (j *Journal) intentsPrefix(id core.GroupID) string {
	return j.root + "intents/" + string(id) + "/"
}

func (j *Journal) floorKey(id core.GroupID) string { return j.root + "floor/" + string(id) }

// held returns the lock on id in ctx, if it was taken with this journal's
// Locker.
func (j *Journal) held(ctx context.Context, id core.GroupID) *held {
	if h, ok := ctx.Value(heldKey{}).(*held); ok && h.locker == j.locker && h.id == id {
		return h
	}
	return nil
}

// owner returns the comparisons that hold while the lock on id in ctx
// (taken with this journal's Locker) is still held, if any: a coordinator
// that lost its lock then writes nothing more on id. The lock's read of
// the id's intents is dropped: a write is made.
func (j *Journal) owner(ctx context.Context, id core.GroupID) []*pb.Compare {
	if h := j.held(ctx, id); h != nil {
		h.take()
		return []*pb.Compare{h.owner()}
	}
	return nil
}

// write writes op on id in the journal's next shared transaction, and
// returns its response there: ctx's error if ctx ended before it was sent
// (nothing is written then), or the transaction's.
func (j *Journal) write(ctx context.Context, id core.GroupID, op *pb.RequestOp) (*pb.TxnResponse, bool, error) {
	w := &write{id: id, ctx: ctx, op: op}
	if err := j.batch.do(w); err != nil {
		return nil, w.sent, err
	}
	return w.resp.GetResponseTxn(), true, nil
}

// Begin records in, with Options.Cluster as its Cluster, and raises its
// id's floor to its token, in one write that succeeds only while the
// caller holds the id's lock (if ctx carries it). It returns an EInvalid
// error if the token is recorded on the id already and an EUnavailable one
// if the lock is lost, and then nothing is recorded; ctx's error if ctx
// ended before the write was sent, and nothing is recorded; if etcd does
// not answer in time, an ETransient one: the write may still commit (see
// core.Journal).
func (j *Journal) Begin(ctx context.Context, in core.Intent) error {
	key, data, err := j.encode(in)
	if err != nil {
		return err
	}
	resp, sent, err := j.write(ctx, in.ID, txnOp(
		append(j.owner(ctx, in.ID), createdAt(key, pb.Compare_EQUAL, 0)),
		[]*pb.RequestOp{putOp(key, string(data), clientv3.NoLease), putOp(j.floorKey(in.ID), string(in.Token), clientv3.NoLease)},
		[]*pb.RequestOp{getOp(key, true)}))
	if err != nil && !sent {
		return j.withdrawn(in.ID, err)
	}
	if err != nil {
		// The write may still commit (a request that timed out in a
		// cluster without quorum, or one sent before ctx ended):
		// ETransient tells the coordinator to withdraw the intent
		// (core.Journal).
		return &core.Error{Code: core.ETransient, Err: errors.Join(ErrUnreachable, err),
			Message: fmt.Sprintf("etcd at %s: cannot tell whether intent %s was recorded: %v", strings.Join(j.opts.Endpoints, ","), in.Token, err)}
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return core.Errorf(core.EInvalid, "intent %s on %q is recorded already", in.Token, in.ID)
		}
		return j.lost(in.ID)
	}
	return nil
}

// withdrawn is the error of a write that was not sent since its context
// ended with err.
func (j *Journal) withdrawn(id core.GroupID, err error) error {
	if errors.Is(err, ErrLeaseLost) {
		return fmt.Errorf("%w: %w", j.lost(id), err)
	}
	return err
}

func (j *Journal) lost(id core.GroupID) error {
	return core.Errorf(core.EUnavailable, "the lock on %q was lost (its lease expired): another coordinator may hold it now", id)
}

// encode stamps in with the journal's cluster, checks it, and returns its
// key and its JSON.
func (j *Journal) encode(in core.Intent) (key string, data []byte, err error) {
	in.Cluster = cmp.Or(in.Cluster, j.opts.Cluster)
	if err := j.check(in); err != nil {
		return "", nil, err
	}
	if data, err = json.Marshal(in); err != nil {
		return "", nil, err
	}
	return j.intentKey(in.ID, in.Token), data, nil
}

// check refuses an intent this journal must not hold.
func (j *Journal) check(in core.Intent) error {
	if err := in.Validate(); err != nil {
		return core.Errorf(core.EInvalid, "intent %s: %v", in.Token, err)
	}
	if err := in.ID.Validate(); err != nil {
		return err
	}
	if in.Cluster != j.opts.Cluster {
		return core.Errorf(core.EInvalid, "intent %s is for cluster %s, and this journal is cluster %s's", in.Token, in.Cluster, j.opts.Cluster)
	}
	return nil
}

// Update replaces the intent with in's id and token, or returns an
// ENotFound error if there is none (finished meanwhile, maybe by another
// coordinator).
func (j *Journal) Update(ctx context.Context, in core.Intent) error {
	key, data, err := j.encode(in)
	if err != nil {
		return err
	}
	// The lock first, then the key, in a nested transaction, to tell the
	// two refusals apart: a process that lost its lease must not overwrite
	// what the id's next holder wrote into the intent (it settles it, and
	// may have marked it with what it learned).
	resp, sent, err := j.write(ctx, in.ID, txnOp(j.owner(ctx, in.ID),
		[]*pb.RequestOp{txnOp(
			[]*pb.Compare{createdAt(key, pb.Compare_GREATER, 0)},
			[]*pb.RequestOp{putOp(key, string(data), clientv3.NoLease)}, nil)},
		nil))
	if err != nil && !sent {
		return j.withdrawn(in.ID, err)
	}
	if err != nil {
		return j.failed("cannot update intent "+string(in.Token), err)
	}
	if !resp.Succeeded {
		return j.lost(in.ID)
	}
	if !resp.Responses[0].GetResponseTxn().Succeeded {
		return core.Errorf(core.ENotFound, "no intent %s on %q", in.Token, in.ID)
	}
	return nil
}

// Finish removes the intent with token on the id whose lock ctx carries
// (this journal's Locker's, or see core.HeldID), with a write that
// succeeds only while the lock is held: two processes may draw one token
// for two ids, so the token alone does not name an intent. Without a lock
// in ctx it returns an EInvalid error. Finishing an unknown token is not an
// error. It is durable when it returns.
func (j *Journal) Finish(ctx context.Context, token core.Token) error {
	id, ok := core.HeldID(ctx)
	if h, mine := ctx.Value(heldKey{}).(*held); mine && h.locker == j.locker {
		id, ok = h.id, true
	}
	if !ok {
		return core.Errorf(core.EInvalid, "finish of intent %s without its id's lock: the journal in etcd keys intents by id", token)
	}
	resp, sent, err := j.write(ctx, id, txnOp(j.owner(ctx, id), []*pb.RequestOp{deleteOp(j.intentKey(id, token))}, nil))
	if err != nil && !sent {
		return j.withdrawn(id, err)
	}
	if err != nil {
		return j.failed("cannot finish intent "+string(token), err)
	}
	if !resp.Succeeded {
		return j.lost(id)
	}
	return nil
}

// Pending returns every unfinished intent of the cluster, by any
// coordinator, oldest first. Entries it cannot decode are named in its
// error, with the intents it could.
func (j *Journal) Pending(ctx context.Context) ([]core.Intent, error) {
	rctx, cancel := j.request(ctx)
	defer cancel()
	resp, err := j.cli.Get(rctx, j.root+"intents/", clientv3.WithPrefix())
	if err != nil {
		return nil, j.failed("cannot read the intents", err)
	}
	return j.decode(resp.Kvs)
}

// Intents returns the unfinished intents on id, oldest first, and the
// greatest token ever begun on id, read together (see core.SharedJournal).
// Under id's lock just taken with this journal's Locker (ctx carries it),
// and before any write under it, they are what the lock read when it was
// taken: nobody can change them while the lock is held, since every write
// on id is conditioned on holding it.
func (j *Journal) Intents(ctx context.Context, id core.GroupID) ([]core.Intent, core.Token, error) {
	var read *intentsRead
	if h := j.held(ctx, id); h != nil {
		read = h.take()
	}
	if read == nil {
		rctx, cancel := j.request(ctx)
		defer cancel()
		resp, err := j.cli.Txn(rctx).Then(
			clientv3.OpGet(j.intentsPrefix(id), clientv3.WithPrefix()),
			clientv3.OpGet(j.floorKey(id)),
		).Commit()
		if err != nil {
			return nil, "", j.failed(fmt.Sprintf("cannot read the intents on %q", id), err)
		}
		read = &intentsRead{intents: resp.Responses[0].GetResponseRange().Kvs, floor: resp.Responses[1].GetResponseRange().Kvs}
	}
	intents, err := j.decode(read.intents)
	var floor core.Token
	if len(read.floor) > 0 {
		floor = core.Token(read.floor[0].Value)
	}
	return intents, floor, err
}

// decode decodes the intents of kvs, oldest (smallest token) first.
func (j *Journal) decode(kvs []*mvccpb.KeyValue) ([]core.Intent, error) {
	var intents []core.Intent
	var errs []error
	for _, kv := range kvs {
		var in core.Intent
		err := json.Unmarshal(kv.Value, &in)
		if err == nil {
			err = j.check(in)
		}
		if err == nil && string(kv.Key) != j.intentKey(in.ID, in.Token) {
			err = fmt.Errorf("it holds intent %s on %q", in.Token, in.ID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("etcd key %s: %w", kv.Key, err))
			continue
		}
		intents = append(intents, in)
	}
	slices.SortStableFunc(intents, func(a, b core.Intent) int { return core.CompareTokens(a.Token, b.Token) })
	if len(errs) > 0 {
		return intents, &core.Error{Code: core.EInternal, Err: errors.Join(errs...),
			Message: fmt.Sprintf("the journal in etcd holds %d entries rops cannot read (remove them with etcdctl once the nodes agree): %v", len(errs), errors.Join(errs...))}
	}
	return intents, nil
}
