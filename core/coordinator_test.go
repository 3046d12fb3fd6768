package core

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// env is a coordinator over an in-test cluster and journal. Build it inside a
// synctest bubble: the coordinator's timeouts and backoff then run on the
// bubble's fake clock and cost no real time.
type env struct {
	t     *testing.T
	nodes fakeCluster
	j     *fakeJournal
	cfg   Config
	c     *Coordinator
}

func newEnv(t *testing.T, size int) *env {
	t.Helper()
	e := &env{t: t, nodes: newCluster(size), j: &fakeJournal{}}
	e.cfg = Config{Nodes: e.nodes.nodes(), Journal: e.j, Rand: rand.New(NewLockedSource(1))}
	return e
}

// coordinator builds the coordinator from e.cfg on first use.
func (e *env) coordinator() *Coordinator {
	e.t.Helper()
	if e.c == nil {
		c, err := New(e.cfg)
		if err != nil {
			e.t.Fatalf("New: %v", err)
		}
		e.c = c
	}
	return e.c
}

// ours stands for the token of the operation under test in expectations.
const ours Token = "<ours>"

const gid GroupID = "g1"

// opCase is one scripted operation on gid over three nodes.
type opCase struct {
	name      string
	op        Op
	id        GroupID          // default gid
	before    map[string]Token // the record each node holds before
	setup     func(e *env)     // faults, node modes, journal failures, config
	precancel bool             // the caller's ctx is cancelled before the call
	cancel    bool             // run, wait until every goroutine is blocked, then cancel
	want      Outcome
	wantErr   error            // errors.Is target; nil means no error
	after     map[string]Token // ours = the operation's token
	states    []NodeState      // nil: not checked
	requests  int              // -1: not checked
	retries   int              // -1: not checked
	left      int              // intents left in the journal
	recover   bool             // then heal everything, Recover, expect before again
}

func all3(t Token) map[string]Token {
	return map[string]Token{"node01": t, "node02": t, "node03": t}
}

var tokens123 = map[string]Token{"node01": "T1", "node02": "T2", "node03": "T3"}

func script(node string, method string, fs ...fault) func(e *env) {
	return func(e *env) {
		n := e.nodes.byName(node)
		if n.script == nil {
			n.script = map[string][]fault{}
		}
		n.script[method] = append(n.script[method], fs...)
	}
}

func both(fs ...func(e *env)) func(e *env) {
	return func(e *env) {
		for _, f := range fs {
			f(e)
		}
	}
}

