package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reliable-ops/rops/core/breaker"
)

// slowNode is a fakeNode whose first failures calls of each method take
// took and then fail with an error that carries no code (a node's bug, a
// decoding failure: nothing says what happened). It records when each call
// arrived, by method.
type slowNode struct {
	*fakeNode
	took     time.Duration
	failures int

	mu      sync.Mutex
	arrived map[string][]time.Time
}

func (n *slowNode) Unwrap() Node { return n.fakeNode }

// fail records a call of method and, for the first failures of them,
// waits took and fails.
func (n *slowNode) fail(ctx context.Context, method string) error {
	n.mu.Lock()
	n.arrived[method] = append(n.arrived[method], time.Now())
	k := len(n.arrived[method])
	n.mu.Unlock()
	if k > n.failures {
		return nil
	}
	select {
	case <-time.After(n.took): // the node's own latency, on the bubble's clock
	case <-ctx.Done():
		return ctx.Err()
	}
	return fmt.Errorf("%s: %s: unreadable answer", n.name, method)
}

func (n *slowNode) Create(ctx context.Context, id GroupID, tok Token) error {
	if err := n.fail(ctx, "Create"); err != nil {
		return err
	}
	return n.fakeNode.Create(ctx, id, tok)
}

func (n *slowNode) Get(ctx context.Context, id GroupID) (Record, error) {
	if err := n.fail(ctx, "Get"); err != nil {
		return Record{}, err
	}
	return n.fakeNode.Get(ctx, id)
}

func (n *slowNode) List(ctx context.Context, after GroupID, limit int) ([]Record, error) {
	if err := n.fail(ctx, "List"); err != nil {
		return nil, err
	}
	return n.fakeNode.List(ctx, after, limit)
}

func (n *slowNode) Count(ctx context.Context) (int, error) {
	if err := n.fail(ctx, "Count"); err != nil {
		return 0, err
	}
	return n.fakeNode.Count(ctx)
}

// TestOneRetryRule: every request rops sends, whoever sends it, is
// retried under one rule: an answer without a code is retried (it may
// hide an applied write, or be a blip), and never sooner than the failed
// request took (pace). Stats, Holders and Recover's reads once had loops
// of their own that retried no uncoded error and did not pace.
func TestOneRetryRule(t *testing.T) {
	const took = 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		method string
		run    func(ctx context.Context, e *env) error
	}{
		{"create", "Create", func(ctx context.Context, e *env) error {
			_, err := e.coordinator().Create(ctx, gid)
			return err
		}},
		{"recover reads", "Get", func(ctx context.Context, e *env) error {
			e.j.intents = append(e.j.intents, Intent{Op: OpCreate, ID: gid, Token: "1.000001", Nodes: allNodes})
			results, err := e.coordinator().Recover(ctx, 1)
			if err == nil && (len(results) != 1 || results[0].Outcome != RolledBack) {
				err = fmt.Errorf("recover: %+v, want one rolled back", results)
			}
			return err
		}},
		{"holders", "Get", func(ctx context.Context, e *env) error {
			_, err := e.coordinator().Holders(ctx, gid)
			return err
		}},
		{"stats listing", "List", func(ctx context.Context, e *env) error {
			_, err := e.coordinator().Stats(ctx, StatsOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				slow := &slowNode{fakeNode: e.nodes[0], took: took, failures: 2, arrived: map[string][]time.Time{}}
				e.cfg.Nodes[0] = slow
				if err := tc.run(t.Context(), e); err != nil {
					t.Fatalf("%v: the node answered on its third call, want success", err)
				}
				checkPaced(t, slow, tc.method, took)
			})
		})
	}
	t.Run("stats counts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 3)
			slow := &slowNode{fakeNode: e.nodes[0], took: took, failures: 2, arrived: map[string][]time.Time{}}
			e.cfg.Nodes[0] = slow
			r := &opRun{c: e.coordinator()}
			if _, err := r.counts(t.Context()); err != nil {
				t.Fatalf("%v: the node answered on its third call, want success", err)
			}
			checkPaced(t, slow, "Count", took)
		})
	})
}

// checkPaced fails t unless node's calls of method came 3 times, each
// retry at least 2*took after the one before: the failed call's time, then
// at least as long again.
func checkPaced(t *testing.T, node *slowNode, method string, took time.Duration) {
	t.Helper()
	node.mu.Lock()
	defer node.mu.Unlock()
	at := node.arrived[method]
	if len(at) != 3 {
		t.Fatalf("%s came %d times, want 3: two uncoded failures retried, then the answer", method, len(at))
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 2*took {
			t.Errorf("%s attempt %d came %v after the one before, which took %v: want at least %v", method, i+1, gap, took, 2*took)
		}
	}
}

