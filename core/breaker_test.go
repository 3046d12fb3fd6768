package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reliable-ops/rops/core/breaker"
)

// leftovers leaves n create intents in e's journal, each of whose record
// only node01 holds, as a job killed mid-create leaves them.
func (e *env) leftovers(n int) []GroupID {
	ids := make([]GroupID, n)
	for i := range ids {
		ids[i] = GroupID(fmt.Sprintf("g%04d", i))
		tok := Token(fmt.Sprintf("T%04d", i))
		e.j.intents = append(e.j.intents, Intent{Op: OpCreate, ID: ids[i], Token: tok, Nodes: allNodes})
		e.nodes[0].put(ids[i], tok)
	}
	return ids
}

// settleBound is how much fake time 1000 leftover intents with a node down
// may take to be reported pending: the window the breaker waits before it
// opens, and a little. Without a breaker each costs CompensationTimeout
// (30 s), 16 at a time: about 31 minutes.
const settleBound = 5 * time.Second

// TestRecoverWithNodeDownIsFast: 1000 leftover intents with node02 down are
// all reported pending within seconds of the fake clock, not one
// compensation timeout each; once node02 answers again, the next Recover
// rolls them all back.
func TestRecoverWithNodeDownIsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.cfg.Breaker = breaker.New(breaker.Options{})
		ids := e.leftovers(1000)
		e.nodes[1].down = true

		start := time.Now()
		results, err := e.coordinator().Recover(t.Context(), 0)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		t.Logf("1000 intents, node02 down: reported in %v of fake time; %d requests to node02, %d refused",
			elapsed, e.nodes[1].totalCalls(), e.cfg.Breaker.Refused("node02"))
		if len(results) != len(ids) {
			t.Fatalf("%d results, want %d", len(results), len(ids))
		}
		for _, res := range results {
			if res.Outcome != Pending || !errors.Is(res.Err, ErrUnavailable) {
				t.Fatalf("%s: outcome=%v (%v), want pending, unavailable", res.ID, res.Outcome, res.Err)
			}
		}
		if elapsed > settleBound {
			t.Fatalf("Recover took %v of fake time, want at most %v", elapsed, settleBound)
		}
		if got, want := len(e.j.left()), len(ids); got != want {
			t.Fatalf("journal holds %d intents, want %d", got, want)
		}

		// node02 is back: after the cooldown the breaker lets requests
		// through, and the next Recover rolls every intent back.
		e.nodes[1].mu.Lock()
		e.nodes[1].down = false
		e.nodes[1].mu.Unlock()
		time.Sleep(e.cfg.Breaker.Options().Cooldown)
		results, err = e.coordinator().Recover(t.Context(), 0)
		if err != nil {
			t.Fatalf("second Recover: %v", err)
		}
		for _, res := range results {
			if res.Outcome != RolledBack {
				t.Fatalf("%s: outcome=%v (%v), want rolled back", res.ID, res.Outcome, res.Err)
			}
		}
		if got, want := len(results), len(ids); got != want {
			t.Fatalf("%d results, want %d", got, want)
		}
		if left := e.j.left(); len(left) != 0 {
			t.Fatalf("journal holds %d intents, want none", len(left))
		}
		if got := e.nodes.ids(); len(got) != 0 {
			t.Fatalf("nodes hold %d ids, want none", len(got))
		}
	})
}

// TestBulkWithNodeDownIsFast: a job on 1000 ids that each carry a leftover
// intent, with node02 down, settles each one first (see settle): every
// operation ends pending, within seconds of the fake clock.
func TestBulkWithNodeDownIsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.cfg.Breaker = breaker.New(breaker.Options{})
		ids := e.leftovers(1000)
		e.nodes[1].down = true
		start := time.Now()
		rep := e.coordinator().Bulk(t.Context(), OpCreate, slices.Values(ids), 0, nil)
		elapsed := time.Since(start)
		t.Logf("1000 creates over leftover intents, node02 down: %v of fake time, %d requests", elapsed, rep.Requests)
		if rep.Pending != len(ids) {
			t.Fatalf("report = %+v, want %d pending", rep, len(ids))
		}
		if elapsed > settleBound {
			t.Fatalf("the job took %v of fake time, want at most %v", elapsed, settleBound)
		}
	})
}

