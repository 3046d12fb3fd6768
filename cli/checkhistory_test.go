package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/history"
	"github.com/reliable-ops/rops/plugins"
)

// liar is a node over a memory store, slowed down so that a check's
// reader reads while the workload runs, whose first read outside an
// operation (a read with no fence: a reading) answers the opposite of what
// it holds. Operations are served truly, so the check's own table finds
// nothing wrong: only the history shows the lie.
type liar struct {
	name string
	core.Store
	lied atomic.Bool
}

func init() {
	plugins.Register("liar", func(_ context.Context, u *url.URL, _ plugins.Env) (core.Node, io.Closer, error) {
		return &liar{name: u.Host, Store: memory.New()}, nil, nil
	})
}

func (l *liar) Name() string { return l.name }

func (l *liar) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	time.Sleep(time.Millisecond)
	return l.Store.Create(ctx, id, token)
}

func (l *liar) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	time.Sleep(time.Millisecond)
	rec, err := l.Store.Get(ctx, id)
	if core.FenceOf(ctx) != "" || l.lied.Swap(true) {
		return rec, err
	}
	if err == nil {
		return core.Record{}, core.ErrNotFound
	}
	return core.Record{ID: id, Token: "1.000001"}, nil
}

// runCheck runs rops check on three liars and returns its exit code and
// output.
func runCheck(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "liars.json")
	if err := os.WriteFile(cfg, []byte(`{"targets": {"liars": {"nodes": ["liar://node01", "liar://node02", "liar://node03"]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args = append([]string{"--data", filepath.Join(dir, "data"), "--config", cfg, "--target", "liars", "--seed", "1"}, args...)
	code := Run(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

// TestCheckFailsWhenNotLinearizable: a reading that contradicts the
// operations before it fails the check (exit 3) though its table finds
// nothing lost, unexpected or divergent, naming the first operation that
// cannot be explained: the reading.
func TestCheckFailsWhenNotLinearizable(t *testing.T) {
	code, out, errOut := runCheck(t, "check", "--ops", "300")
	if got, want := code, ExitInconsistent; got != want {
		t.Fatalf("exit code %d, want %d\n%s%s", got, want, out, errOut)
	}
	for _, want := range []string{
		"\n  lost             0\n",
		"\n  unexpected       0\n",
		"\n  divergent        0\n",
		"\n  linearizable     NO: 1 id cannot be explained (",
		"\nfirst that cannot be explained: line ",
		"\nFAIL: the history is not linearizable\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The reader's process is the one after the workers'.
	if want := fmt.Sprintf("process %d read rops-check-1-", min(core.DefaultConcurrency, 64)); !strings.Contains(out, want) {
		t.Errorf("the first that cannot be explained is not the reader's reading (%q):\n%s", want, out)
	}

	code, out, _ = runCheck(t, "-o", "json", "check", "--ops", "300")
	var got checkJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if code != ExitInconsistent || got.OK || got.Linearizable || len(got.History.Failed) != 1 || got.History.First == nil || got.History.First.Line == 0 {
		t.Errorf("-o json: exit %d, %+v; want exit 3, ok and linearizable false, one failed id and the first's line", code, got)
	}
}

// TestCheckReadings: a reading is written as what every node says; nodes
// that disagree as two reads, present and absent, unless the id is
// pending, when nothing is written.
func TestCheckReadings(t *testing.T) {
	var nodes []core.Node
	for _, name := range []string{"node01", "node02", "node03"} {
		nodes = append(nodes, &liar{name: name, Store: memory.New()})
	}
	c, err := core.New(core.Config{Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		held    int
		pending bool
		want    []history.Outcome
	}{
		{"none", 0, false, []history.Outcome{history.Absent}},
		{"all", 3, false, []history.Outcome{history.Present}},
		{"some", 1, false, []history.Outcome{history.Present, history.Absent}},
		{"some, pending", 2, true, nil},
		{"all, pending", 3, true, []history.Outcome{history.Present}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			r := &checkRun{c: c, hist: history.NewWriter(&b)}
			r.recordReading(7, "a", tc.held, tc.pending, 10, 20)
			if err := r.hist.Flush(); err != nil {
				t.Fatal(err)
			}
			ops, err := history.ReadAll(&b)
			if err != nil {
				t.Fatal(err)
			}
			var got []history.Outcome
			for _, op := range ops {
				if op.Kind != history.Read || op.Process != 7 || op.ID != "a" || op.Call != 10 || op.Return != 20 {
					t.Errorf("reading %v, want a read of a by process 7 from 10ns to 20ns", op)
				}
				got = append(got, op.Outcome)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("held by %d of 3 (pending %v): reads %v, want %v", tc.held, tc.pending, got, tc.want)
			}
		})
	}
}

// TestVerifyHistoryBatches: a history judged in batches of ids gives the
// verdict of the whole: operations, ids, windows, the ids that cannot be
// explained and the first of them.
func TestVerifyHistoryBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := history.NewWriter(f)
	w.Write(history.Op{Kind: history.Nemesis, What: "pause", Target: "node02", Call: 5, Return: 500})
	at := time.Duration(0)
	for i := range 40 {
		id := fmt.Sprintf("id-%02d", i)
		for k := range 6 {
			at += 10
			op := history.Op{Kind: history.Create, Process: i % 3, ID: id, Outcome: history.Done, Call: at, Return: at + 5}
			switch k % 3 {
			case 1:
				op.Kind, op.Outcome = history.Read, history.Present
			case 2:
				op.Kind = history.Delete
			}
			// Ids 7 and 23 are read absent after a done create.
			if k == 1 && i == 7 || k == 4 && i == 23 {
				op.Outcome = history.Absent
			}
			w.Write(op)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	whole, err := verifyHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func(n int) { verifyBatch = n }(verifyBatch)
	verifyBatch = 25 // four ids a batch
	batched, err := verifyHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if whole.all == nil || batched.all != nil {
		t.Errorf("the whole history was read at once: %v in one batch, %v in batches; want true, false", whole.all != nil, batched.all != nil)
	}
	for _, v := range []verdict{whole, batched} {
		var failed []string
		for _, f := range v.failed {
			failed = append(failed, f.ID)
		}
		if v.ops != 240 || v.ids != 40 || v.nemeses != 1 || v.ok() || v.res.OK() || strings.Join(failed, ",") != "id-07,id-23" || v.first.ID != "id-07" || v.res.Failures[0].ID != "id-07" {
			t.Errorf("verdict: %d ops, %d ids, %d windows, failed %v, first %v; want 240, 40, 1, [id-07 id-23], id-07", v.ops, v.ids, v.nemeses, failed, v.first)
		}
	}
}