func createCases() []opCase {
	forever := 1000
	return []opCase{{
		name: "success", want: Done,
		after:    all3(ours),
		states:   []NodeState{StateCreated, StateCreated, StateCreated},
		requests: 3, retries: 0,
	}, {
		name: "existed everywhere: unchanged", before: all3("T0"), want: Unchanged,
		after:    all3("T0"),
		states:   []NodeState{StateExisted, StateExisted, StateExisted},
		requests: 3, retries: 0,
	}, {
		name: "existed on some nodes only", before: map[string]Token{"node02": "T0"}, want: Done,
		after:    map[string]Token{"node01": ours, "node02": "T0", "node03": ours},
		states:   []NodeState{StateCreated, StateExisted, StateCreated},
		requests: 3, retries: 0,
	}, {
		name:  "ambiguous and applied: the retry is a replay",
		setup: script("node02", "Create", errAfter), want: Done,
		after:    all3(ours),
		states:   []NodeState{StateCreated, StateCreated, StateCreated},
		requests: 4, retries: 1,
	}, {
		name:  "ambiguous and not applied",
		setup: script("node02", "Create", errBefore), want: Done,
		after:    all3(ours),
		requests: 4, retries: 1,
	}, {
		name: "ambiguous on a node without replay: read back",
		setup: both(script("node02", "Create", errAfter),
			func(e *env) { e.nodes[1].noReplay = true }),
		want:     Done,
		after:    all3(ours),
		states:   []NodeState{StateCreated, StateCreated, StateCreated},
		requests: 5, retries: 1, // 3 creates, 1 retry answered ErrExists, 1 Get
	}, {
		name: "ambiguous on a node without replay whose Get shows no token",
		setup: both(script("node02", "Create", errAfter),
			func(e *env) { e.nodes[1].noReplay, e.nodes[1].hideTokens = true, true }),
		want:     Done,
		after:    all3(ours),
		states:   []NodeState{StateCreated, StateCreated, StateCreated},
		requests: 5, retries: 1,
	}, {
		name:   "ambiguous over someone else's record: read back, kept",
		before: map[string]Token{"node02": "T0"},
		setup: both(script("node02", "Create", errBefore),
			func(e *env) { e.nodes[1].noReplay = true }),
		want:     Done,
		after:    map[string]Token{"node01": ours, "node02": "T0", "node03": ours},
		states:   []NodeState{StateCreated, StateExisted, StateCreated},
		requests: 5, retries: 1,
	}, {
		name:  "request hangs: timed out and retried",
		setup: script("node02", "Create", hangBefore), want: Done,
		after:    all3(ours),
		requests: 4, retries: 1,
	}, {
		name:  "node down for three calls",
		setup: func(e *env) { e.nodes[1].downFor = 3 }, want: Done,
		after:    all3(ours),
		states:   []NodeState{StateCreated, StateCreated, StateCreated},
		requests: 6, retries: 3,
	}, {
		name:  "budget exhausted: compensated",
		setup: script("node02", "Create", repeat(errBefore, DefaultRetries+1)...),
		want:  RolledBack, wantErr: ErrTransient,
		after:    map[string]Token{},
		states:   []NodeState{StateRestored, StateRestored, StateRestored},
		requests: 3 + DefaultRetries + 3, retries: DefaultRetries,
	}, {
		name:   "budget exhausted: a record that was there stays",
		before: map[string]Token{"node03": "T0"},
		setup:  script("node02", "Create", repeat(errAfter, DefaultRetries+1)...),
		want:   RolledBack, wantErr: ErrTransient,
		after:    map[string]Token{"node03": "T0"},
		states:   []NodeState{StateRestored, StateRestored, StateExisted},
		requests: 3 + DefaultRetries + 2, retries: DefaultRetries,
	}, {
		name: "compensation cannot finish: pending",
		setup: both(script("node02", "Create", repeat(errAfter, DefaultRetries+1)...),
			script("node02", "Delete", repeat(down, forever)...)),
		want: Pending, wantErr: ErrTransient,
		after:    map[string]Token{"node02": ours},
		states:   []NodeState{StateRestored, StateUnknown, StateRestored},
		requests: -1, retries: -1,
		left: 1, recover: true,
	}, {
		name:  "rejected: compensated",
		setup: script("node02", "Create", errBefore, reject),
		want:  RolledBack, wantErr: ErrRejected,
		after:    map[string]Token{},
		states:   []NodeState{StateRestored, StateRestored, StateRestored},
		requests: 3 + 1 + 3, retries: 1,
	}, {
		name: "every node down: nothing touched",
		setup: func(e *env) {
			for _, n := range e.nodes {
				n.down = true
			}
		},
		want: RolledBack, wantErr: ErrUnavailable,
		after:  map[string]Token{},
		states: []NodeState{StateAbsent, StateAbsent, StateAbsent},
		// The first node out of budget cancels the others' backoff.
		requests: -1, retries: -1,
	}, {
		name: "invalid id", id: "a/b",
		want: RolledBack, wantErr: ErrInvalid,
		after:    map[string]Token{},
		requests: 0, retries: 0,
	}, {
		name:  "journal cannot begin: nothing touched",
		setup: func(e *env) { e.j.failBegin = errors.New("disk full") },
		want:  RolledBack, wantErr: nil, // checked below: the journal's error
		after:    map[string]Token{},
		requests: 0, retries: 0,
	}, {
		name: "journal Begin timed out, withdrawn: rolled back",
		setup: func(e *env) {
			e.j.failBegin = Errorf(ETransient, "timed out")
		},
		want: RolledBack, wantErr: nil,
		after:    map[string]Token{},
		requests: 0, retries: 0,
	}, {
		name: "journal Begin timed out, not withdrawn: pending",
		setup: func(e *env) {
			e.j.failBegin = Errorf(ETransient, "timed out")
			e.j.failFinish = Errorf(ETransient, "unreachable")
		},
		want: Pending, wantErr: nil,
		after:    map[string]Token{},
		requests: 0, retries: 0,
	}, {
		name:  "journal unreadable: nothing touched",
		setup: func(e *env) { e.j.failList = errors.New("disk gone") },
		want:  RolledBack,
		after: map[string]Token{}, requests: 0, retries: 0,
	}, {
		name:     "journal cannot finish a commit: pending",
		setup:    func(e *env) { e.j.failFinish = errors.New("disk full") },
		want:     Pending,
		after:    all3(ours),
		requests: 3, retries: 0,
		left: 1, recover: true,
	}, {
		name:  "cancelled while a node hangs: pending",
		setup: script("node02", "Create", hangBefore), cancel: true,
		want: Pending, wantErr: context.Canceled,
		after:    map[string]Token{"node01": ours, "node03": ours},
		states:   []NodeState{StateUnknown, StateUnknown, StateUnknown},
		requests: 3, retries: 0,
		left: 1, recover: true,
	}, {
		name: "cancelled while every node is down: rolled back",
		setup: func(e *env) {
			for _, n := range e.nodes {
				n.down = true
			}
		},
		cancel: true,
		want:   RolledBack, wantErr: ErrUnavailable,
		after:    map[string]Token{},
		states:   []NodeState{StateAbsent, StateAbsent, StateAbsent},
		requests: 3, retries: 0,
	}, {
		name: "cancelled before it starts: nothing sent", precancel: true,
		want: RolledBack, wantErr: context.Canceled,
		after:    map[string]Token{},
		requests: 0, retries: 0,
	}}
}

