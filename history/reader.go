package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// MaxLine is the longest line a Reader accepts, in bytes.
const MaxLine = 1 << 20

// LineError is what is wrong with one line of a history.
type LineError struct {
	Line int // 1 first
	Err  error
}

// Error returns the line's number and what is wrong with it.
func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns what is wrong with the line.
func (e *LineError) Unwrap() error { return e.Err }

// Reader reads a history, one Op per line. Blank lines are skipped, and
// fields a line has beyond the format's are ignored, so writers may add
// their own. It is not safe for concurrent use.
type Reader struct {
	s    *bufio.Scanner
	line int
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return &Reader{s: s}
}

// Read returns the next Op, with its Line set. It returns io.EOF at the
// end, a *LineError for a line that is not a valid Op, and any error of
// the underlying reader.
func (r *Reader) Read() (Op, error) {
	for r.s.Scan() {
		r.line++
		b := r.s.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		op, err := Unmarshal(b)
		if err != nil {
			return Op{}, &LineError{Line: r.line, Err: err}
		}
		op.Line = r.line
		return op, nil
	}
	err := r.s.Err()
	switch {
	case errors.Is(err, bufio.ErrTooLong):
		return Op{}, &LineError{Line: r.line + 1, Err: fmt.Errorf("longer than %d bytes", MaxLine)}
	case err != nil:
		return Op{}, err
	}
	return Op{}, io.EOF
}

// ReadAll reads a whole history. It stops at the first line that is not a
// valid Op, and returns its *LineError.
func ReadAll(r io.Reader) ([]Op, error) {
	rd := NewReader(r)
	var ops []Op
	for {
		op, err := rd.Read()
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
}

// rawLine is a line's fields, undecoded, so that each one's error can be
// told in its own words. A field absent from the line is nil; one that is
// null is "null".
type rawLine struct {
	Process json.RawMessage `json:"process"`
	ID      json.RawMessage `json:"id"`
	Op      json.RawMessage `json:"op"`
	Outcome json.RawMessage `json:"outcome"`
	Call    json.RawMessage `json:"call"`
	Return  json.RawMessage `json:"return"`
	Token   json.RawMessage `json:"token"`
	What    json.RawMessage `json:"what"`
	Target  json.RawMessage `json:"target"`
}

// Unmarshal parses one line of a history, without its newline, and
// validates it (see Validate).
func Unmarshal(line []byte) (Op, error) {
	var raw rawLine
	if err := json.Unmarshal(line, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Op{}, fmt.Errorf("not JSON: %v (at byte %d)", err, se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return Op{}, fmt.Errorf("not a JSON object but %s: a line is one object", te.Value)
		}
		return Op{}, fmt.Errorf("not a history line: %v", err)
	}
	var op Op
	var kind string
	var err error
	if kind, err = str("op", raw.Op, true); err != nil {
		return Op{}, err
	}
	op.Kind = Kind(kind)
	if _, ok := outcomes[op.Kind]; !ok && op.Kind != Nemesis {
		return Op{}, Op{Kind: op.Kind}.Validate()
	}
	if op.Kind == Nemesis {
		if raw.Process != nil {
			return Op{}, errors.New(`a nemesis line has no "process": it names its "target"`)
		}
	} else if op.Process, err = processOf(raw.Process); err != nil {
		return Op{}, err
	}
	var outcome string
	if op.ID, err = str("id", raw.ID, false); err != nil {
		return Op{}, err
	}
	if outcome, err = str("outcome", raw.Outcome, false); err != nil {
		return Op{}, err
	}
	op.Outcome = Outcome(outcome)
	if op.Token, err = str("token", raw.Token, false); err != nil {
		return Op{}, err
	}
	if op.What, err = str("what", raw.What, false); err != nil {
		return Op{}, err
	}
	if op.Target, err = str("target", raw.Target, false); err != nil {
		return Op{}, err
	}
	if raw.Call == nil {
		return Op{}, errors.New(`"call" is missing: give nanoseconds since the history's start`)
	}
	if op.Call, err = nanos("call", raw.Call); err != nil {
		return Op{}, err
	}
	switch {
	case raw.Return == nil:
		return Op{}, errors.New(`"return" is missing: give nanoseconds since the history's start, or null if the effect is unknown`)
	case string(raw.Return) == "null":
		op.Return = NoReturn
	default:
		if op.Return, err = nanos("return", raw.Return); err != nil {
			return Op{}, err
		}
	}
	if err := op.Validate(); err != nil {
		return Op{}, err
	}
	return op, nil
}

// str decodes the string field name from raw; an absent field is "",
// unless required.
func str(name string, raw json.RawMessage, required bool) (string, error) {
	if raw == nil {
		if required {
			return "", fmt.Errorf("%q is missing", name)
		}
		return "", nil
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%s %s: want a string", name, raw)
	}
	return s, nil
}

func processOf(raw json.RawMessage) (int, error) {
	if raw == nil {
		return 0, errors.New(`"process" is missing: give the number of the worker or coordinator that ran it`)
	}
	n, err := strconv.ParseInt(string(raw), 10, strconv.IntSize)
	if err != nil {
		return 0, fmt.Errorf("process %s: want an integer", raw)
	}
	return int(n), nil
}

// nanos decodes the time field name: an integer of nanoseconds, not
// negative.
func nanos(name string, raw json.RawMessage) (time.Duration, error) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s %s: want an integer of nanoseconds since the history's start", name, raw)
	case n < 0:
		return 0, fmt.Errorf("%s %d is negative: times are nanoseconds since the history's start", name, n)
	}
	return time.Duration(n), nil
}
