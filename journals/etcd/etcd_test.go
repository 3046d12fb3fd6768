package etcd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/journals/etcd"
	"github.com/reliable-ops/rops/journals/etcd/etcdtest"
)

// waitBound bounds every wait on a condition: a guard against a hang, never
// a measure of speed.
const waitBound = time.Minute

// open opens a journal of cluster "c1" on eps, as one rops process would;
// it is closed when the test ends.
func open(t *testing.T, eps []string, ttl time.Duration) *etcd.Journal {
	t.Helper()
	return openTTL(t, eps, ttl)
}

func openTTL(tb testing.TB, eps []string, ttl time.Duration) *etcd.Journal {
	tb.Helper()
	j, err := etcd.Open(context.Background(), etcd.Options{Endpoints: eps, Prefix: "rops-test", Cluster: "c1", TTL: ttl, RequestTimeout: 3 * time.Second})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}

// eventually waits until cond holds, checking it at most every 10 ms for
// waitBound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, waitBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJournal(t *testing.T) {
	testJournal(t, etcdtest.Start(t, 1).Endpoints())
}

// TestJournalOnInstalledEtcd runs the journal's test against the etcd
// binary on PATH (Debian 12's etcd-server is 3.4), if there is one.
func TestJournalOnInstalledEtcd(t *testing.T) {
	client := startInstalled(t, "http", nil)
	testJournal(t, []string{client})
	testLimits(t, []string{client})
}

// TestJournalOnInstalledEtcdMutualTLS is TestJournalMutualTLS against the
// etcd binary on PATH, started with --client-cert-auth.
func TestJournalOnInstalledEtcdMutualTLS(t *testing.T) {
	pki, other := pkis(t)
	client := startInstalled(t, "https", clientTLS(t, pki.CA, pki.ClientCert, pki.ClientKey),
		"--client-cert-auth", "--trusted-ca-file", pki.CA, "--cert-file", pki.ServerCert, "--key-file", pki.ServerKey)
	testMutualTLS(t, []string{client}, pki, other)
}

// TestJournalOnInstalledEtcdAuth is TestJournalAuth against the etcd
// binary on PATH, its users made with the etcdctl on PATH.
func TestJournalOnInstalledEtcdAuth(t *testing.T) {
	client := startInstalled(t, "http", nil)
	etcdctl, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Skip("no etcdctl on PATH: install it (apt-get install etcd-client) to test auth against the installed etcd")
	}
	ctl := func(args ...string) {
		t.Helper()
		cmd := exec.Command(etcdctl, append([]string{"--endpoints", client, "--dial-timeout", "10s"}, args...)...)
		cmd.Env = append(cmd.Environ(), "ETCDCTL_API=3")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("etcdctl %v: %v\n%s", args, err, out)
		}
	}
	ctl("user", "add", "root:"+etcdtest.RootPassword)
	ctl("user", "grant-role", "root", "root")
	for _, u := range authUsers {
		ctl("role", "add", u.Name+"-role")
		if u.Prefix != "" {
			perm := "readwrite"
			if u.ReadOnly {
				perm = "read"
			}
			ctl("role", "grant-permission", u.Name+"-role", "--prefix=true", perm, u.Prefix)
		}
		ctl("user", "add", u.Name+":"+u.Password)
		ctl("user", "grant-role", u.Name, u.Name+"-role")
	}
	ctl("auth", "enable")
	testAuth(t, []string{client})
}