func deleteCases() []opCase {
	forever := 1000
	return []opCase{{
		name: "success", before: tokens123, want: Done,
		after:    map[string]Token{},
		states:   []NodeState{StateDeleted, StateDeleted, StateDeleted},
		requests: 6, retries: 0, // 3 reads, 3 deletes
	}, {
		name: "absent: unchanged", want: Unchanged,
		after:    map[string]Token{},
		states:   []NodeState{StateAbsent, StateAbsent, StateAbsent},
		requests: 3, retries: 0,
	}, {
		name: "held on some nodes only", before: map[string]Token{"node02": "T2"}, want: Done,
		after:    map[string]Token{},
		states:   []NodeState{StateAbsent, StateDeleted, StateAbsent},
		requests: 4, retries: 0,
	}, {
		name: "ambiguous and applied: the retry finds it gone", before: tokens123,
		setup: script("node02", "Delete", errAfter), want: Done,
		after:    map[string]Token{},
		states:   []NodeState{StateDeleted, StateDeleted, StateDeleted},
		requests: 7, retries: 1,
	}, {
		name: "ambiguous and not applied", before: tokens123,
		setup: script("node02", "Delete", errBefore), want: Done,
		after:    map[string]Token{},
		requests: 7, retries: 1,
	}, {
		// The undo re-creates under the operation's own token, so that a
		// late delete of the old one misses it; node02, whose delete may
		// still land, is cleared first (a delete, then the create).
		name: "rejected: restored under the operation's token", before: tokens123,
		setup: script("node02", "Delete", errBefore, reject),
		want:  RolledBack, wantErr: ErrRejected,
		after:    all3(ours),
		states:   []NodeState{StateRestored, StateRestored, StateRestored},
		requests: 3 + 3 + 1 + 2 + 2, retries: 1,
	}, {
		name: "budget exhausted after the delete landed: restored", before: tokens123,
		setup: script("node02", "Delete", append([]fault{errAfter}, repeat(errBefore, DefaultRetries)...)...),
		want:  RolledBack, wantErr: ErrTransient,
		after:    all3(ours),
		states:   []NodeState{StateRestored, StateRestored, StateRestored},
		requests: 3 + 3 + DefaultRetries + 2 + 2, retries: DefaultRetries,
	}, {
		name: "pre-read fails: nothing touched", before: tokens123,
		setup: script("node02", "Get", repeat(errBefore, DefaultRetries+1)...),
		want:  RolledBack, wantErr: ErrTransient,
		after:    tokens123,
		states:   []NodeState{StateExisted, StateUnknown, StateExisted},
		requests: 3 + DefaultRetries, retries: DefaultRetries,
	}, {
		name: "compensation cannot finish: pending, pre-image in the journal", before: tokens123,
		setup: both(script("node02", "Delete", errAfter, reject),
			script("node02", "Create", repeat(down, forever)...)),
		want: Pending, wantErr: ErrRejected,
		after:    map[string]Token{"node01": ours, "node03": ours},
		states:   []NodeState{StateRestored, StateUnknown, StateRestored},
		requests: -1, retries: -1,
		left: 1, recover: true,
	}, {
		name: "cancelled mid-delete: pending", before: tokens123,
		setup: script("node02", "Delete", hangAfter), cancel: true,
		want: Pending, wantErr: context.Canceled,
		after:    map[string]Token{},
		states:   []NodeState{StateUnknown, StateUnknown, StateUnknown},
		requests: 6, retries: 0,
		left: 1, recover: true,
	}, {
		name: "cancelled during the pre-read: rolled back", before: tokens123,
		setup: script("node02", "Get", hangBefore), cancel: true,
		want: RolledBack, wantErr: context.Canceled,
		after:    tokens123,
		requests: 3, retries: 0,
	}, {
		name: "node without tokens: unconditional delete", before: tokens123,
		setup:    func(e *env) { e.nodes[1].hideTokens = true },
		want:     Done,
		after:    map[string]Token{},
		requests: 6, retries: 0,
	}, {
		name: "node without tokens, rolled back: restored under the operation's token", before: tokens123,
		setup: both(func(e *env) { e.nodes[1].hideTokens = true },
			script("node01", "Delete", errBefore, reject)),
		want: RolledBack, wantErr: ErrRejected,
		after:    all3(ours),
		requests: -1, retries: -1,
	}, {
		name: "journal cannot finish a commit: pending", before: tokens123,
		setup:    func(e *env) { e.j.failFinish = errors.New("disk full") },
		want:     Pending,
		after:    map[string]Token{},
		requests: 6, retries: 0,
		left: 1, recover: true,
	}, {
		name: "invalid id", id: "a b",
		want: RolledBack, wantErr: ErrInvalid,
		after:    map[string]Token{},
		requests: 0, retries: 0,
	}}
}

