package httpapi

import (
	"sync"
	"time"
)

// workerIdle is how long a batch worker waits for more work before it ends.
const workerIdle = 100 * time.Millisecond

// workers runs the chains of a server's batch items on goroutines kept
// between batches. A goroutine started per chain grew its stack through
// the handler's calls every time: in a job at 0.2, runtime.morestack was
// 15% of a server's CPU. A function given to run never waits behind
// another: it goes to a worker that is idle, or to a new one. A worker
// that finds no work for workerIdle ends, so an idle server holds none,
// and every worker ends once idle after stop.
type workers struct {
	work     chan func()
	done     chan struct{}
	stopOnce sync.Once
}

func newWorkers() *workers { return &workers{work: make(chan func()), done: make(chan struct{})} }

// run calls f on a worker of its own.
func (w *workers) run(f func()) {
	select {
	case w.work <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.work:
		case <-idle.C:
			return
		case <-w.done:
			return
		}
	}
}

// stop ends the idle workers now, and the busy ones when their work is done.
func (w *workers) stop() { w.stopOnce.Do(func() { close(w.done) }) }