// startInstalled starts the etcd binary on PATH with args, its clients on
// scheme (http or https) at a free 127.0.0.1 port it returns, once a
// journal opened with cfg (TLS) answers; it skips the test if there is
// none. It is stopped when the test ends.
func startInstalled(t *testing.T, scheme string, cfg *tls.Config, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("no etcd binary on PATH: install it (apt-get install etcd-server) to test the client against it")
	}
	client, peer := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"--data-dir", t.TempDir(), "--name", "m0",
		"--listen-client-urls", scheme + "://" + client, "--advertise-client-urls", scheme + "://" + client,
		"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", "m0=http://" + peer}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	// Open waits for an answer within its dial timeout; the binary may
	// need a few tries to be up.
	eventually(t, "answering", func() bool {
		j, err := etcd.Open(context.Background(), etcd.Options{Endpoints: []string{client}, Prefix: "p", Cluster: "c", DialTimeout: time.Second, TLS: cfg})
		if err == nil {
			j.Close()
		}
		return err == nil
	})
	out, _ := exec.Command(bin, "--version").Output()
	t.Logf("%s", bytes.SplitN(out, []byte("\n"), 2)[0])
	return client
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testJournal checks the journal and its lock on the etcd at eps.
func testJournal(t *testing.T, eps []string) {
	j := open(t, eps, 0)
	ctx := context.Background()
	a := core.Intent{Op: core.OpCreate, ID: "a", Token: "2.000000", Nodes: []string{"n1", "n2"}}
	b := core.Intent{Op: core.OpDelete, ID: "b", Token: "1.000000", Nodes: []string{"n1"}, PreImage: map[string]core.Token{"n1": "0.500000"}}
	// The same token on another id: two coordinators may draw it.
	a2 := core.Intent{Op: core.OpCreate, ID: "a2", Token: "2.000000", Nodes: []string{"n1"}}
	for _, in := range []core.Intent{a, b, a2} {
		if err := j.Begin(ctx, in); err != nil {
			t.Fatalf("Begin %s: %v", in.ID, err)
		}
	}
	if err := j.Begin(ctx, a); core.ErrorCode(err) != core.EInvalid {
		t.Fatalf("Begin twice: %v, want EInvalid", err)
	}
	got, err := j.Pending(ctx)
	if err != nil || len(got) != 3 || got[0].ID != "b" || got[0].Cluster != "c1" || got[0].PreImage["n1"] != "0.500000" {
		t.Fatalf("Pending=%+v %v, want b, then a and a2, stamped c1", got, err)
	}
	a.RollBack = true
	if err := j.Update(ctx, a); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := j.Update(ctx, core.Intent{Op: core.OpCreate, ID: "a", Token: "9.000000"}); core.ErrorCode(err) != core.ENotFound {
		t.Fatalf("Update of an unknown intent: %v, want ENotFound", err)
	}
	ins, floor, err := j.Intents(ctx, "a")
	if err != nil || len(ins) != 1 || !ins[0].RollBack || floor != a.Token {
		t.Fatalf("Intents(a)=%+v %q %v, want a updated, floor %s", ins, floor, err, a.Token)
	}
	// Finish under a's lock finishes a's intent only.
	held, unlock, err := j.Locker().Lock(ctx, "a")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := j.Finish(held, a.Token); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	unlock()
	if ins, floor, _ := j.Intents(ctx, "a"); len(ins) != 0 || floor != a.Token {
		t.Fatalf("Intents(a) after Finish=%+v floor %q, want none, floor kept", ins, floor)
	}
	if ins, _, _ := j.Intents(ctx, "a2"); len(ins) != 1 {
		t.Fatalf("Intents(a2)=%+v, want a2 still there", ins)
	}
	// The token alone does not say which intent.
	if err := j.Finish(ctx, b.Token); core.ErrorCode(err) != core.EInvalid {
		t.Fatalf("Finish without the lock: %v, want EInvalid", err)
	}
	held, unlock, err = j.Locker().Lock(ctx, "b")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := j.Finish(held, b.Token); err != nil {
		t.Fatalf("Finish b: %v", err)
	}
	if err := j.Finish(held, "7.000000"); err != nil {
		t.Fatalf("Finish of an unknown token: %v", err)
	}
	unlock()
	if got, _ := j.Pending(ctx); len(got) != 1 || got[0].ID != "a2" {
		t.Fatalf("Pending=%+v, want a2 only", got)
	}
	// Another process sees what this one left.
	other := open(t, eps, 0)
	if got, _ := other.Pending(ctx); len(got) != 1 || got[0].ID != "a2" {
		t.Fatalf("another process's Pending=%+v, want a2", got)
	}
}

func TestJournalRefusesDamage(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	j := open(t, ec.Endpoints(), 0)
	ctx := context.Background()
	if err := j.Begin(ctx, core.Intent{Op: core.OpCreate, ID: "a", Token: "1.000000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Client().Put(ctx, "/rops-test/c1/intents/b/2.000000", "{not json"); err != nil {
		t.Fatal(err)
	}
	got, err := j.Pending(ctx)
	if err == nil || len(got) != 1 {
		t.Fatalf("Pending=%+v %v, want a and an error naming the damaged key", got, err)
	}
}

func TestSecondHolderWaits(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	a, b := open(t, ec.Endpoints(), 0), open(t, ec.Endpoints(), 0)
	ctx := context.Background()
	_, unlockA, err := a.Locker().Lock(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	got := waitInLine(t, a, b, "g")
	select {
	case err := <-got:
		t.Fatalf("B took the lock A holds (err %v)", err)
	default:
	}
	unlockA()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("B: %v", err)
		}
	case <-time.After(waitBound):
		t.Fatal("B never got the lock A released")
	}
}

// waitInLine has b ask for id's lock, which a holds, in a goroutine, and
// returns once b's key is in line behind a's: the channel gets b's Lock
// error (nil once it had the lock, which it then releases).
func waitInLine(t *testing.T, a, b *etcd.Journal, id core.GroupID) <-chan error {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		_, unlockB, err := b.Locker().Lock(context.Background(), id)
		if err == nil {
			unlockB()
		}
		got <- err
	}()
	eventually(t, "waiting in line", func() bool {
		resp, err := a.Client().Get(context.Background(), "/rops-test/c1/locks/"+string(id)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	})
	return got
}

// TestWaiterEndsWhenEtcdIsLost: a lock waiting for another process's ends
// with an error once etcd is gone for its lease's time, instead of waiting
// for etcd to come back.
func TestWaiterEndsWhenEtcdIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("a long test, 16-17 s: -short skips it")
	}
	ec := etcdtest.Start(t, 1)
	a, b := open(t, ec.Endpoints(), 0), open(t, ec.Endpoints(), time.Second)
	ctx := context.Background()
	_, unlockA, err := a.Locker().Lock(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	got := waitInLine(t, a, b, "g")
	ec.StopAll()
	select {
	case err := <-got:
		if !errors.Is(err, etcd.ErrLeaseLost) {
			t.Fatalf("B: %v, want ErrLeaseLost", err)
		}
	case <-time.After(waitBound):
		t.Fatal("B still waits for the lock with etcd gone")
	}
}