func TestCreate(t *testing.T) {
	for _, tc := range createCases() {
		tc.op = OpCreate
		t.Run(tc.name, func(t *testing.T) { runOpCase(t, tc) })
	}
}

func TestDelete(t *testing.T) {
	for _, tc := range deleteCases() {
		tc.op = OpDelete
		t.Run(tc.name, func(t *testing.T) { runOpCase(t, tc) })
	}
}

func runOpCase(t *testing.T, tc opCase) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		id := cmpOr(tc.id, gid)
		for name, tok := range tc.before {
			e.nodes.byName(name).put(id, tok)
		}
		if tc.setup != nil {
			tc.setup(e)
		}
		c := e.coordinator()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if tc.precancel {
			cancel()
		}
		var res Result
		var err error
		run := func() {
			if tc.op == OpCreate {
				res, err = c.Create(ctx, id)
			} else {
				res, err = c.Delete(ctx, id)
			}
		}
		if tc.cancel {
			done := make(chan struct{})
			go func() { defer close(done); run() }()
			synctest.Wait() // every node has answered or is hanging or backing off
			cancel()
			<-done
		} else {
			run()
		}

		if got, want := res.Outcome, tc.want; got != want {
			t.Fatalf("outcome=%v, want %v (err %v; nodes %v)", got, want, err, res.Nodes)
		}
		if got, want := res.Op, tc.op; got != want {
			t.Errorf("op=%v, want %v", got, want)
		}
		if got, want := res.ID, id; got != want {
			t.Errorf("id=%v, want %v", got, want)
		}
		expect{tc.want, tc.wantErr, tc.after, tc.states, tc.requests}.check(t, e, id, res, err)
		if err != nil && res.Err != err {
			t.Errorf("res.Err=%v, want the returned error %v", res.Err, err)
		}
		if tc.retries >= 0 {
			if got, want := res.Retries, tc.retries; got != want {
				t.Errorf("retries=%d, want %d", got, want)
			}
		}
		left := e.j.left()
		if got, want := len(left), tc.left; got != want {
			t.Fatalf("journal holds %d intents (%v), want %d", got, left, want)
		}
		for _, in := range left {
			if in.Token != res.Token || in.ID != id || in.Op != tc.op {
				t.Errorf("journal holds %+v, want the operation's intent (token %s)", in, res.Token)
			}
			if tc.op == OpDelete && !maps.Equal(in.PreImage, tc.before) {
				t.Errorf("intent pre-image=%v, want %v", in.PreImage, tc.before)
			}
		}
		if !tc.recover {
			return
		}
		e.nodes.heal()
		e.j.failFinish = nil
		results, err := c.Recover(t.Context(), 0)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if got, want := len(results), 1; got != want {
			t.Fatalf("Recover returned %d results, want %d", got, want)
		}
		if got, want := results[0].Outcome, RolledBack; got != want {
			t.Fatalf("Recover outcome=%v, want %v (%v)", got, want, results[0].Err)
		}
		if got, want := e.nodes.holders(id), tc.before; !sameHolders(got, want) {
			t.Errorf("after Recover nodes hold %v, want the nodes of %v as before", got, want)
		}
		if got := len(e.j.left()); got != 0 {
			t.Errorf("after Recover the journal holds %d intents, want 0", got)
		}
	})
}

