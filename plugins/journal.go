package plugins

import (
	"context"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/reliable-ops/rops/core"
)

// Journal is a journal opened from a URL, with the lock that goes with it:
// a journal shared by several processes needs a lock they all share.
type Journal struct {
	// Journal records the cluster's unfinished operations.
	Journal core.Journal
	// Locks serializes operations on an id among every process using the
	// journal.
	Locks core.Locker
	// Closer releases the journal's connections and locks.
	Closer io.Closer
}

// JournalEnv is what a journal driver is told of the cluster.
type JournalEnv struct {
	// Cluster is the cluster's identity: its journal is its own.
	Cluster string
}

// JournalDriver opens the journal that u describes. Errors should be
// *core.Error values with code EInvalid for a bad URL and EUnavailable for
// a service that does not answer, and say how to fix it.
type JournalDriver func(ctx context.Context, u *url.URL, env JournalEnv) (Journal, error)

var journals = struct {
	sync.RWMutex
	drivers map[string]JournalDriver
}{drivers: map[string]JournalDriver{}}

// RegisterJournal makes d open the journal URLs of scheme. It panics as
// Register does. It is safe for concurrent use, but meant for the init of
// the driver's package, as journals/etcd registers etcd://.
func RegisterJournal(scheme string, d JournalDriver) {
	if !validScheme.MatchString(scheme) || d == nil {
		panic("plugins: RegisterJournal of invalid scheme " + quote(scheme) + " or a nil driver")
	}
	journals.Lock()
	defer journals.Unlock()
	if _, dup := journals.drivers[scheme]; dup {
		panic("plugins: RegisterJournal called twice for scheme " + quote(scheme))
	}
	journals.drivers[scheme] = d
}

// OpenJournal opens the journal that raw, a URL such as
// etcd://HOST:PORT[,HOST:PORT...]/PREFIX, names, with the driver of its
// scheme. Errors name the URL.
func OpenJournal(ctx context.Context, raw string, env JournalEnv) (Journal, error) {
	journals.RLock()
	known := slices.Sorted(maps.Keys(journals.drivers))
	scheme, _, ok := strings.Cut(raw, "://")
	d := journals.drivers[strings.ToLower(scheme)]
	journals.RUnlock()
	if !ok || d == nil {
		return Journal{}, core.Errorf(core.EInvalid, "journal %q: write SCHEME://..., such as etcd://127.0.0.1:2379/rops; known schemes are %s", raw, strings.Join(known, ", "))
	}
	// Hosts separated by commas are not one URL host: parse the rest as a
	// path after a placeholder host, and give the driver the hosts as Host.
	hosts, rest, _ := strings.Cut(raw[len(scheme)+3:], "/")
	u, err := url.Parse(strings.ToLower(scheme) + "://h/" + rest)
	if err != nil {
		return Journal{}, core.Errorf(core.EInvalid, "journal %q is not a URL: %v", raw, err)
	}
	u.Host = hosts
	j, err := d(ctx, u, env)
	if err != nil {
		return Journal{}, &core.Error{Code: core.ErrorCode(err), Message: "journal " + quote(raw) + ": " + err.Error(), Err: err}
	}
	return j, nil
}
