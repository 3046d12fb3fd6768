package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// A server of two nodes, and a client of each: the clients are core.Nodes,
// so a coordinator runs over them as over embedded nodes.
func Example() {
	ctx := context.Background()
	server := httpapi.NewServer([]core.Node{
		faults.New("node01", memory.New(), faults.Options{}),
		faults.New("node02", memory.New(), faults.Options{}),
	}, httpapi.ServerOptions{})
	srv := httptest.NewServer(server)
	defer srv.Close()

	hc := httpapi.NewHTTPClient(4)
	defer hc.CloseIdleConnections()
	var cs []core.Node
	for _, name := range []string{"node01", "node02"} {
		c, err := httpapi.NewClient(srv.URL+"/v1", name, httpapi.ClientOptions{HTTP: hc})
		if err != nil {
			fmt.Println(err)
			return
		}
		cs = append(cs, c)
	}
	coord, err := core.New(core.Config{Nodes: cs})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := coord.Create(ctx, "5")
	fmt.Println(res.Outcome, res.Requests, err)
	_, err = cs[1].Get(ctx, "6")
	fmt.Println(err)
	st, err := coord.Stats(ctx, core.StatsOptions{})
	fmt.Println(st.Consistent, st.Nodes, err)
	// Output:
	// done 2 <nil>
	// No group record found with id '6'
	// true [{node01 1} {node02 1}] <nil>
}