// sameHolders reports whether the same nodes hold a record in got and want,
// whatever the tokens: an undone delete re-creates the record under its own
// token.
func sameHolders(got, want map[string]Token) bool {
	return slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []Node
	}{
		{"no nodes", nil},
		{"duplicate names", []Node{newFakeNode("node01"), newFakeNode("node01")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Nodes: tc.nodes})
			if got, want := ErrorCode(err), EInvalid; got != want {
				t.Fatalf("code=%v, want %v (err %v)", got, want, err)
			}
		})
	}
}

// busyNode answers its first Create with 429 and a Retry-After.
type busyNode struct {
	*fakeNode
	wait time.Duration
	once sync.Once
}

func (n *busyNode) Create(ctx context.Context, id GroupID, token Token) error {
	busy := false
	n.once.Do(func() { busy = true })
	if busy {
		n.fakeNode.next("Create", id)
		return &Error{Code: ETransient, Overloaded: true, Message: n.name + ": 429", RetryAfter: n.wait}
	}
	return n.fakeNode.Create(ctx, id, token)
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wait    time.Duration
		want    Outcome
		elapsed time.Duration
	}{
		{"waits as long as asked", 5 * time.Second, Done, 5 * time.Second},
		{"not past the operation timeout", time.Hour, RolledBack, DefaultOperationTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				e.cfg.Nodes[1] = &busyNode{fakeNode: e.nodes[1], wait: tc.wait}
				start := time.Now()
				res, err := e.coordinator().Create(t.Context(), gid)
				if got, want := res.Outcome, tc.want; got != want {
					t.Fatalf("outcome=%v, want %v (%v)", got, want, err)
				}
				if got, want := time.Since(start), tc.elapsed; got != want {
					t.Errorf("took %v of fake time, want %v", got, want)
				}
			})
		})
	}
}

// expect is what a table case expects of one operation.
type expect struct {
	want     Outcome
	wantErr  error            // nil: any error, if want is not Done or Unchanged
	after    map[string]Token // what each node holds after; ours = the operation's token
	states   []NodeState      // nil: not checked
	requests int              // -1: not checked
}