// TestEveryRequestAsksTheBreaker: with node02 down and its breaker open,
// Stats and Holders give up on it at once, sending nothing, as operations
// do; they once bypassed the breaker and retried a down node until their
// retries ran out.
func TestEveryRequestAsksTheBreaker(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, c *Coordinator) error
	}{
		{"holders", func(ctx context.Context, c *Coordinator) error { _, err := c.Holders(ctx, gid); return err }},
		{"stats", func(ctx context.Context, c *Coordinator) error { _, err := c.Stats(ctx, StatsOptions{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 3)
				e.cfg.Breaker = breaker.New(breaker.Options{})
				e.nodes[1].down = true
				c := e.coordinator()
				// Operations open node02's breaker.
				for i := range 5 {
					c.Create(t.Context(), GroupID(fmt.Sprint("open", i)))
				}
				before := e.nodes[1].totalCalls()
				err := tc.run(t.Context(), c)
				if !errors.Is(err, ErrBreakerOpen) {
					t.Fatalf("err=%v, want the breaker's refusal", err)
				}
				if sent := e.nodes[1].totalCalls() - before; sent != 0 {
					t.Errorf("%d requests sent to node02 past an open breaker, want none", sent)
				}
			})
		})
	}
}

// TestRetryQuickWhileTheNodeAnswers: a failure that is no sign of load is
// retried after DefaultFirstRetry while the node answers other requests
// (its answers' count moves while the request is out), whatever the
// backoff says; once the node answers nothing else, or the failure is an
// overload signal, the backoff's delays come back. The backoff still
// counts every retry. Without the quick path a job at 0.2 waited out 10,
// 20, 40 ms... for the few ids that failed several times in a row on a
// node that answered thousands of others meanwhile: its tail.
func TestRetryQuickWhileTheNodeAnswers(t *testing.T) {
	transient := &Error{Code: ETransient, Message: "node01: 500"}
	overloaded := &Error{Code: ETransient, Message: "node01: 429", Overloaded: true}
	for _, tc := range []struct {
		name   string
		others bool // the node answers another request while each is out
		err    error
		want   []time.Duration // the waits between the attempts, as many as the backoff allows
	}{
		{"a 500 while the node answers others", true, transient, ms(1, 1, 1, 1)},
		{"a 500 while the node answers nothing else", false, transient, ms(1, 10, 20, 40)},
		{"an overload signal while the node answers others", true, overloaded, ms(10, 10, 20, 40)},
		// An undo's backoff has no limit: past quickRetries quick ones,
		// its delays come back (the backoff went on counting).
		{"a 500 on every retry while the node answers others", true, transient,
			append(ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), ms(500, 500)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var answers atomic.Uint64
				var at []time.Time
				newBackoff := func() Backoff {
					return QuickFirst(Exponential(DefaultBackoffBase, DefaultBackoffCap, len(tc.want)-1, nil))
				}
				_, err := retry(t.Context(), SystemClock{}, &answers, newBackoff, func(ctx context.Context, attempt int) (struct{}, error) {
					at = append(at, time.Now())
					if tc.others {
						answers.Add(1)
					}
					return struct{}{}, retryable(tc.err)
				})
				if _, ok := errors.AsType[*gaveUp](err); !ok {
					t.Fatalf("err=%v, want the retries exhausted: the backoff counts quick retries too", err)
				}
				var got []time.Duration
				for i := 1; i < len(at); i++ {
					got = append(got, at[i].Sub(at[i-1]))
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("waits %v, want %v", got, tc.want)
				}
			})
		})
	}
}

// TestAnswersCounted: a node's answers count what it took and answered,
// not what never reached it nor a failure that says nothing.
func TestAnswersCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		script("node02", "Create", errBefore, down)(e)
		c := e.coordinator()
		if _, err := c.Create(t.Context(), gid); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Create(t.Context(), gid); err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes() {
			// The first Create's, and the second's: exists, for each node.
			if got := c.answered(n).Load(); got != 2 {
				t.Errorf("%s answered %d, want 2: a 500 and a node down are no answers", n.Name(), got)
			}
		}
		if got := c.answered(newFakeNode("node09")); got != nil {
			t.Errorf("a node not the coordinator's has a count (%v), want none", got)
		}
	})
}
