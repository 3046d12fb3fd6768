package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/journals/etcd"
	"github.com/reliable-ops/rops/journals/etcd/etcdtest"
)

// lock takes id's lock with j, failing the test if it cannot; it is
// released when the test ends, if the test has not.
func lock(t *testing.T, j *etcd.Journal, id core.GroupID) (context.Context, func()) {
	t.Helper()
	held, unlock, err := j.Locker().Lock(context.Background(), id)
	if err != nil {
		t.Fatalf("Lock %s: %v", id, err)
	}
	var once sync.Once
	release := func() { once.Do(unlock) }
	t.Cleanup(release)
	return held, release
}

// together runs calls at once, with j holding its next transaction until
// all their writes are queued, and returns their errors in order and how
// many transactions j sent meanwhile.
func together(t *testing.T, j *etcd.Journal, calls ...func() error) ([]error, int64) {
	t.Helper()
	_, before := j.Writes()
	j.HoldFor(len(calls))
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { errs[i] = call() })
	}
	wg.Wait()
	_, after := j.Writes()
	return errs, after - before
}

// TestSharedTransactionAnswersPerID: the writes of six ids go in one etcd
// transaction, and each gets its own answer: a refusal of one id (a lock
// lost to another process, an intent recorded already, an unknown one)
// changes nothing of the others', and writes nothing of its own.
func TestSharedTransactionAnswersPerID(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	j, other := open(t, ec.Endpoints(), 0), open(t, ec.Endpoints(), 0)
	ctx := context.Background()
	in := func(id core.GroupID, token core.Token) core.Intent {
		return core.Intent{Op: core.OpCreate, ID: id, Token: token, Nodes: []string{"node01"}}
	}
	held := map[core.GroupID]context.Context{}
	for _, id := range []core.GroupID{"a", "b", "c", "d", "e", "f"} {
		held[id], _ = lock(t, j, id)
	}
	for _, id := range []core.GroupID{"b", "d", "f"} {
		if err := j.Begin(held[id], in(id, "1.000000")); err != nil {
			t.Fatalf("Begin %s: %v", id, err)
		}
	}
	// c's and d's lock keys are gone (as an expired lease's), and
	// another process takes d's lock: this process holds neither any
	// more, though its contexts have not ended yet.
	for _, id := range []core.GroupID{"c", "d"} {
		if _, err := j.Client().Delete(ctx, "/rops-test/c1/locks/"+string(id)+"/", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
	}
	lock(t, other, "d")

	errs, txns := together(t, j,
		func() error { return j.Begin(held["a"], in("a", "2.000000")) },
		func() error { return j.Begin(held["b"], in("b", "1.000000")) },
		func() error { return j.Begin(held["c"], in("c", "2.000000")) },
		func() error { return j.Finish(held["d"], "1.000000") },
		func() error { return j.Update(held["e"], in("e", "2.000000")) },
		func() error { return j.Finish(held["f"], "1.000000") },
	)
	if txns != 1 {
		t.Fatalf("%d transactions, want the six writes in one", txns)
	}
	for i, want := range []core.Code{"", core.EInvalid, core.EUnavailable, core.EUnavailable, core.ENotFound, ""} {
		if got := core.ErrorCode(errs[i]); got != want || want == "" && errs[i] != nil {
			t.Errorf("write %d: %v, want code %q", i, errs[i], want)
		}
	}
	got, err := j.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, in := range got {
		left = append(left, string(in.ID)+"/"+string(in.Token))
	}
	if got, want := fmt.Sprint(left), "[b/1.000000 d/1.000000 a/2.000000]"; got != want {
		t.Fatalf("intents %s, want %s: a begun, b once, c not begun, d not finished, f finished", got, want)
	}
	if _, floor, _ := j.Intents(ctx, "c"); floor != "" {
		t.Fatalf("c's floor %q: the refused Begin raised it", floor)
	}
}

// TestLocksShareATransaction: 64 locks taken at once cost etcd one write,
// and so do their 64 releases; each lock is held alone.
func TestLocksShareATransaction(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	j := open(t, ec.Endpoints(), 0)
	const n = 64
	helds := make([]context.Context, n)
	unlocks := make([]func(), n)
	calls := make([]func() error, n)
	for i := range n {
		calls[i] = func() (err error) {
			helds[i], unlocks[i], err = j.Locker().Lock(context.Background(), core.GroupID(fmt.Sprintf("id%d", i)))
			return err
		}
	}
	// The process's lease is granted with its first lock (held, so that
	// no release of it is under way).
	lock(t, j, "first")
	index := ec.CommittedIndex(0)
	errs, txns := together(t, j, calls...)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if txns != 1 || ec.CommittedIndex(0)-index != 1 {
		t.Fatalf("%d transactions, %d etcd writes, want the %d locks in one", txns, ec.CommittedIndex(0)-index, n)
	}
	for i := range n {
		if err := j.Begin(helds[i], core.Intent{Op: core.OpCreate, ID: core.GroupID(fmt.Sprintf("id%d", i)), Token: "1.000000"}); err != nil {
			t.Fatalf("Begin under lock %d: %v", i, err)
		}
	}
	writes, txns0 := j.Writes()
	j.HoldFor(n)
	for _, unlock := range unlocks {
		unlock()
	}
	// Close writes what is queued before it revokes the lease.
	j.Close()
	if w, t1 := j.Writes(); w-writes != n || t1-txns0 != 1 {
		t.Fatalf("%d writes in %d transactions, want the %d releases in one", w-writes, t1-txns0, n)
	}
}

// testLimits: writes past what one etcd transaction takes go in several,
// each within etcd's 128 operations (counted as etcd counts them, nested
// transactions included), and all succeed.
func testLimits(t *testing.T, eps []string) {
	j := open(t, eps, 0)
	const n = 300
	calls := make([]func() error, n)
	for i := range n {
		calls[i] = func() error {
			return j.Begin(context.Background(), core.Intent{Op: core.OpCreate, ID: core.GroupID(fmt.Sprintf("limit%d", i)), Token: "1.000000"})
		}
	}
	errs, txns := together(t, j, calls...)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// A Begin nests 2 operations: 126 of them fill a transaction.
	if txns != 3 {
		t.Fatalf("%d transactions, want 3 (126, 126, 48)", txns)
	}
}

func TestLimits(t *testing.T) {
	testLimits(t, etcdtest.Start(t, 1).Endpoints())
}

// TestSmallerEtcdLimits: an etcd set to take fewer operations per
// transaction refuses a shared one whole, and the journal sends it again
// in smaller ones.
func TestSmallerEtcdLimits(t *testing.T) {
	ec := etcdtest.StartWith(t, 1, func(cfg *embed.Config) { cfg.MaxTxnOps = 16 })
	j := open(t, ec.Endpoints(), 0)
	calls := make([]func() error, 40)
	for i := range calls {
		calls[i] = func() error {
			return j.Begin(context.Background(), core.Intent{Op: core.OpCreate, ID: core.GroupID(fmt.Sprintf("small%d", i)), Token: "1.000000"})
		}
	}
	errs, _ := together(t, j, calls...)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got, _ := j.Pending(context.Background()); len(got) != len(calls) {
		t.Fatalf("%d intents, want %d", len(got), len(calls))
	}
}

// TestLockSharedWithConcurrencyMutex: the lock is concurrency.Mutex's, so
// an older rops, which takes it with concurrency.Mutex, and this one wait
// for each other.
func TestLockSharedWithConcurrencyMutex(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	j := open(t, ec.Endpoints(), 0)
	ctx := context.Background()
	sess, err := concurrency.NewSession(j.Client())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// rops took it with concurrency.NewMutex(sess, ROOT+"locks/ID/").
	m := concurrency.NewMutex(sess, "/rops-test/c1/locks/g/")
	_, unlock := lock(t, j, "g")
	if err := m.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("the mutex's TryLock while this rops holds the lock: %v, want ErrLocked", err)
	}
	unlock()
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, unlock, err := j.Locker().Lock(ctx, "g")
		if err == nil {
			unlock()
		}
		got <- err
	}()
	eventually(t, "waiting in line behind the mutex", func() bool {
		resp, err := j.Client().Get(ctx, "/rops-test/c1/locks/g/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	})
	select {
	case err := <-got:
		t.Fatalf("took the lock the mutex holds (err %v)", err)
	default:
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Lock after the mutex's Unlock: %v", err)
	}
}

// TestIntentsUnderTheLock: the intents and floor a lock reads as it is
// taken are what another process left, whether the lock was free or
// waited for; after a write under the lock, Intents reads etcd again.
func TestIntentsUnderTheLock(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	a, b := open(t, ec.Endpoints(), 0), open(t, ec.Endpoints(), 0)
	first := core.Intent{Op: core.OpCreate, ID: "g", Token: "1.000000", Nodes: []string{"node01"}}
	heldB, unlockB := lock(t, b, "g")
	if err := b.Begin(heldB, first); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		heldA, unlockA, err := a.Locker().Lock(context.Background(), "g")
		if err != nil {
			got <- err
			return
		}
		defer unlockA()
		// A waited for B's lock, and reads what B did meanwhile.
		if ins, floor, err := a.Intents(heldA, "g"); err != nil || len(ins) != 2 || floor != "2.000000" {
			got <- fmt.Errorf("after waiting: Intents=%+v floor %q %v, want B's two, floor 2.000000", ins, floor, err)
			return
		}
		third := core.Intent{Op: core.OpCreate, ID: "g", Token: "3.000000"}
		if err := a.Begin(heldA, third); err != nil {
			got <- err
			return
		}
		if ins, floor, err := a.Intents(heldA, "g"); err != nil || len(ins) != 3 || floor != third.Token {
			got <- fmt.Errorf("after a Begin: Intents=%+v floor %q %v, want three, floor %s", ins, floor, err, third.Token)
			return
		}
		got <- nil
	}()
	eventually(t, "waiting in line", func() bool {
		resp, err := a.Client().Get(context.Background(), "/rops-test/c1/locks/g/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	})
	if err := b.Begin(heldB, core.Intent{Op: core.OpCreate, ID: "g", Token: "2.000000"}); err != nil {
		t.Fatal(err)
	}
	unlockB()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// A free lock reads the same.
	held, _ := lock(t, b, "g")
	if ins, floor, err := b.Intents(held, "g"); err != nil || len(ins) != 3 || floor != "3.000000" {
		t.Fatalf("Intents=%+v floor %q %v, want three, floor 3.000000", ins, floor, err)
	}
}

// TestOneWritePerIDPerTransaction: two writes on one id (two Begins
// without its lock both raise its floor) go in two transactions: etcd
// refuses a transaction that writes a key twice, whole.
func TestOneWritePerIDPerTransaction(t *testing.T) {
	j := open(t, etcdtest.Start(t, 1).Endpoints(), 0)
	begin := func(id core.GroupID, token core.Token) func() error {
		return func() error {
			return j.Begin(context.Background(), core.Intent{Op: core.OpCreate, ID: id, Token: token})
		}
	}
	errs, txns := together(t, j, begin("g", "1.000000"), begin("h", "1.000000"), begin("g", "2.000000"))
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if txns != 2 {
		t.Fatalf("%d transactions, want 2: g's second Begin in the next", txns)
	}
}
