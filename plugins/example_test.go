package plugins_test

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/plugins"
)

// An embedder's own kind of node: a memory node that starts with the records
// its spec lists, fixture://NAME?ids=1,2,3. It takes the usual fault settings
// too, through plugins.ParseNodeSpec and NodeSpec.New, as the program imports
// decorators/faults (main_test.go).
func init() {
	plugins.Register("fixture", openFixture)
}

func openFixture(ctx context.Context, u *url.URL, env plugins.Env) (core.Node, io.Closer, error) {
	spec, err := plugins.ParseNodeSpec(u, env, "ids")
	if err != nil {
		return nil, nil, err
	}
	store := memory.New()
	if ids := spec.Query.Get("ids"); ids != "" {
		for _, s := range strings.Split(ids, ",") {
			id, err := core.ParseGroupID(s)
			if err != nil {
				return nil, nil, err
			}
			if err := store.Create(ctx, id, "1633806680.000001"); err != nil {
				return nil, nil, err
			}
		}
	}
	n, c := spec.New(store, nil)
	return n, c, nil
}

func Example() {
	ctx := context.Background()
	target, err := plugins.OpenTarget(ctx, []string{
		"fixture://node01?ids=1,2,3",
		"fixture://node02?ids=1,2&error_rate=0.2",
		"memory://node03",
	}, plugins.Env{Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer target.Close()
	for _, n := range target.Nodes {
		c, err := n.Count(ctx)
		fmt.Println(n.Name(), c, err)
	}

	_, err = plugins.OpenTarget(ctx, []string{"fixture://node01?id=1"}, plugins.Env{})
	fmt.Println(err)
	// Output:
	// node01 3 <nil>
	// node02 2 <nil>
	// node03 0 <nil>
	// node spec "fixture://node01?id=1": unknown setting "id": fixture nodes take error_rate, ambiguous_rate, latency, jitter, hang_rate, down, late_rate, late_delay, reset_rate, duplicate_rate, gateway_rate, batch_rate, seed, ids
}
