package nemesis

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/drivers/memory"
)

// TestAdminToken: an Admin sends its token; without it, or with a wrong
// one, the server's 401 is an error that says how to give it, and the
// node's faults stay as they were.
func TestAdminToken(t *testing.T) {
	node := faults.New("node01", memory.New(), faults.Options{})
	srv := httptest.NewServer(httpapi.NewServer([]core.Node{node}, httpapi.ServerOptions{Admin: true, AdminToken: "right"}))
	defer srv.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		token string
		want  error
	}{{"", ErrNoAdminToken}, {"wrong", ErrWrongAdminToken}} {
		a := &Admin{URL: srv.URL + "/v1", Node: "node01", Token: tc.token}
		if _, err := a.Faults(ctx); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "--admin-token-file or ROPS_ADMIN_TOKEN") {
			t.Errorf("Faults with token %q: %v, want %v", tc.token, err, tc.want)
		}
		if err := a.Patch(ctx, map[string]any{"down": true}); !errors.Is(err, tc.want) {
			t.Errorf("Patch with token %q: %v, want %v", tc.token, err, tc.want)
		}
		if node.Faults().Down {
			t.Fatalf("a Patch with token %q set the node down", tc.token)
		}
	}
	a := &Admin{URL: srv.URL + "/v1", Node: "node01", Token: "right"}
	if err := a.Patch(ctx, map[string]any{"down": true}); err != nil || !node.Faults().Down {
		t.Fatalf("Patch with the token: %v, down %v", err, node.Faults().Down)
	}
}
