package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fault is what the fake node does to one call.
type fault int

const (
	pass              fault = iota // answer normally
	errBefore                      // fail with 500 before doing anything (ETransient)
	errAfter                       // do the call, then fail with 500: the acknowledgement is lost
	hangBefore                     // never answer and do nothing; the caller's deadline ends it
	hangAfter                      // do the call, then never answer
	down                           // connection refused (EUnavailable): certainly not applied
	reject                         // 4xx (ERejected): retrying cannot help
	late                           // never answer; the call is applied fakeLateDelay after it arrived
	reset                          // do the call, then the connection is reset (ETransient)
	duplicate                      // do the call, answer, and do it again fakeLateDelay later
	gatewayApplied                 // a proxy's 502/503/504 (ETransient) after forwarding: applied
	gatewayNotApplied              // a proxy's 502/503/504 (ETransient), not forwarded
	numFaults
)

// fakeLateDelay is how long after it arrived a late or duplicated call is
// applied: past the coordinator's default request timeout.
const fakeLateDelay = 3 * time.Second

func (f fault) String() string {
	return [...]string{"pass", "errBefore", "errAfter", "hangBefore", "hangAfter", "down", "reject",
		"late", "reset", "duplicate", "gatewayApplied", "gatewayNotApplied"}[f]
}

// fakeNode is a map-backed Store with core.Store semantics behind a scripted
// fault layer. Faults come, in this order of precedence, from: down (every
// call refused), downFor (the next k calls refused), script (per method, the
// fault of call k is script[method][k-1]), queue (the next calls, whatever
// the method), and fn. Set fields before the node is used, or under mu.
type fakeNode struct {
	name string

	mu         sync.Mutex
	recs       map[GroupID]Token
	tombs      map[GroupID]map[Token]bool  // tombstones of conditional deletes
	noReplay   bool                        // Create with the record's own token answers ErrExists (the original server)
	hideTokens bool                        // Get and List return records without their token (the original server)
	noFence    bool                        // keep no tombstones (the original server)
	removes    bool                        // serve Remove, as rops nodes do (unless noFence)
	removals   map[GroupID]map[Token]Token // what Remove(id, before) removed, by before
	fences     map[GroupID]Token           // the greatest fence a request carried, by id (see CheckFence)
	// ignoreFences makes the node take every fence for current: a store
	// from before fencing, for the simulation to show what fencing buys.
	ignoreFences bool
	// tombsFullUntil: until then the node's tombstone store is full, and
	// a write that would add a tombstone is refused (see tombsFull).
	tombsFullUntil time.Time
	// dupRefused: a duplicate of a write refused for want of tombstone
	// room lands later all the same. Nothing fences it there: the
	// refusal left no tombstone (see TestSimulation's -sim.fulldups).
	dupRefused  bool
	stale, full int // requests refused as stale, and for want of tombstone room
	down        bool
	downFor     int
	script      map[string][]fault
	queue       []fault
	fn          func(c call) fault
	onCall      func(c call) // called with every call, before its fault applies
	calls       map[string]int
	callsID     map[string]int // by method and id
	total       int
}

// call is one call a fake node receives.
type call struct {
	Method string
	ID     GroupID
	K      int // 1 for the node's first call of Method
	KID    int // 1 for the node's first call of Method on ID
}

var _ Node = (*fakeNode)(nil)

func newFakeNode(name string) *fakeNode {
	return &fakeNode{name: name, recs: map[GroupID]Token{}, calls: map[string]int{}, callsID: map[string]int{}}
}

func (n *fakeNode) Name() string { return n.name }

// Fences reports whether the node keeps tombstones, as rops nodes do.
func (n *fakeNode) Fences() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.noFence
}

// Removes reports whether the node serves Remove: if removes is set and
// it fences. Off by default, so that a test of the read-first delete need
// not say so.
func (n *fakeNode) Removes() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.removes && !n.noFence
}

// original makes n behave like the original server: no replays, no tokens
// in reads, no tombstones.
func (n *fakeNode) original() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.noReplay, n.hideTokens, n.noFence = true, true, true
}

