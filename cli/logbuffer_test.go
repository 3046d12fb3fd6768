package cli

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// signalWriter is a writer that keeps what it is given and says when.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
	err   error
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestBufferedLogHoldsLinesUntilFlush: lines wait in the buffer (one
// write for many) until Flush, and Close writes out the rest.
func TestBufferedLogHoldsLinesUntilFlush(t *testing.T) {
	w := &signalWriter{wrote: make(chan struct{}, 1)}
	b := newBufferedLog(w, time.Hour)
	b.Write([]byte("listening\n"))
	if got := w.String(); got != "" {
		t.Fatalf("written before a flush: %q", got)
	}
	b.Flush()
	b.Write([]byte("GET /v1/group/5\n"))
	if got, want := w.String(), "listening\n"; got != want {
		t.Fatalf("after Flush: %q, want %q", got, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := w.String(), "listening\nGET /v1/group/5\n"; got != want {
		t.Fatalf("after Close: %q, want %q", got, want)
	}
}

// TestBufferedLogFlushesOnItsOwn: a line reaches the writer within the
// interval without anyone flushing.
func TestBufferedLogFlushesOnItsOwn(t *testing.T) {
	w := &signalWriter{wrote: make(chan struct{}, 1)}
	b := newBufferedLog(w, time.Millisecond)
	defer b.Close()
	b.Write([]byte("POST /v1/group\n"))
	select {
	case <-w.wrote:
	case <-t.Context().Done():
		t.Fatal("the line was never flushed")
	}
	if got, want := w.String(), "POST /v1/group\n"; got != want {
		t.Fatalf("flushed %q, want %q", got, want)
	}
}

// TestBufferedLogKeepsTheWriteError: a log that cannot be written drops
// its lines but never fails the server's writes; Close reports why.
func TestBufferedLogKeepsTheWriteError(t *testing.T) {
	full := errors.New("no space left on device")
	w := &signalWriter{wrote: make(chan struct{}, 1), err: full}
	b := newBufferedLog(w, time.Hour)
	b.Write([]byte("a\n"))
	b.Flush()
	if n, err := b.Write([]byte("b\n")); n != 2 || err != nil {
		t.Fatalf("Write after a failed flush = %d, %v; want 2, nil", n, err)
	}
	if err := b.Close(); !errors.Is(err, full) {
		t.Fatalf("Close = %v, want %v", err, full)
	}
}
