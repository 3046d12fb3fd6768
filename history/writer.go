package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Writer writes a history as JSON Lines, one line for each Op, buffered.
// It is safe for concurrent use: lines never interleave. Call Flush at the
// end.
type Writer struct {
	start time.Time

	mu  sync.Mutex
	w   *bufio.Writer
	err error // the first write error: every later Write returns it
}

// NewWriter returns a Writer to w whose history starts now: Now measures
// from here.
func NewWriter(w io.Writer) *Writer {
	return &Writer{start: time.Now(), w: bufio.NewWriter(w)}
}

// Now returns the time since the history's start, on the monotonic clock:
// what Call and Return hold.
func (w *Writer) Now() time.Duration { return time.Since(w.start) }

// opLine and nemesisLine are the two shapes of a line, their fields in the
// order README gives them. A nil Return is written null.
type opLine struct {
	Process int     `json:"process"`
	ID      string  `json:"id"`
	Op      Kind    `json:"op"`
	Outcome Outcome `json:"outcome"`
	Call    int64   `json:"call"`
	Return  *int64  `json:"return"`
	Token   string  `json:"token,omitempty"`
}

type nemesisLine struct {
	Op     Kind   `json:"op"`
	What   string `json:"what"`
	Target string `json:"target,omitempty"`
	Call   int64  `json:"call"`
	Return *int64 `json:"return"`
}

// Marshal returns op as one line of JSON, without the newline. It fails if
// op is not valid (see Validate), so what it writes reads back the same.
func Marshal(op Op) ([]byte, error) {
	if err := op.Validate(); err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", op, err)
	}
	var ret *int64
	if op.Return != NoReturn {
		r := int64(op.Return)
		ret = &r
	}
	if op.Kind == Nemesis {
		return json.Marshal(nemesisLine{Op: op.Kind, What: op.What, Target: op.Target, Call: int64(op.Call), Return: ret})
	}
	return json.Marshal(opLine{Process: op.Process, ID: op.ID, Op: op.Kind, Outcome: op.Outcome, Call: int64(op.Call), Return: ret, Token: op.Token})
}

// Write writes op as one line. It returns an error, and writes nothing, if
// op is not valid; once writing failed, it returns that error.
func (w *Writer) Write(op Op) error {
	b, err := Marshal(op)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
	return w.err
}

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}
