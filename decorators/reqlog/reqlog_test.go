package reqlog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/decorators/reqlog"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/storetest"
)

// statusCause is an error that came with an HTTP status, as the HTTP
// client's and the injected faults' errors do: the log finds the status by
// the method alone, whatever package made the error.
type statusCause int

func (s statusCause) Error() string   { return strconv.Itoa(int(s)) }
func (s statusCause) HTTPStatus() int { return int(s) }

func TestWrap(t *testing.T) {
	const t5, t6 = "1633806680.426599", "1633806862.284902"
	mock := &storetest.FuncNode{
		NodeName: "node01",
		CreateFn: func(_ context.Context, id core.GroupID, _ core.Token) error {
			if id == "6" {
				return &core.Error{Code: core.ETransient, Message: "Timeout due to Random Behavior", Err: statusCause(408)}
			}
			return nil
		},
		DeleteFn: func(_ context.Context, id core.GroupID, token core.Token) error {
			if id == "6" {
				return core.Errorf(core.ENotFound, "No group record found with id '%s' and timestamp '%s'", id, token)
			}
			return nil
		},
		GetFn: func(_ context.Context, id core.GroupID) (core.Record, error) {
			if id == "a b" {
				return core.Record{}, errors.New("boom\nbang")
			}
			return core.Record{ID: id, Token: t5}, nil
		},
		ListFn: func(context.Context, core.GroupID, int) ([]core.Record, error) {
			return []core.Record{{ID: "5", Token: t5}, {ID: "7", Token: t6}}, nil
		},
		CountFn: func(context.Context) (int, error) { return 2, nil },
	}
	var buf bytes.Buffer
	n := reqlog.Wrap(mock, textLog(&buf))
	ctx := context.Background()
	_ = n.Create(ctx, "5", t5)
	_ = n.Create(ctx, "6", t6)
	_ = n.Delete(ctx, "6", t6)
	_ = n.Delete(ctx, "5", "")
	_, _ = n.Get(ctx, "5")
	_, _ = n.List(ctx, "", 1000)
	_, _ = n.Count(ctx)
	_, _ = n.Get(ctx, "a b")
	want := `level=INFO msg=request node=node01 op=create groupId=5 timestamp=1633806680.426599
level=INFO msg=answer node=node01 op=create groupId=5 result=created
level=INFO msg=request node=node01 op=create groupId=6 timestamp=1633806862.284902
level=WARN msg=answer node=node01 op=create groupId=6 status=408 code=transient error="Timeout due to Random Behavior"
level=INFO msg=request node=node01 op=delete groupId=6 timestamp=1633806862.284902
level=WARN msg=answer node=node01 op=delete groupId=6 code=not_found error="No group record found with id '6' and timestamp '1633806862.284902'"
level=INFO msg=request node=node01 op=delete groupId=5
level=INFO msg=answer node=node01 op=delete groupId=5 result=deleted
level=INFO msg=request node=node01 op=get groupId=5
level=INFO msg=answer node=node01 op=get groupId=5 result=found timestamp=1633806680.426599
level=INFO msg=request node=node01 op=list after="" limit=1000
level=INFO msg=answer node=node01 op=list after="" limit=1000 records=2
level=INFO msg=request node=node01 op=count
level=INFO msg=answer node=node01 op=count count=2
level=INFO msg=request node=node01 op=get groupId="a b"
level=WARN msg=answer node=node01 op=get groupId="a b" code=internal error="boom\nbang"
`
	if got := buf.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
	if got, want := n.Name(), "node01"; got != want {
		t.Fatalf("Name()=%q, want %q", got, want)
	}
}

// seededLog returns the log of a seeded single-threaded run.
func seededLog(t *testing.T) string {
	t.Helper()
	node := newNode(t, faults.Faults{ErrorRate: 0.3, AmbiguousRate: 0.1, Jitter: 1000}, seed)
	var buf bytes.Buffer
	n := reqlog.Wrap(node, textLog(&buf))
	for i := range 50 {
		_ = n.Create(context.Background(), id(i%10), core.Token(fmt.Sprintf("1633806680.%06d", i)))
	}
	return buf.String()
}

func TestWrapSeededRunIsReproducible(t *testing.T) {
	a, b := seededLog(t), seededLog(t)
	if a != b {
		t.Fatalf("seed %d logged two different runs:\n%s\n---\n%s", seed, a, b)
	}
	for _, want := range []string{
		" result=created\n",
		" status=500 code=transient error=\"InternalServerError due to Random Behavior\"\n",
		" status=408 code=transient error=\"Timeout due to Random Behavior\"\n",
		" code=exists error=",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("seed %d: log lacks %q:\n%s", seed, want, a)
		}
	}
}

// TestWrapConcurrent checks that nodes sharing one writer never interleave
// or race on it.
func TestWrapConcurrent(t *testing.T) {
	var buf bytes.Buffer // not safe for concurrent use on its own
	log := textLog(&buf)
	var logged []core.Node
	for i := range 3 {
		name := fmt.Sprintf("node%02d", i+1)
		logged = append(logged, reqlog.Wrap(faults.New(name, memory.New(), faults.Options{
			Faults: faults.Faults{ErrorRate: 0.5}, Seed: seed,
		}), log))
	}
	const workers, calls = 8, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				n := logged[(w+i)%len(logged)]
				_ = n.Create(context.Background(), core.GroupID(fmt.Sprintf("%d-%d", w, i)), "1633806680.000001")
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if got, want := len(lines), 2*workers*calls; got != want {
		t.Fatalf("%d lines, want %d", got, want)
	}
	re := regexp.MustCompile(`^level=(INFO msg=request|INFO msg=answer|WARN msg=answer) node=node0[123] op=create groupId=\d+-\d+( timestamp=1633806680\.000001| result=created| status=(500|408) code=transient error="\w+ due to Random Behavior")$`)
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Fatalf("malformed line %q", l)
		}
	}
}