// next counts a call and returns its fault.
func (n *fakeNode) next(method string, id GroupID) fault {
	n.mu.Lock()
	n.calls[method]++
	n.callsID[method+" "+string(id)]++
	n.total++
	k := n.calls[method]
	c := call{Method: method, ID: id, K: k, KID: n.callsID[method+" "+string(id)]}
	f := pass
	switch s := n.script[method]; {
	case n.down:
		f = down
	case n.downFor > 0:
		n.downFor--
		f = down
	case k <= len(s):
		f = s[k-1]
	case len(n.queue) > 0:
		f, n.queue = n.queue[0], n.queue[1:]
	case n.fn != nil:
		f = n.fn(c)
	}
	hook := n.onCall
	n.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	return f
}

// appliedKey marks a context whose call's effect is recorded: its value,
// an *atomic.Bool, is set once the node ran the call (see simBatcher); a
// call under replayKey meets no fault of its own.
type (
	appliedKey struct{}
	replayKey  struct{}
)

// do runs op under the fault of this call.
func (n *fakeNode) do(ctx context.Context, method string, id GroupID, op func() error) error {
	f := n.next(method, id)
	if ctx.Value(replayKey{}) != nil {
		f = pass
	}
	write := method == "Create" || method == "Delete" || method == "Remove"
	if !write && (f == late || f == duplicate) {
		// A read has no effect to apply later.
		f = map[fault]fault{late: hangBefore, duplicate: pass}[f]
	}
	switch f {
	case down:
		return &Error{Code: EUnavailable, Message: n.name + ": connection refused"}
	case reject:
		return &Error{Code: ERejected, Message: n.name + ": 406 rejected"}
	case errBefore:
		return &Error{Code: ETransient, Message: n.name + ": 500 before", Err: errServer}
	case hangBefore:
		<-ctx.Done()
		return ctx.Err()
	case gatewayNotApplied:
		return &Error{Code: ETransient, Message: n.name + ": 502 bad gateway", Err: errProxy}
	case late:
		// The request waits in a queue the caller cannot see; the caller
		// gives up first. Its fence is checked when it lands.
		n.applyLater(n.fenced(id, FenceOf(ctx), op))
		<-ctx.Done()
		return ctx.Err()
	}
	op = n.fenced(id, FenceOf(ctx), op)
	// A request whose caller already gave up is never sent, as over HTTP.
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	err := op()
	n.mu.Unlock()
	if a, ok := ctx.Value(appliedKey{}).(*atomic.Bool); ok && !errors.Is(err, errTombsFull) {
		// A write refused for want of tombstone room was not applied,
		// and its copies are -sim.fulldups' (see duplicate below).
		a.Store(true)
	}
	switch f {
	case errAfter:
		return &Error{Code: ETransient, Message: n.name + ": 500 after", Err: errServer}
	case hangAfter:
		<-ctx.Done()
		return ctx.Err()
	case reset:
		return &Error{Code: ETransient, Message: n.name + ": connection reset by peer"}
	case gatewayApplied:
		return &Error{Code: ETransient, Message: n.name + ": 504 gateway timeout", Err: errProxy}
	case duplicate:
		if !errors.Is(err, errTombsFull) || n.dupRefused {
			n.applyLater(op)
		}
	}
	return err
}

// errServer is the cause of the node's own 500s, errProxy of a proxy's
// 502/503/504 page: the one carries the node's word (its Rops- headers,
// over HTTP), the other does not.
var (
	errServer = errors.New("the node's own error page")
	errProxy  = errors.New("a proxy's error page")
)

// fenced returns op behind the fence check of a node that fences (see
// CheckFence): a request with a fence below the id's is refused with
// EStale, touching nothing; otherwise the fence is raised with the
// request's effect, unless it was refused for want of tombstone room,
// which touches nothing either. Call what it returns with n.mu held.
func (n *fakeNode) fenced(id GroupID, fence Token, op func() error) func() error {
	return func() error {
		if n.noFence || n.ignoreFences {
			return op()
		}
		raise, err := CheckFence(id, n.fences[id], fence)
		if err != nil {
			n.stale++
			return err
		}
		err = op()
		if raise && !errors.Is(err, errTombsFull) {
			if n.fences == nil {
				n.fences = map[GroupID]Token{}
			}
			n.fences[id] = fence
		}
		return err
	}
}

