package cli

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/journals/wal"
	"github.com/reliable-ops/rops/plugins"
)

// clusterIdentity returns the identity of the cluster specs name, and its
// canonical description: the nodes' addresses and names, sorted, without
// the settings that do not change which nodes they are (faults, timeouts).
// Two targets naming the same nodes have one identity, and so one journal
// and one lock; two clusters never share one. dataDir is where badger nodes
// without dir= keep their data.
func clusterIdentity(specs []string, dataDir string) (id, desc string) {
	canon := make([]string, len(specs))
	for i, s := range specs {
		canon[i] = canonicalSpec(s, dataDir)
	}
	slices.Sort(canon)
	canon = slices.Compact(canon)
	desc = strings.Join(canon, " ")
	sum := sha256.Sum256([]byte(strings.Join(canon, "\n")))
	return hex.EncodeToString(sum[:8]), desc
}

// canonicalSpec returns the address and name of the node spec names.
func canonicalSpec(spec, dataDir string) string {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme == "" {
		return spec
	}
	scheme := strings.ToLower(u.Scheme)
	q := u.Query()
	switch scheme {
	case "badger":
		dir := q.Get("dir")
		if dir == "" {
			dir = filepath.Join(dataDir, u.Host)
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		return "badger://" + u.Host + "?dir=" + filepath.Clean(dir)
	case "memory":
		return "memory://" + u.Host
	case "http", "https":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			host, port = u.Host, map[string]string{"http": "80", "https": "443"}[scheme]
		}
		path := strings.TrimRight(u.EscapedPath(), "/")
		return scheme + "://" + net.JoinHostPort(strings.ToLower(host), port) + path + "?node=" + url.QueryEscape(q.Get("node"))
	}
	// Other drivers: the spec, settings sorted.
	u.Scheme, u.RawQuery = scheme, q.Encode()
	return u.String()
}

// openJournal opens the journal of the cluster tc names: the one --journal
// (or the target's "journal") gives, such as etcd://HOST:PORT/PREFIX, shared
// with every process that names it, with its lock; else the local one, under
// dataDir/journal/ID, into which it moves the journal an older rops kept
// for target under dataDir/journal/NAME, if any (see adoptLegacy). One of
// local and shared is set.
func (g *Globals) openJournal(ctx context.Context, stderr io.Writer, cfg Config, tc TargetConfig, dataDir string) (local *wal.Journal, shared plugins.Journal, err error) {
	id, desc := clusterIdentity(tc.Nodes, dataDir)
	if u := cmp.Or(g.Journal, tc.Journal); u != "" {
		shared, err = plugins.OpenJournal(ctx, u, plugins.JournalEnv{Cluster: id})
		return nil, shared, err
	}
	j, err := wal.Open(filepath.Join(dataDir, "journal", id), wal.Options{Cluster: id, Nodes: desc})
	if err != nil {
		return nil, shared, err
	}
	if err := adoptLegacy(ctx, stderr, j, cfg, g.Target, dataDir); err != nil {
		j.Close()
		return nil, shared, err
	}
	return j, shared, nil
}

// adoptLegacy moves the intents of the journal an older rops kept per
// target name (a badger database in dataDir/journal/NAME, NAME the target's
// name with anything but letters, digits, '-' and '_' made '_') into j,
// and removes it: once. Such a journal is the target's only if no other
// target folds to the same NAME ("a.b" and "a_b" shared one); if another
// does, and it holds intents, the command stops with a usage error that
// says so, and the user runs the older journal's recover by hand. If some
// of its entries cannot be read, the readable intents are moved and the
// command stops (ExitDamaged) with what to do, keeping the old journal:
// dropping it in silence could lose a half-done operation.
func adoptLegacy(ctx context.Context, stderr io.Writer, j *wal.Journal, cfg Config, target, dataDir string) error {
	dir := filepath.Join(dataDir, "journal", fileName(target))
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return nil // none, or not a badger database
	}
	intents, err := badger.ReadJournal(dir)
	corrupt, _ := errors.AsType[*badger.CorruptError](err)
	switch {
	case errors.Is(err, badger.ErrLocked):
		return err // an older rops is running
	case err != nil && corrupt == nil:
		return &exitError{code: ExitDamaged, err: fmt.Errorf("the journal %s of an older rops cannot be read: %w", dir, err)}
	}
	unread := 0
	if corrupt != nil {
		unread = len(corrupt.Entries)
	}
	if len(intents)+unread > 0 {
		var same []string
		names := slices.Concat(slices.Collect(maps.Keys(cfg.Targets)), slices.Collect(maps.Keys(builtinTargets)))
		slices.Sort(names)
		for _, name := range slices.Compact(names) {
			if name != target && fileName(name) == fileName(target) {
				same = append(same, name)
			}
		}
		if len(same) > 0 {
			return usageError(fmt.Errorf("the journal %s of an older rops holds %d unfinished operations, and targets %q and %s both kept their journal there: it cannot tell whose they are. "+
				"Check which target they name (the nodes in its intents), then remove %s once that target's nodes agree (rops stats --diff, rops repair)",
				dir, len(intents)+unread, target, strings.Join(quote(same), ", "), dir))
		}
	}
	if len(intents) > 0 {
		have, err := j.Pending(ctx)
		if err != nil {
			return err
		}
		moved := 0
		for _, in := range intents {
			if slices.ContainsFunc(have, func(h core.Intent) bool { return h.Token == in.Token }) {
				continue // moved by a run that stopped before removing dir
			}
			in.Cluster = ""
			if err := j.Begin(ctx, in); err != nil {
				return fmt.Errorf("cannot move intent %s from the journal %s of an older rops: %w", in.Token, dir, err)
			}
			moved++
		}
		if moved > 0 {
			fmt.Fprintf(stderr, "rops: moved %d unfinished operations from the journal of an older rops (%s) to this cluster's journal (%s)\n", moved, dir, j.Dir())
		}
	}
	if corrupt != nil {
		// Every command stops here until dir is gone, so nothing
		// finishes the moved intents before then: moving them again
		// cannot bring back a finished one.
		return &exitError{code: ExitDamaged, err: fmt.Errorf("%w. The operations these entries recorded may be half done, and rops cannot tell on which ids; "+
			"its readable intents are in this cluster's journal (%s). Move %s out of %s, run rops recover, "+
			"then look at the nodes with rops stats --diff and make them agree with rops repair", corrupt, j.Dir(), dir, filepath.Dir(dir))}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cannot remove the journal %s of an older rops, whose intents are now in %s: %w", dir, j.Dir(), err)
	}
	return nil
}

func quote(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return q
}