// TestLeaseLossCancels: when the process's lease is gone (expired, or
// revoked as here), every lock it held ends its context at once, its
// journal writes under the lock are refused, and another process takes the
// lock.
func TestLeaseLossCancels(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	a, b := open(t, ec.Endpoints(), 2*time.Second), open(t, ec.Endpoints(), 0)
	ctx := context.Background()
	held, unlock, err := a.Locker().Lock(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	begun := core.Intent{Op: core.OpDelete, ID: "g", Token: "0.500000", Nodes: []string{"node01"}}
	if err := a.Begin(held, begun); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client().Revoke(ctx, a.Locker().Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Done():
	case <-time.After(waitBound):
		t.Fatal("the held lock's context did not end when its lease was lost")
	}
	if !errors.Is(context.Cause(held), etcd.ErrLeaseLost) {
		t.Fatalf("cause=%v, want ErrLeaseLost", context.Cause(held))
	}
	in := core.Intent{Op: core.OpCreate, ID: "g", Token: "1.000000"}
	if err := a.Begin(context.WithoutCancel(held), in); core.ErrorCode(err) != core.EUnavailable {
		t.Fatalf("Begin after the lock was lost: %v, want EUnavailable", err)
	}
	if err := a.Finish(context.WithoutCancel(held), begun.Token); core.ErrorCode(err) != core.EUnavailable {
		t.Fatalf("Finish after the lock was lost: %v, want EUnavailable", err)
	}
	// A paused process's mark must not overwrite what the next holder
	// wrote into the intent (issue 17).
	marked := begun
	marked.RollBack = true
	if err := a.Update(context.WithoutCancel(held), marked); core.ErrorCode(err) != core.EUnavailable {
		t.Fatalf("Update after the lock was lost: %v, want EUnavailable", err)
	}
	heldB, unlockB, err := b.Locker().Lock(ctx, "g")
	if err != nil {
		t.Fatalf("B: %v", err)
	}
	if err := b.Update(heldB, marked); err != nil {
		t.Fatalf("B's Update under its lock: %v", err)
	}
	if err := b.Finish(heldB, begun.Token); err != nil {
		t.Fatalf("B's Finish: %v", err)
	}
	unlockB()
	// A's operation ends; A gets a new lease for its next lock.
	unlock()
	_, unlockA, err := a.Locker().Lock(ctx, "g")
	if err != nil {
		t.Fatalf("A again: %v", err)
	}
	unlockA()
}

func TestUnreachable(t *testing.T) {
	addr := freeAddr(t)
	_, err := etcd.Open(context.Background(), etcd.Options{Endpoints: []string{addr}, Prefix: "p", Cluster: "c1", DialTimeout: time.Second})
	if !errors.Is(err, etcd.ErrUnreachable) || core.ErrorCode(err) != core.EUnavailable {
		t.Fatalf("Open of nothing: %v, want ErrUnreachable", err)
	}
}

// coordinator returns a coordinator over nodes, journaled in j and locked
// with j's Locker, as one rops process on etcd.
func coordinator(t *testing.T, ns []core.Node, j *etcd.Journal, seed uint64) *core.Coordinator {
	t.Helper()
	c, err := core.New(core.Config{Nodes: ns, Journal: j, Locks: j.Locker(), Rand: rand.New(core.NewLockedSource(seed))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// memoryNodes returns n nodes over memory stores with faults f, and the
// stores, to look at without faults. opts.MaxTombstones -1 makes nodes that
// do not fence, as the original server.
func memoryNodes(n int, f faults.Faults, seed uint64, opts memory.Options) ([]core.Node, []*memory.Store) {
	var ns []core.Node
	var stores []*memory.Store
	for i := range n {
		s := memory.NewWithOptions(opts)
		ns = append(ns, faults.New(fmt.Sprintf("node%02d", i+1), s, faults.Options{Faults: f, Seed: seed + uint64(i)}))
		stores = append(stores, s)
	}
	return ns, stores
}

// TestTokensAboveFloor: a coordinator whose clock is behind another's
// takes tokens above every token begun on the id, across processes.
func TestTokensAboveFloor(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	j := open(t, ec.Endpoints(), 0)
	ctx := context.Background()
	const ahead core.Token = "9999999999.000001"
	held, unlock, err := j.Locker().Lock(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Begin(held, core.Intent{Op: core.OpCreate, ID: "g", Token: ahead, Nodes: []string{"node01"}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(held, ahead); err != nil {
		t.Fatal(err)
	}
	unlock()
	ns, _ := memoryNodes(3, faults.Faults{}, 1, memory.Options{})
	c := coordinator(t, ns, open(t, ec.Endpoints(), 0), 1)
	res, err := c.Create(ctx, "g")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if core.CompareTokens(res.Token, ahead) <= 0 {
		t.Fatalf("token=%s, want above %s", res.Token, ahead)
	}
}

// TestCoordinatorsShareTheGuarantee: coordinators in three "processes"
// (each its own etcd client, lease and ledger) create and delete the same
// ids at once over nodes with faults; then every id is on every node or on
// none, and no intent is left.
func TestCoordinatorsShareTheGuarantee(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	ec := etcdtest.Start(t, 1)
	// Jitter makes the processes' requests on one id interleave.
	ns, stores := memoryNodes(3, faults.Faults{ErrorRate: 0.2, AmbiguousRate: 0.1, Jitter: faults.Duration(5 * time.Millisecond)}, seed, memory.Options{})
	const ids = 3
	var wg sync.WaitGroup
	for p := range 3 {
		c := coordinator(t, ns, open(t, ec.Endpoints(), 0), seed+uint64(p))
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(p)))
			for range 60 {
				id := core.GroupID(fmt.Sprintf("id%d", rng.IntN(ids)))
				if rng.IntN(2) == 0 {
					c.Create(context.Background(), id)
				} else {
					c.Delete(context.Background(), id)
				}
			}
		})
	}
	wg.Wait()
	j := open(t, ec.Endpoints(), 0)
	c := coordinator(t, ns, j, seed+9)
	if _, err := c.Recover(context.Background(), 4); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if left, err := j.Pending(context.Background()); err != nil || len(left) != 0 {
		t.Fatalf("intents left after Recover: %+v %v (seed %d)", left, err, seed)
	}
	for i := range ids {
		id := core.GroupID(fmt.Sprintf("id%d", i))
		held := 0
		for _, s := range stores {
			if _, err := s.Get(context.Background(), id); err == nil {
				held++
			}
		}
		if held != 0 && held != len(ns) {
			t.Errorf("%s is on %d of %d nodes (seed %d)", id, held, len(ns), seed)
		}
	}
}

// TestQuorum: with three members, the journal works while two run, refuses
// writes (ETransient, within the request timeout: the write may commit later) while one does, and
// holds what it recorded once they are back.
func TestQuorum(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	j := open(t, ec.Endpoints(), 0)
	ctx := context.Background()
	n := 0
	begin := func() error {
		n++
		return j.Begin(ctx, core.Intent{Op: core.OpCreate, ID: "g", Token: core.Token(fmt.Sprintf("%d.000000", n))})
	}
	if err := begin(); err != nil {
		t.Fatalf("Begin with 3 members: %v", err)
	}
	ec.Stop(0)
	// The client moves to a member that runs; a write it sent to the
	// stopped one may fail first.
	eventually(t, "writing with 2 of 3 members", func() bool { return begin() == nil })
	ec.Stop(1)
	// Without quorum the write times out, and may commit once quorum is
	// back: ETransient, which makes the coordinator withdraw it.
	if err := begin(); core.ErrorCode(err) != core.ETransient || !errors.Is(err, etcd.ErrUnreachable) {
		t.Fatalf("Begin with 1 of 3 members: %v, want ETransient", err)
	}
	ec.Restart()
	eventually(t, "writing with 3 members again", func() bool { return begin() == nil })
	got, err := j.Pending(ctx)
	if err != nil || len(got) < 2 || got[0].Token != "1.000000" {
		t.Fatalf("Pending=%+v %v, want the intents begun before, the first one first", got, err)
	}
}