var errTombsFull = errors.New("tombstones full")

// tombsFull returns, while the node's tombstone store is full, the refusal
// of a write that would add a tombstone, as a rops store answers it:
// EUnavailable, certainly not applied, Overloaded, and RetryAfter until
// there is room. Call it with n.mu held.
func (n *fakeNode) tombsFull() error {
	now := time.Now()
	if !now.Before(n.tombsFullUntil) {
		return nil
	}
	n.full++
	wait := n.tombsFullUntil.Sub(now)
	return &Error{Code: EUnavailable, RetryAfter: wait, Overloaded: true, Err: errTombsFull,
		Message: fmt.Sprintf("%s: tombstones full: not applied; retry in %v", n.name, wait)}
}

// applyLater runs op fakeLateDelay from now. Run in the caller's synctest
// bubble, its goroutine ends when the fake clock reaches the delay.
func (n *fakeNode) applyLater(op func() error) {
	go func() {
		time.Sleep(fakeLateDelay)
		n.mu.Lock()
		_ = op()
		n.mu.Unlock()
	}()
}

func (n *fakeNode) Create(ctx context.Context, id GroupID, token Token) error {
	return n.do(ctx, "Create", id, func() error {
		t, ok := n.recs[id]
		if ok && n.noReplay {
			return Errorf(EExists, "%s: %q exists", n.name, id)
		}
		if write, err := CheckCreate(id, t, ok, token, n.tombs[id][token]); !write {
			if ErrorCode(err) == EExists && !n.noFence {
				if full := n.tombsFull(); full != nil {
					return full
				}
				n.tomb(id, token)
			}
			return err
		}
		n.recs[id] = token
		return nil
	})
}

func (n *fakeNode) Delete(ctx context.Context, id GroupID, token Token) error {
	return n.do(ctx, "Delete", id, func() error {
		t, ok := n.recs[id]
		if !n.noFence && (token != "" || ok) {
			if full := n.tombsFull(); full != nil {
				return full
			}
			n.tomb(id, cmpOr(token, t))
		}
		if _, err := CheckDelete(id, t, ok, token); err != nil {
			return err
		}
		delete(n.recs, id)
		return nil
	})
}

func (n *fakeNode) Remove(ctx context.Context, id GroupID, before Token) (Token, error) {
	var tok Token
	answered := false
	err := n.do(ctx, "Remove", id, func() error {
		t, ok := n.recs[id]
		removed, known := n.removals[id][before]
		write, got, err := CheckRemove(id, t, ok, before, removed, known)
		if write {
			if full := n.tombsFull(); full != nil {
				got, err = "", full
				write = false
			}
		}
		if !answered {
			// A late or duplicate apply answers nobody.
			tok, answered = got, true
		}
		if !write {
			return err
		}
		delete(n.recs, id)
		n.tomb(id, t)
		if n.removals == nil {
			n.removals = map[GroupID]map[Token]Token{}
		}
		if n.removals[id] == nil {
			n.removals[id] = map[Token]Token{}
		}
		n.removals[id][before] = t
		return nil
	})
	n.mu.Lock()
	defer n.mu.Unlock()
	return tok, err
}

// tomb leaves a tombstone for (id, token); call it with n.mu held.
func (n *fakeNode) tomb(id GroupID, token Token) {
	if n.tombs == nil {
		n.tombs = map[GroupID]map[Token]bool{}
	}
	if n.tombs[id] == nil {
		n.tombs[id] = map[Token]bool{}
	}
	n.tombs[id][token] = true
}

