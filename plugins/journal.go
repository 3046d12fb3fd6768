package plugins

import (
	"context"
	"errors"
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
// etcd://[USER@]HOST:PORT[,HOST:PORT...]/PREFIX, names, with the driver of
// its scheme; the driver gets USER as the URL's User. Errors name the URL,
// with a password in it replaced by xxxxx.
func OpenJournal(ctx context.Context, raw string, env JournalEnv) (Journal, error) {
	j, err := openJournal(ctx, raw, env)
	if err != nil {
		return Journal{}, &core.Error{Code: core.ErrorCode(err), Message: "journal " + quote(Redact(raw)) + ": " + err.Error(), Err: err}
	}
	return j, nil
}

// Redact returns the URL raw with the password of its user, if it has
// one, replaced by xxxxx, for messages and logs.
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	hosts, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(hosts, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(hosts[:at], ":")
	if !hasPassword {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

func openJournal(ctx context.Context, raw string, env JournalEnv) (Journal, error) {
	u, err := ParseJournalURL(raw)
	if err != nil {
		return Journal{}, err
	}
	journals.RLock()
	d := journals.drivers[u.Scheme]
	journals.RUnlock()
	return d(ctx, u, env)
}

// ParseJournalURL returns the URL OpenJournal gives the driver of raw's
// scheme: Host is every HOST:PORT, commas and all; User is the user before
// an '@', if any. It returns an EInvalid error, which leaves out a password
// in raw, if raw is no URL or names no registered scheme.
func ParseJournalURL(raw string) (*url.URL, error) {
	journals.RLock()
	known := slices.Sorted(maps.Keys(journals.drivers))
	scheme, _, ok := strings.Cut(raw, "://")
	d := journals.drivers[strings.ToLower(scheme)]
	journals.RUnlock()
	if !ok || d == nil {
		return nil, core.Errorf(core.EInvalid, "write SCHEME://..., such as etcd://127.0.0.1:2379/rops; known schemes are %s", strings.Join(known, ", "))
	}
	// Hosts separated by commas are not one URL host: parse the user and
	// the rest after a placeholder host, and give the driver the hosts as
	// Host.
	hosts, rest, _ := strings.Cut(raw[len(scheme)+3:], "/")
	user := ""
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		user, hosts = hosts[:at+1], hosts[at+1:]
	}
	u, err := url.Parse(strings.ToLower(scheme) + "://" + user + "h/" + rest)
	if err != nil {
		// url's errors quote the URL, password and all.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, core.Errorf(core.EInvalid, "not a URL: %v", err)
	}
	u.Host = hosts
	return u, nil
}
