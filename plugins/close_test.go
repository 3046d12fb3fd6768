package plugins_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/decorators/reqlog"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/plugins"
)

// TestCloseDropsQueuedWrites checks that closing a target closes its faulty
// nodes before the stores their drivers return (NodeSpec.New's closer): a
// late write still queued is dropped, never run on a closed store (and
// goleak sees no goroutine left).
func TestCloseDropsQueuedWrites(t *testing.T) {
	var node *faults.Node
	var pendingAtStoreClose error
	r := plugins.NewRegistry()
	r.Register("slow", func(_ context.Context, u *url.URL, env plugins.Env) (core.Node, io.Closer, error) {
		spec, err := plugins.ParseNodeSpec(u, env)
		if err != nil {
			return nil, nil, err
		}
		n, c := spec.New(memory.New(), closerFunc(func() error {
			// An ended context: Settle fails only if a write is still queued.
			ended, cancel := context.WithCancel(context.Background())
			cancel()
			pendingAtStoreClose = node.Settle(ended)
			return nil
		}))
		node, _ = faults.Faulty(n)
		return n, c, nil
	})
	// The request log wraps the node last, over the faults.
	logged := func(n core.Node) core.Node { return reqlog.Wrap(n, slog.New(slog.DiscardHandler)) }
	target, err := r.OpenTarget(t.Context(), []string{"slow://node01?late_rate=1&late_delay=1m"}, plugins.Env{Wrap: logged})
	if err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if err := target.Nodes[0].Create(ended, "5", "1.000001"); !core.IsAmbiguous(err) {
		t.Fatalf("late Create=%v, want an ambiguous error", err)
	}
	if err := target.Close(); err != nil {
		t.Fatal(err)
	}
	if pendingAtStoreClose != nil {
		t.Fatalf("the store closed with a late write still queued (%v): the node must close first", pendingAtStoreClose)
	}
}
