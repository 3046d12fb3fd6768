package cli

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// signalWriter is a writer that keeps what it is given, each write apart,
// and says when.
type signalWriter struct {
	mu     sync.Mutex
	writes []string
	wrote  chan struct{}
	err    error
}

func newSignalWriter() *signalWriter { return &signalWriter{wrote: make(chan struct{}, 1)} }

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.writes = append(w.writes, string(p))
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Writes returns what each write was given, in order.
func (w *signalWriter) Writes() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func (w *signalWriter) String() string { return strings.Join(w.Writes(), "") }

// TestBufferedLogHoldsLinesUntilSync: lines wait in the buffer (one
// write for many) until Sync, and Stop writes out the rest.
func TestBufferedLogHoldsLinesUntilSync(t *testing.T) {
	w := newSignalWriter()
	b := newBufferedLog(w, time.Hour)
	b.Write([]byte("listening\n"))
	if got := w.String(); got != "" {
		t.Fatalf("written before a flush: %q", got)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("GET /v1/group/5\n"))
	if got, want := w.String(), "listening\n"; got != want {
		t.Fatalf("after Sync: %q, want %q", got, want)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := w.String(), "listening\nGET /v1/group/5\n"; got != want {
		t.Fatalf("after Stop: %q, want %q", got, want)
	}
}

// TestBufferedLogFlushesOnItsOwn: a line reaches the writer within the
// interval without anyone flushing.
func TestBufferedLogFlushesOnItsOwn(t *testing.T) {
	w := newSignalWriter()
	b := newBufferedLog(w, time.Millisecond)
	defer b.Stop()
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

// TestBufferedLogHoldsLittleAndWholeLines: a burst of lines bigger than
// the buffer is written out as it comes, never more than 64 KiB held,
// and each write ends at the end of a line, so that nothing else writing
// to stderr lands inside one.
func TestBufferedLogHoldsLittleAndWholeLines(t *testing.T) {
	w := newSignalWriter()
	b := newBufferedLog(w, time.Hour)
	line := strings.Repeat("x", 99) + "\n"
	const lines = 1000
	for range lines {
		b.Write([]byte(line))
	}
	if held := lines*len(line) - len(w.String()); held > 64<<10 {
		t.Errorf("%d bytes held before a flush, want at most 64 KiB", held)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	for i, p := range w.Writes() {
		if !strings.HasSuffix(p, "\n") {
			t.Errorf("write %d of %d bytes ends inside a line", i, len(p))
		}
	}
	if got, want := w.String(), strings.Repeat(line, lines); got != want {
		t.Errorf("wrote %d bytes, want the %d lines (%d bytes)", len(got), lines, len(want))
	}
}

// TestBufferedLogKeepsTheWriteError: a log that cannot be written drops
// its lines, and Stop reports why.
func TestBufferedLogKeepsTheWriteError(t *testing.T) {
	full := errors.New("no space left on device")
	w := newSignalWriter()
	w.err = full
	b := newBufferedLog(w, time.Hour)
	b.Write([]byte("a\n"))
	if err := b.Sync(); !errors.Is(err, full) {
		t.Fatalf("Sync = %v, want %v", err, full)
	}
	w.mu.Lock()
	w.err = nil // the device has room again: the log stays dropped
	w.mu.Unlock()
	b.Write([]byte("b\n"))
	if err := b.Stop(); !errors.Is(err, full) {
		t.Fatalf("Stop = %v, want %v", err, full)
	}
	if got := w.String(); got != "" {
		t.Errorf("wrote %q after the log failed", got)
	}
}
