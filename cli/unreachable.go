package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/httpapi"
)

// unreachableBound is how many operations in a row, from a job's first,
// must find no node reachable before the job probes the nodes and, if none
// answers, takes no more ids: the rest would fail the same way.
const unreachableBound = 8

// unreachable watches a job for a cluster that nobody answers (every node
// refuses the connection, its name does not resolve, or its certificate is
// not trusted), so that the job names the cause once, without -v, and
// stops early instead of failing every id in turn. The ids it does not
// start are not started at all: nothing is sent for them, they are neither
// rolled back nor pending, and the job reports how many.
type unreachable struct {
	nodes []core.Node

	mu      sync.Mutex
	failed  int  // operations that reached no node, before any other outcome
	other   bool // an operation ended otherwise: the nodes answer, or may
	probed  bool
	stopped bool
	causes  []error // each node's ping error, once probed and none answered
}

func newUnreachable(nodes []core.Node) *unreachable {
	return &unreachable{nodes: nodes}
}

// add counts an operation's result. Use it as (part of) a job's each.
func (u *unreachable) add(res core.Result) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if res.Outcome == core.RolledBack && reachedNone(res) {
		u.failed++
	} else {
		u.other = true
	}
}

// each returns f with add in front of it.
func (u *unreachable) each(f func(core.Result)) func(core.Result) {
	return func(res core.Result) {
		u.add(res)
		if f != nil {
			f(res)
		}
	}
}

// ids yields the ids of seq until the first unreachableBound operations
// have all reached no node and a ping of every node fails too.
func (u *unreachable) ids(ctx context.Context, seq iter.Seq[core.GroupID]) iter.Seq[core.GroupID] {
	return func(yield func(core.GroupID) bool) {
		for id := range seq {
			if u.stop(ctx) {
				return
			}
			if !yield(id) {
				return
			}
		}
	}
}

// stop reports whether the job should take no more ids, probing the nodes
// once the bound is reached.
func (u *unreachable) stop(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false // interrupted: not the nodes' doing, and the job stops anyway
	}
	u.mu.Lock()
	suspect := !u.probed && !u.other && u.failed >= unreachableBound
	u.mu.Unlock()
	if suspect {
		u.probe(ctx)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stopped
}

// probe pings every node at once; if none can be reached, it keeps their
// errors and stops the job.
func (u *unreachable) probe(ctx context.Context) {
	errs := make([]error, len(u.nodes))
	var wg sync.WaitGroup
	for i, n := range u.nodes {
		wg.Go(func() { errs[i] = ping(ctx, n) })
	}
	wg.Wait()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.probed = true
	for _, err := range errs {
		if !cannotReach(err) {
			return
		}
	}
	u.causes, u.stopped = errs, !u.other
}

