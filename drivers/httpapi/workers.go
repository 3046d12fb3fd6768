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
// 15% of a server's CPU. A chain given to run never waits behind
// another: it goes to a worker that is idle, or to a new one. A worker
// that finds no work for workerIdle ends, so an idle server holds none,
// and every worker ends once idle after stop.
type workers struct {
	work     chan *chainRun
	done     chan struct{}
	stopOnce sync.Once
}

func newWorkers() *workers { return &workers{work: make(chan *chainRun), done: make(chan struct{})} }

// run runs c on a worker of its own. A chainRun, not a func, so that a
// batch's chains cost one allocation, not a closure each.
func (w *workers) run(c *chainRun) {
	select {
	case w.work <- c:
	default:
		go w.loop(c)
	}
}

func (w *workers) loop(c *chainRun) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		c.run()
		idle.Reset(workerIdle)
		select {
		case c = <-w.work:
		case <-idle.C:
			return
		case <-w.done:
			return
		}
	}
}

// stop ends the idle workers now, and the busy ones when their work is done.
func (w *workers) stop() { w.stopOnce.Do(func() { close(w.done) }) }