// check checks res and err against x, the nodes' records, and that res
// counts exactly the requests the nodes saw.
func (x expect) check(t *testing.T, e *env, id GroupID, res Result, err error) {
	t.Helper()
	if got, want := res.Outcome, x.want; got != want {
		t.Errorf("outcome=%v (err %v), want %v", got, err, want)
	}
	switch {
	case x.want == Done || x.want == Unchanged:
		if err != nil {
			t.Errorf("err=%v, want nil", err)
		}
	case err == nil:
		t.Errorf("err=nil, want an error for %v", x.want)
	case x.wantErr != nil && !errors.Is(err, x.wantErr):
		t.Errorf("err=%v, want one that is %v", err, x.wantErr)
	}
	want := map[string]Token{}
	for name, tok := range x.after {
		if tok == ours {
			tok = res.Token
		}
		want[name] = tok
	}
	if got := e.nodes.holders(id); !maps.Equal(got, want) {
		t.Errorf("nodes hold %v, want %v", got, want)
	}
	if x.states != nil {
		var got []NodeState
		for _, n := range res.Nodes {
			got = append(got, n.State)
		}
		if !slices.Equal(got, x.states) {
			t.Errorf("states=%v, want %v", got, x.states)
		}
	}
	if got, want := res.Requests, e.nodes.totalCalls(); got != want {
		t.Errorf("requests=%d, but the nodes saw %d", got, want)
	}
	if x.requests >= 0 {
		if got, want := res.Requests, x.requests; got != want {
			t.Errorf("requests=%d, want %d", got, want)
		}
	}
}

// ctxNode records the context of every Create it is sent, and how long it
// had left.
type ctxNode struct {
	*fakeNode
	mu   sync.Mutex
	ctxs []context.Context
	left []time.Duration
}

func (n *ctxNode) Create(ctx context.Context, id GroupID, token Token) error {
	dl, _ := ctx.Deadline()
	n.mu.Lock()
	n.ctxs, n.left = append(n.ctxs, ctx), append(n.left, time.Until(dl))
	n.mu.Unlock()
	return n.fakeNode.Create(ctx, id, token)
}

// TestFirstRequestsShareATimeout: the first requests of a create's parts,
// sent together, share one request context, RequestTimeout long; a retry
// has one of its own; and a shared context that leaves less than nine
// tenths of RequestTimeout is not used.
func TestFirstRequestsShareATimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		ns := make([]*ctxNode, len(e.nodes))
		for i, n := range e.nodes {
			ns[i] = &ctxNode{fakeNode: n}
			e.cfg.Nodes[i] = ns[i]
		}
		e.nodes[2].script = map[string][]fault{"Create": {errBefore}}
		c := e.coordinator()
		if res, err := c.Create(t.Context(), "g1"); err != nil || res.Outcome != Done {
			t.Fatalf("create: %v %v", res.Outcome, err)
		}
		for i, n := range ns {
			if got, want := len(n.ctxs), 1+min(i/2, 1); got != want {
				t.Fatalf("%s got %d creates, want %d", n.name, got, want)
			}
			if n.ctxs[0] != ns[0].ctxs[0] {
				t.Errorf("%s's first request has a context of its own", n.name)
			}
			if got, want := n.left[0], c.cfg.RequestTimeout; got != want {
				t.Errorf("%s's first request had %v left, want %v", n.name, got, want)
			}
		}
		if ns[2].ctxs[1] == ns[2].ctxs[0] || ns[2].left[1] != c.cfg.RequestTimeout {
			t.Errorf("the retry has the first requests' context, or %v left, not its own %v", ns[2].left[1], c.cfg.RequestTimeout)
		}

		r := c.start("g2")
		ctx := WithFence(t.Context(), r.token)
		late, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout*8/10)
		defer cancel()
		if ev, _, err := r.send(ctx, late, ns[0], reqCreate, r.token, false); ev != evApplied {
			t.Fatalf("send: %v %v", ev, err)
		}
		if got, want := ns[0].left[len(ns[0].left)-1], c.cfg.RequestTimeout; got != want {
			t.Errorf("a request under a context with %v left had %v, want its own %v", c.cfg.RequestTimeout*8/10, got, want)
		}
	})
}
