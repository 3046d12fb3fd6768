package pool

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// recorder is a Gatherer's send that records its batches and, while hold
// is open, blocks in each until a value is sent on it.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	hold    chan struct{}
}

func (r *recorder) send(b []int) {
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(b))
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
}

func (r *recorder) sent() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// TestGathererGroupsWhileOneIsOnItsWay: a call to an idle Gatherer leaves
// alone and at once; the calls made while its batch is on the way leave
// together in the next, at most limit at a time.
func TestGathererGroupsWhileOneIsOnItsWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{hold: make(chan struct{})}
		g := NewGatherer(r.send, func() int { return 4 })
		var wg sync.WaitGroup
		do := func(v int) {
			wg.Go(func() {
				if onTheWay, err := g.Do(context.Background(), v); onTheWay || err != nil {
					t.Errorf("Do(%d) = %v, %v; want false, nil", v, onTheWay, err)
				}
			})
		}
		do(0)
		synctest.Wait()
		if got := r.sent(); len(got) != 1 || !slices.Equal(got[0], []int{0}) {
			t.Fatalf("batches sent after one call to an idle gatherer = %v, want [[0]]", got)
		}
		for v := 1; v <= 6; v++ {
			do(v)
		}
		synctest.Wait()
		close(r.hold)
		wg.Wait()
		got := r.sent()
		if len(got) != 3 || len(got[1]) != 4 || len(got[2]) != 2 {
			t.Fatalf("batches = %v, want [0], then the six calls made meanwhile as four and two", got)
		}
		all := slices.Concat(got[1], got[2])
		slices.Sort(all)
		if !slices.Equal(all, []int{1, 2, 3, 4, 5, 6}) {
			t.Errorf("the later batches carried %v, want 1 to 6 once each", all)
		}
	})
}

// TestGathererGivesUp: a caller whose context ends while its call waits
// takes it out (it is never sent); one whose call is on its way learns so.
func TestGathererGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{hold: make(chan struct{})}
		g := NewGatherer(r.send, func() int { return 10 })
		ctx0, cancel0 := context.WithCancel(context.Background())
		ctx1, cancel1 := context.WithCancel(context.Background())
		type result struct {
			onTheWay bool
			err      error
		}
		res0, res1 := make(chan result, 1), make(chan result, 1)
		go func() { w, err := g.Do(ctx0, 0); res0 <- result{w, err} }()
		synctest.Wait() // 0 is on its way, held
		go func() { w, err := g.Do(ctx1, 1); res1 <- result{w, err} }()
		synctest.Wait() // 1 waits for the next batch
		if n := g.Waiting(); n != 1 {
			t.Errorf("Waiting() = %d with one call behind the batch on its way, want 1", n)
		}
		cancel1()
		if got := <-res1; got.onTheWay || !errors.Is(got.err, context.Canceled) {
			t.Errorf("a waiting call given up: Do = %v, %v; want false, context.Canceled", got.onTheWay, got.err)
		}
		if n := g.Waiting(); n != 0 {
			t.Errorf("Waiting() = %d after the waiting call was given up, want 0", n)
		}
		cancel0()
		if got := <-res0; !got.onTheWay || !errors.Is(got.err, context.Canceled) {
			t.Errorf("a call on its way given up: Do = %v, %v; want true, context.Canceled", got.onTheWay, got.err)
		}
		close(r.hold)
		synctest.Wait()
		if got := r.sent(); len(got) != 1 {
			t.Errorf("batches = %v, want only [0]: the call given up while waiting must not be sent", got)
		}
		if _, err := g.Do(ctx1, 2); !errors.Is(err, context.Canceled) {
			t.Errorf("Do with an ended context = %v, want context.Canceled", err)
		}
	})
}