// report prints, when every operation of the job reached no node and no
// node answers a ping, the cause in one line, and how many ids the job did
// not start if it stopped early.
func (u *unreachable) report(ctx context.Context, w io.Writer, notStarted int) {
	if ctx.Err() != nil {
		// Interrupted (Ctrl-C, a full disk): operations ended "not sent"
		// for that reason, not the nodes'.
		return
	}
	u.mu.Lock()
	suspect := !u.probed && !u.other && u.failed > 0
	u.mu.Unlock()
	if suspect { // fewer operations than the bound, all failed
		u.probe(ctx)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.causes == nil {
		return
	}
	fmt.Fprintf(w, "rops: %s\n", summarizeUnreachable(u.nodes, u.causes))
	if u.stopped && notStarted > 0 {
		fmt.Fprintf(w, "rops: stopped after %d operations reached no node: %d ids not started (nothing was sent for them); run the job again once the nodes answer\n", u.failed, notStarted)
	}
}

// reachedNone reports whether an operation failed on every node because
// the node could not be reached.
func reachedNone(res core.Result) bool {
	if len(res.Nodes) == 0 {
		return cannotReach(res.Err)
	}
	for _, n := range res.Nodes {
		if n.Err == nil || !cannotReach(n.Err) {
			return false
		}
	}
	return true
}

// cannotReach reports whether err says that a request certainly never
// reached its node (refused, not resolved, breaker open) or that TLS
// stopped it (httpapi.TLSError: a certificate not trusted either way, or
// HTTPS against plain HTTP).
func cannotReach(err error) bool {
	switch core.ErrorCode(err) {
	case core.EUnavailable:
		return true
	case core.ERejected:
		_, ok := errors.AsType[*httpapi.TLSError](err)
		return ok
	}
	return false
}

// summarizeUnreachable says why each node could not be reached, nodes with
// the same cause and address together: "node01..03: connection refused at
// http://127.0.0.1:1/v1: is rops serve running?".
func summarizeUnreachable(nodes []core.Node, errs []error) string {
	type cause struct{ reason, hint, at string }
	var order []cause
	names := map[cause][]string{}
	for i, n := range nodes {
		reason, hint := dialReason(errs[i])
		c := cause{reason: reason, hint: hint, at: nodeURL(n)}
		if _, ok := names[c]; !ok {
			order = append(order, c)
		}
		names[c] = append(names[c], n.Name())
	}
	var parts []string
	for _, c := range order {
		s := compactNames(names[c]) + ": " + c.reason
		if c.at != "" {
			s += " at " + c.at
		}
		if c.hint != "" {
			s += ": " + c.hint
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// dialReason is the short cause of a failed request, and a hint: the
// system's error of a dial (connection refused), the resolver's, or the
// certificate's; else the whole error.
func dialReason(err error) (reason, hint string) {
	if errno, ok := errors.AsType[syscall.Errno](err); ok {
		if errno == syscall.ECONNREFUSED {
			hint = "is rops serve running?"
		}
		return errno.Error(), hint
	}
	if dns, ok := errors.AsType[*net.DNSError](err); ok {
		return dns.Error(), "is the host name right?"
	}
	if te, ok := errors.AsType[*httpapi.TLSError](err); ok {
		return te.Reason, te.Hint
	}
	if op, ok := errors.AsType[*net.OpError](err); ok {
		return op.Err.Error(), ""
	}
	return err.Error(), ""
}

// nodeURL is the server address of an HTTP node, looking through wrappers
// such as the request log; "" for other nodes.
func nodeURL(n core.Node) string {
	for inner := n; inner != nil; {
		if u, ok := inner.(interface{ URL() string }); ok {
			return u.URL()
		}
		w, ok := inner.(interface{ Unwrap() core.Node })
		if !ok {
			break
		}
		inner = w.Unwrap()
	}
	return ""
}

// compactNames writes names such as node01, node02, node03 as node01..03
// when they share a prefix and count up by one; else it lists them.
func compactNames(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, ", ")
	}
	digits := func(s string) int { // where s's trailing digits start
		i := len(s)
		for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			i--
		}
		return i
	}
	first := names[0]
	at := digits(first)
	prev, width := 0, len(first)-at
	for i, name := range names {
		if width == 0 || digits(name) != at || name[:at] != first[:at] || len(name) != len(first) {
			return strings.Join(names, ", ")
		}
		n, err := strconv.Atoi(name[at:])
		if err != nil || i > 0 && n != prev+1 {
			return strings.Join(names, ", ")
		}
		prev = n
	}
	return first + ".." + names[len(names)-1][at:]
}

// unreachableError returns err, or, if err holds only errors of nodes that
// could not be reached and no node answers a ping either, an
// *errUnreachable that names the cause once instead of once per node.
func unreachableError(ctx context.Context, nodes []core.Node, err error) error {
	if err == nil || ctx.Err() != nil || !onlyCannotReach(err) {
		return err
	}
	u := newUnreachable(nodes)
	u.probe(ctx)
	if u.causes == nil {
		return err
	}
	return &errUnreachable{summarizeUnreachable(nodes, u.causes)}
}

// errUnreachable says that no node of the target answered: a command that
// gave up for it exits ExitUnreachable (see unreachableCode).
type errUnreachable struct{ cause string }

func (e *errUnreachable) Error() string { return e.cause }

// unreachableCode returns ExitUnreachable if err is or wraps an
// *errUnreachable, else code.
func unreachableCode(err error, code int) int {
	if _, ok := errors.AsType[*errUnreachable](err); ok {
		return ExitUnreachable
	}
	return code
}

// exitError returns a job's exit error err, with ExitUnreachable in place
// of ExitRolledBack if every operation reached no node and no node answered
// a ping either (report, which must come first, said why).
func (u *unreachable) exitError(err error) error {
	u.mu.Lock()
	gaveUp := u.causes != nil
	u.mu.Unlock()
	if ee, ok := errors.AsType[*exitError](err); ok && gaveUp && ee.code == ExitRolledBack {
		ee.code = ExitUnreachable
	}
	return err
}

// onlyCannotReach reports whether err, and each error joined in it, says
// that a node could not be reached.
func onlyCannotReach(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyCannotReach(e) {
				return false
			}
		}
		return len(j.Unwrap()) > 0
	}
	return cannotReach(err)
}
