package cli

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logFlushInterval is how long a line of serve's log may wait in its
// buffer: short enough to read as live, long enough that a busy server
// writes many access log lines at once.
const logFlushInterval = 100 * time.Millisecond

// bufferedLog is the writer of serve's log. One write(2) per access log
// line was a fifth of a served GET's cost; buffered, a busy server writes
// its lines together, at most an interval after each, and every line is
// out once Close returns. It is safe for concurrent use.
type bufferedLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	err  error // the first write error, kept so that lines stop, not the server
	stop chan struct{}
	done chan struct{}
}

// newBufferedLog returns a bufferedLog writing to w and flushing it every
// interval until Close.
func newBufferedLog(w io.Writer, interval time.Duration) *bufferedLog {
	b := &bufferedLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(interval)
	return b
}

func (b *bufferedLog) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Flush()
		}
	}
}

// Write buffers p. A log line that cannot be written is not the server's
// failure: the error is kept for Close and the line dropped.
func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		_, b.err = b.w.Write(p)
	}
	return len(p), nil
}

// Flush writes out what is buffered, as after a line that must be seen at
// once (where the server listens).
func (b *bufferedLog) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = b.w.Flush()
	}
}

// Close stops the periodic flush, writes out the rest and returns the first
// write error.
func (b *bufferedLog) Close() error {
	close(b.stop)
	<-b.done
	b.Flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