func (n *fakeNode) Get(ctx context.Context, id GroupID) (Record, error) {
	var rec Record
	err := n.do(ctx, "Get", id, func() error {
		t, ok := n.recs[id]
		if !ok {
			return Errorf(ENotFound, "%s: no %q", n.name, id)
		}
		rec = Record{ID: id, Token: t}
		if n.hideTokens {
			rec.Token = ""
		}
		return nil
	})
	return rec, err
}

func (n *fakeNode) List(ctx context.Context, after GroupID, limit int) ([]Record, error) {
	var page []Record
	err := n.do(ctx, "List", after, func() error {
		ids := slices.Sorted(maps.Keys(n.recs))
		i := sort.Search(len(ids), func(i int) bool { return ids[i] > after })
		for _, id := range ids[i:min(i+limit, len(ids))] {
			rec := Record{ID: id, Token: n.recs[id]}
			if n.hideTokens {
				rec.Token = ""
			}
			page = append(page, rec)
		}
		return nil
	})
	return page, err
}

func (n *fakeNode) Count(ctx context.Context) (int, error) {
	var c int
	err := n.do(ctx, "Count", "", func() error { c = len(n.recs); return nil })
	return c, err
}

// heal turns every fault off.
func (n *fakeNode) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down, n.downFor, n.script, n.queue, n.fn, n.onCall = false, 0, nil, nil, nil, nil
	n.tombsFullUntil = time.Time{}
}

func (n *fakeNode) snapshot() map[GroupID]Token {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.recs)
}

func (n *fakeNode) token(id GroupID) (Token, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.recs[id]
	return t, ok
}

func (n *fakeNode) put(id GroupID, t Token) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.recs[id] = t
}

// drop removes n's record of id, as a delete that no test follows would
// (another client's).
func (n *fakeNode) drop(id GroupID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.recs, id)
}

func (n *fakeNode) callCount(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[method]
}

func (n *fakeNode) totalCalls() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.total
}

// fakeCluster is a set of fake nodes.
type fakeCluster []*fakeNode

func newCluster(size int) fakeCluster {
	c := make(fakeCluster, size)
	for i := range c {
		c[i] = newFakeNode(fmt.Sprintf("node%02d", i+1))
	}
	return c
}

func (c fakeCluster) nodes() []Node {
	ns := make([]Node, len(c))
	for i, n := range c {
		ns[i] = n
	}
	return ns
}

func (c fakeCluster) byName(name string) *fakeNode {
	for _, n := range c {
		if n.name == name {
			return n
		}
	}
	panic("no node " + name)
}

func (c fakeCluster) heal() {
	for _, n := range c {
		n.heal()
	}
}

func (c fakeCluster) totalCalls() int {
	s := 0
	for _, n := range c {
		s += n.totalCalls()
	}
	return s
}

// holders returns, for id, the token each node holds (nodes without it are
// absent from the map).
func (c fakeCluster) holders(id GroupID) map[string]Token {
	m := map[string]Token{}
	for _, n := range c {
		if t, ok := n.token(id); ok {
			m[n.name] = t
		}
	}
	return m
}

// ids returns every id any node holds, sorted.
func (c fakeCluster) ids() []GroupID {
	set := map[GroupID]bool{}
	for _, n := range c {
		for id := range n.snapshot() {
			set[id] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// agree reports whether every node holds id or none does.
func (c fakeCluster) agree(id GroupID) bool {
	h := len(c.holders(id))
	return h == 0 || h == len(c)
}

func (c fakeCluster) String() string {
	var b strings.Builder
	for _, n := range c {
		snap := n.snapshot()
		fmt.Fprintf(&b, "%s:", n.name)
		for _, id := range slices.Sorted(maps.Keys(snap)) {
			fmt.Fprintf(&b, " %s=%s", id, snap[id])
		}
		b.WriteString("; ")
	}
	return b.String()
}

// fakeJournal is an in-memory Journal whose calls can be made to fail.
type fakeJournal struct {
	mu         sync.Mutex
	intents    []Intent
	failBegin  error
	failFinish error
	failList   error
	failUpdate []error // the errors of the next Updates, in turn (nil: succeed)
	finished   []Token
}

var _ Journal = (*fakeJournal)(nil)

func (j *fakeJournal) Begin(ctx context.Context, in Intent) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failBegin != nil {
		return j.failBegin
	}
	in.Nodes = slices.Clone(in.Nodes)
	in.PreImage = maps.Clone(in.PreImage)
	j.intents = append(j.intents, in)
	return nil
}

func (j *fakeJournal) Update(ctx context.Context, in Intent) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.failUpdate) > 0 {
		err := j.failUpdate[0]
		j.failUpdate = j.failUpdate[1:]
		if err != nil {
			return err
		}
	}
	for i := range j.intents {
		if j.intents[i].Token == in.Token {
			j.intents[i] = in
			return nil
		}
	}
	return Errorf(ENotFound, "no intent %s", in.Token)
}

