package httpapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/reqlog"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/plugins"
)

func TestRegistered(t *testing.T) {
	got := plugins.Schemes()
	for _, want := range []string{"http", "https"} {
		if !slices.Contains(got, want) {
			t.Fatalf("Schemes()=%v: importing drivers/httpapi must register %s://", got, want)
		}
	}
}

func TestOpenSpec(t *testing.T) {
	h := &counting{h: httpapi.NewServer(memoryNodes("node01", "node02"), httpapi.ServerOptions{})}
	srv := serve(t, h)
	hc := newHTTPClient(t)
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{ReplaceAttr: noTime}))
	env := plugins.Env{HTTP: hc, Wrap: func(n core.Node) core.Node { return reqlog.Wrap(n, logger) }}
	n, c, err := plugins.Open(t.Context(), srv.URL+"/v1?node=node02", env)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		t.Fatalf("http node has a closer %T; its pool belongs to Env.HTTP", c)
	}
	if got, want := n.Name(), "node02"; got != want {
		t.Fatalf("Name()=%q, want %q", got, want)
	}
	if err := n.Create(t.Context(), "5", "1633806680.000001"); err != nil {
		t.Fatal(err)
	}
	rec, err := n.Get(t.Context(), "5")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Token, core.Token("1633806680.000001"); got != want {
		t.Fatalf("token=%q, want %q", got, want)
	}
	if got, want := h.n.Load(), int64(2); got != want {
		t.Fatalf("the server saw %d requests, want %d", got, want)
	}
	if !strings.Contains(log.String(), "msg=answer node=node02 op=create groupId=5 result=created\n") {
		t.Fatalf("log=%q, want the create logged", log.String())
	}
	// node01 of the same server holds nothing.
	n1, _, err := plugins.Open(t.Context(), srv.URL+"?node=node01", plugins.Env{HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := n1.Count(t.Context()); err != nil || got != 0 {
		t.Fatalf("node01 Count=%d, %v; want 0", got, err)
	}
}

func TestOpenSpecInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"no node", "http://127.0.0.1:8080/v1", "no node name: add ?node=NAME to name the node on the server, such as http://127.0.0.1:8080/v1?node=node01"},
		{"empty node", "http://127.0.0.1:8080/v1?node=", "no node name"},
		{"node twice", "http://127.0.0.1:8080/v1?node=a&node=b", `setting "node" is given 2 times`},
		{"bad node", "https://127.0.0.1:8080/v1?node=node%2001", `invalid node name "node 01"`},
		{"fault", "http://127.0.0.1:8080/v1?node=node01&error_rate=0.2", "error_rate= is a fault setting, and the faults of a http node belong to its server"},
		{"seed", "https://127.0.0.1:8080/v1?node=node01&seed=1", "seed= is a fault setting"},
		{"unknown", "http://127.0.0.1:8080/v1?node=node01&timeout=1s", `unknown setting "timeout": http nodes take only node=NAME`},
		{"no host", "http:///v1?node=node01", "no server address"},
		{"opaque", "http:node01", "no server address"},
		{"user", "http://me:pw@127.0.0.1:8080/v1?node=node01", "takes no user"},
		{"fragment", "http://127.0.0.1:8080/v1?node=node01#x", `unexpected fragment "#x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := plugins.Open(t.Context(), tc.spec, plugins.Env{})
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("code of %v=%q, want %q", err, got, want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestOpenSpecHidesPassword(t *testing.T) {
	_, _, err := plugins.Open(context.Background(), "http://user:secret@127.0.0.1:1/v1?node=node01&error_rate=0.5", plugins.Env{})
	if err == nil {
		t.Fatal("Open accepted a fault setting on an http spec")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error shows the password: %v", err)
	}
}

// noTime drops slog's time, so that tests can compare lines.
func noTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
