package etcd_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/journals/etcd"
	"github.com/reliable-ops/rops/journals/etcd/etcdtest"
	"github.com/reliable-ops/rops/storetest"
)

// lockedJournal is an etcd journal as the coordinator uses it, for the
// conformance suite, whose Finish names only a token: it finishes under the
// lock of the id that token was begun on. Begin and Update go without a
// lock, as etcd.Journal allows.
type lockedJournal struct {
	*etcd.Journal
	mu  sync.Mutex
	ids map[core.Token]core.GroupID
}

func (j *lockedJournal) Begin(ctx context.Context, in core.Intent) error {
	err := j.Journal.Begin(ctx, in)
	if err == nil {
		j.mu.Lock()
		j.ids[in.Token] = in.ID
		j.mu.Unlock()
	}
	return err
}

func (j *lockedJournal) Finish(ctx context.Context, token core.Token) error {
	j.mu.Lock()
	id, ok := j.ids[token]
	j.mu.Unlock()
	if !ok {
		id = "unknown"
	}
	held, unlock, err := j.Locker().Lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	return j.Journal.Finish(held, token)
}

func TestConformance(t *testing.T) {
	eps := etcdtest.Start(t, 1).Endpoints()
	var n atomic.Int64
	storetest.RunJournalExcept(t, func(tb testing.TB) core.Journal {
		j, err := etcd.Open(context.Background(), etcd.Options{Endpoints: eps, Prefix: fmt.Sprintf("conformance%d", n.Add(1)), Cluster: "c1", RequestTimeout: 3 * time.Second})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { j.Close() })
		return &lockedJournal{Journal: j, ids: map[core.Token]core.GroupID{}}
	}, map[string]string{
		"BeginDuplicate": "intents are keyed by id and token: two coordinators may draw one token for two ids",
		"RoundTrip":      "Pending orders by token, across coordinators, and this test begins an older token second",
	})
}