func (j *fakeJournal) Finish(ctx context.Context, token Token) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failFinish != nil {
		return j.failFinish
	}
	j.finished = append(j.finished, token)
	j.intents = slices.DeleteFunc(j.intents, func(in Intent) bool { return in.Token == token })
	return nil
}

func (j *fakeJournal) Pending(ctx context.Context) ([]Intent, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failList != nil {
		return nil, j.failList
	}
	return slices.Clone(j.intents), nil
}

func (j *fakeJournal) left() []Intent {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.intents)
}

// leftIDs returns the ids of the intents left in the journal.
func (j *fakeJournal) leftIDs() map[GroupID]bool {
	m := map[GroupID]bool{}
	for _, in := range j.left() {
		m[in.ID] = true
	}
	return m
}

// repeat returns n copies of f.
func repeat(f fault, n int) []fault { return slices.Repeat([]fault{f}, n) }

// TestFakeNodeIsAStore checks the fake itself against the Store contract, so
// that the coordinator's tests rest on a fake that behaves like a Store.
func TestFakeNodeIsAStore(t *testing.T) {
	ctx := t.Context()
	n := newFakeNode("node01")
	if err := n.Create(ctx, "a", "1"); err != nil {
		t.Fatalf("Create new: %v", err)
	}
	if err := n.Create(ctx, "a", "1"); err != nil {
		t.Fatalf("Create replay: %v", err)
	}
	if err := n.Create(ctx, "a", "2"); ErrorCode(err) != EExists {
		t.Fatalf("Create other token: %v, want exists", err)
	}
	if err := n.Delete(ctx, "a", "2"); ErrorCode(err) != ENotFound {
		t.Fatalf("Delete other token: %v, want not_found", err)
	}
	if rec, err := n.Get(ctx, "a"); err != nil || rec.Token != "1" {
		t.Fatalf("Get = %v, %v", rec, err)
	}
	for _, id := range []GroupID{"c", "b", "d"} {
		_ = n.Create(ctx, id, "x")
	}
	page, _ := n.List(ctx, "a", 2)
	if got, want := fmt.Sprint(page), "[{b x} {c x}]"; got != want {
		t.Fatalf("List = %s, want %s", got, want)
	}
	if err := n.Delete(ctx, "a", ""); err != nil {
		t.Fatalf("unconditional Delete: %v", err)
	}
	if c, _ := n.Count(ctx); c != 3 {
		t.Fatalf("Count = %d, want 3", c)
	}
	n.noReplay = true
	if err := n.Create(ctx, "b", "x"); ErrorCode(err) != EExists {
		t.Fatalf("Create replay on a node without replay: %v, want exists", err)
	}
	n.queue = []fault{errAfter, errBefore}
	if err := n.Delete(ctx, "b", "x"); ErrorCode(err) != ETransient {
		t.Fatalf("Delete with errAfter: %v", err)
	}
	if _, ok := n.token("b"); ok {
		t.Fatalf("errAfter did not apply the delete")
	}
	if err := n.Delete(ctx, "c", "x"); ErrorCode(err) != ETransient {
		t.Fatalf("Delete with errBefore: %v", err)
	}
	if _, ok := n.token("c"); !ok {
		t.Fatalf("errBefore applied the delete")
	}
}