// TestBreakerKeepsAmbiguity: a create whose write to node02 may have landed
// (the acknowledgement was lost) cannot be undone while node02 is down: the
// breaker's refusals leave it pending, never rolled back, and the record
// node02 holds stays known to the journal until a Recover deletes it.
func TestBreakerKeepsAmbiguity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.cfg.Breaker = breaker.New(breaker.Options{})
		n := e.nodes[1]
		// The create lands on node02 but its answer is lost, and node03,
		// after one 500, refuses it for good: the operation must be
		// undone. By then node02 is down.
		n.fn = func(c call) fault {
			if c.Method == "Create" {
				return errAfter
			}
			return down
		}
		e.nodes[2].script = map[string][]fault{"Create": {errBefore, reject}}
		res, err := e.coordinator().Create(t.Context(), "g1")
		if got, want := res.Outcome, Pending; got != want {
			t.Fatalf("outcome=%v (%v), want %v", got, err, want)
		}
		tok, held := n.token("g1")
		if !held || tok != res.Token {
			t.Fatalf("node02 holds %q (%v), want the create's token %s", tok, held, res.Token)
		}
		if got := e.nodes[1].totalCalls(); got == 0 {
			t.Fatalf("no call reached node02")
		}
		if e.cfg.Breaker.Refused("node02") == 0 {
			t.Fatalf("the breaker refused nothing: the test does not test it")
		}
		if got, want := res.Requests, e.nodes.totalCalls(); got != want {
			t.Errorf("result counts %d requests, the nodes saw %d: refused requests are not sent", got, want)
		}

		// Still down: Recover leaves it pending, and node02's record is
		// still there, still in the journal.
		e.mustRecover(Pending)
		if _, held := n.token("g1"); !held || len(e.j.left()) != 1 {
			t.Fatalf("after Recover with node02 down: node02 holds g1=%v, journal %v; want both", held, e.j.left())
		}

		n.heal()
		time.Sleep(e.cfg.Breaker.Options().Cooldown)
		e.mustRecover(RolledBack)
		if got := e.nodes.holders("g1"); len(got) != 0 {
			t.Fatalf("nodes hold %v, want nothing", got)
		}
	})
}

// TestBreakerBlip: a node that refuses a few requests and then answers is
// retried as without a breaker: the create is done, nothing refused.
func TestBreakerBlip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.cfg.Breaker = breaker.New(breaker.Options{})
		e.nodes[1].downFor = 6 // about 0.3 s of backoff: less than the window
		res := e.mustDo(OpCreate, "g1", Done)
		if got := e.cfg.Breaker.Refused("node02"); got != 0 {
			t.Fatalf("the breaker refused %d requests to a node that came back within its window", got)
		}
		if got, want := e.nodes.holders("g1"), all3(res.Token); !maps.Equal(got, want) {
			t.Fatalf("nodes hold %v, want %v", got, want)
		}
	})
}

// TestBreakerNotSentAfterCancel: a request not sent because the caller gave
// up says nothing about the node: it does not count against it.
func TestBreakerNotSentAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		e.cfg.Breaker = breaker.New(breaker.Options{Failures: 1, Window: time.Nanosecond})
		r := e.coordinator().start("g1")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		ev, _, err := r.send(ctx, nil, e.nodes[0], reqCreate, r.token, false)
		if ev != evNotSent || ErrorCode(err) != EUnavailable {
			t.Fatalf("send after cancel = %v, %v; want notSent, unavailable", ev, err)
		}
		if ev, _, err := r.send(t.Context(), nil, e.nodes[0], reqCreate, r.token, false); ev != evApplied {
			t.Fatalf("send = %v, %v; want applied: the breaker opened on the caller's cancel", ev, err)
		}
	})
}

// A node that asks the caller to wait (a store whose tombstones are full:
// EUnavailable with RetryAfter) is up: its refusals never open the
// breaker, so the operation backs off and goes through once it has room,
// instead of giving up as on a node that is down.
func TestBreakerIgnoresAskedWaits(t *testing.T) {
	b := breaker.New(breaker.Options{Failures: 3, Window: time.Second, Cooldown: 2 * time.Second})
	t0 := time.Unix(1e9, 0)
	full := &Error{Code: EUnavailable, Message: "tombstones full", RetryAfter: time.Second, Overloaded: true}
	for i := range 10 {
		now := t0.Add(time.Duration(i) * 200 * time.Millisecond)
		if err := admit(b, "node01", now); err != nil {
			t.Fatalf("request %d refused after asked-for waits: %v", i, err)
		}
		b.Observe("node01", now, unreachable(full))
	}
	down := &Error{Code: EUnavailable, Message: "node01 is down"}
	for i := range 10 {
		now := t0.Add(3*time.Second + time.Duration(i)*200*time.Millisecond)
		if admit(b, "node01", now) != nil {
			return // a node that is down does open it
		}
		b.Observe("node01", now, unreachable(down))
	}
	t.Fatal("a node down never opened the breaker")
}

// TestBreakerRefusalSays: a request the breaker refuses says, in the
// user's words, what the node did and what the last failure was, and
// still matches ErrBreakerOpen and that failure.
func TestBreakerRefusalSays(t *testing.T) {
	b := breaker.New(breaker.Options{Failures: 2, Window: time.Second, Cooldown: 1500 * time.Millisecond})
	t0 := time.Unix(0, 0)
	down := &Error{Code: EUnavailable, Message: "node02 is down (connection refused)"}
	observe(b, "node02", t0, down)
	observe(b, "node02", t0.Add(time.Second), down)
	err := admit(b, "node02", t0.Add(time.Second))
	if got, want := fmt.Sprint(err), "node02 did not answer 2 requests in a row: node02 is down (connection refused); rops stops sending to it for 1.5s, then tries again"; got != want {
		t.Fatalf("refusal=%q, want %q", got, want)
	}
	if !errors.Is(err, ErrBreakerOpen) || !errors.Is(err, down) || ErrorCode(err) != EUnavailable {
		t.Errorf("refusal %v does not match ErrBreakerOpen, the last failure and EUnavailable", err)
	}
}
