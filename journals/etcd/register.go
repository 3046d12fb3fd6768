package etcd

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/plugins"
)

// The driver registers itself, as litestream's backends do, so that only a
// program that imports this package links the etcd client.
func init() {
	plugins.RegisterJournal("etcd", openURL)
}

// openURL opens etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=10s&dial_timeout=5s&cluster=NAME]:
// the cluster's intents under /PREFIX/CLUSTER/ in that etcd (CLUSTER the
// identity of the nodes' addresses, or NAME), and its locks on a lease of
// ttl.
func openURL(ctx context.Context, u *url.URL, env plugins.JournalEnv) (plugins.Journal, error) {
	if u.Host == "" {
		return plugins.Journal{}, core.Errorf(core.EInvalid, "no etcd address: write etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix == "" {
		return plugins.Journal{}, core.Errorf(core.EInvalid, "no prefix: write etcd://HOST:PORT/PREFIX, such as etcd://127.0.0.1:2379/rops")
	}
	opts := Options{Endpoints: strings.Split(u.Host, ","), Prefix: prefix, Cluster: env.Cluster}
	q := u.Query()
	if c := q.Get("cluster"); c != "" {
		// Machines that reach the nodes by other addresses name the
		// cluster so, to share its journal.
		opts.Cluster = c
		q.Del("cluster")
	}
	for key, vs := range q {
		var d time.Duration
		var err error
		if len(vs) > 0 {
			d, err = time.ParseDuration(vs[0])
		}
		if err != nil || d <= 0 {
			return plugins.Journal{}, core.Errorf(core.EInvalid, "%s=%s: give a positive duration such as 10s", key, strings.Join(vs, ","))
		}
		switch key {
		case "ttl":
			opts.TTL = d
		case "dial_timeout":
			opts.DialTimeout = d
		case "request_timeout":
			opts.RequestTimeout = d
		default:
			return plugins.Journal{}, core.Errorf(core.EInvalid, "unknown setting %q: etcd journals take cluster, ttl, dial_timeout and request_timeout", key)
		}
	}
	for _, ep := range opts.Endpoints {
		if ep == "" {
			return plugins.Journal{}, core.Errorf(core.EInvalid, "empty etcd address in %q", u.Host)
		}
	}
	j, err := Open(ctx, opts)
	if err != nil {
		return plugins.Journal{}, err
	}
	return plugins.Journal{Journal: j, Locks: j.Locker(), Closer: j}, nil
}
