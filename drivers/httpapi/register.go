package httpapi

import (
	"context"
	"io"
	"maps"
	"net/url"
	"slices"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/plugins"
)

// The driver registers itself, as litestream's backends do, so that only a
// program that imports this package can open http:// and https:// specs.
func init() {
	plugins.Register("http", openSpec)
	plugins.Register("https", openSpec)
}

// openSpec opens http://HOST:PORT/PATH?node=NAME (or https): the node NAME
// of the rops serve, or original, server whose API is at HOST:PORT/PATH,
// such as http://127.0.0.1:8080/v1?node=node01. The node is required: the
// server serves several and picks one by name. Faults belong to the server,
// so fault settings are refused. All such nodes share env.HTTP.
func openSpec(_ context.Context, u *url.URL, env plugins.Env) (core.Node, io.Closer, error) {
	example := u.Scheme + "://127.0.0.1:8080/v1?node=node01"
	switch {
	case u.Opaque != "" || u.Host == "":
		return nil, nil, core.Errorf(core.EInvalid, "no server address: write %s://HOST:PORT/PATH?node=NAME, such as %s", u.Scheme, example)
	case u.User != nil:
		return nil, nil, core.Errorf(core.EInvalid, "a %s spec takes no user: rops sends no credentials", u.Scheme)
	case u.Fragment != "":
		return nil, nil, core.Errorf(core.EInvalid, "unexpected fragment %q: write %s://HOST:PORT/PATH?node=NAME", "#"+u.Fragment, u.Scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, nil, core.Errorf(core.EInvalid, "cannot read the settings after '?' (%v): write node=NAME", err)
	}
	faultKeys := faults.SpecKeys()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case slices.Contains(faultKeys, k):
			return nil, nil, core.Errorf(core.EInvalid,
				"%s= is a fault setting, and the faults of a %s node belong to its server: start it with them (rops serve --random-behavior 0.2) or change them with PUT /admin/faults (rops serve --admin)", k, u.Scheme)
		case k != "node":
			return nil, nil, core.Errorf(core.EInvalid, "unknown setting %q: %s nodes take only node=NAME", k, u.Scheme)
		case len(q[k]) > 1:
			return nil, nil, core.Errorf(core.EInvalid, "setting %q is given %d times: give it once", k, len(q[k]))
		}
	}
	name := q.Get("node")
	if name == "" {
		return nil, nil, core.Errorf(core.EInvalid, "no node name: add ?node=NAME to name the node on the server, such as %s", example)
	}
	if err := plugins.ValidateNodeName(name); err != nil {
		return nil, nil, err
	}
	base := *u
	base.RawQuery, base.ForceQuery = "", false
	c, err := NewClient(base.String(), name, ClientOptions{HTTP: env.HTTP, Batch: !env.NoBatches})
	if err != nil {
		return nil, nil, err
	}
	return c, nil, nil
}
