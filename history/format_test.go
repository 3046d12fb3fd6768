package history_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/history"
)

// TestRoundTrip writes one Op of each shape and reads them back.
func TestRoundTrip(t *testing.T) {
	ops := []history.Op{
		{Kind: history.Create, Process: 0, ID: "a", Outcome: history.Done, Call: 0, Return: 10, Token: "1.000001"},
		{Kind: history.Delete, Process: 3, ID: "b c", Outcome: history.Pending, Call: 5, Return: history.NoReturn},
		{Kind: history.Read, Process: -1, ID: `"é\n"`, Outcome: history.Absent, Call: 7, Return: 7},
		{Kind: history.Nemesis, What: "pause", Target: "node02", Call: 1, Return: 20},
		{Kind: history.Nemesis, What: "kill", Call: 30, Return: history.NoReturn},
	}
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	for _, op := range ops {
		if err := w.Write(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := history.ReadAll(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got, want := got[i].Line, i+1; got != want {
			t.Errorf("op %d: Line=%d, want %d", i, got, want)
		}
		got[i].Line = 0
	}
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("read back\n%v\nwant\n%v", got, ops)
	}
}

// TestFormat pins the lines themselves: the format is stable.
func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		op   history.Op
		want string
	}{
		{history.Op{Kind: history.Create, Process: 2, ID: "a", Outcome: history.RolledBack, Call: 100, Return: 250, Token: "1.000001"},
			`{"process":2,"id":"a","op":"create","outcome":"rolled_back","call":100,"return":250,"token":"1.000001"}`},
		{history.Op{Kind: history.Delete, Process: 0, ID: "a", Outcome: history.Pending, Call: 100, Return: history.NoReturn},
			`{"process":0,"id":"a","op":"delete","outcome":"pending","call":100,"return":null}`},
		{history.Op{Kind: history.Read, Process: 1, ID: "a", Outcome: history.Present, Call: 0, Return: 0},
			`{"process":1,"id":"a","op":"read","outcome":"present","call":0,"return":0}`},
		{history.Op{Kind: history.Nemesis, What: "pause", Target: "node02", Call: 5, Return: 9},
			`{"op":"nemesis","what":"pause","target":"node02","call":5,"return":9}`},
	} {
		b, err := history.Marshal(tc.op)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); got != tc.want {
			t.Errorf("Marshal(%v)\n got %s\nwant %s", tc.op, got, tc.want)
		}
	}
}

// TestReadErrors checks that each kind of bad line is refused with its
// line number and what is wrong, in the format's terms.
func TestReadErrors(t *testing.T) {
	const good = `{"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":10}` + "\n"
	for _, tc := range []struct {
		name, line, want string
	}{
		{"not json", `{"process":0,`, `line 3: not JSON: unexpected end of JSON input`},
		{"garbage", `hello`, `line 3: not JSON: invalid character 'h' looking for beginning of value (at byte 1)`},
		{"array", `[1,2]`, `line 3: not a JSON object but array: a line is one object`},
		{"no op", `{"process":0,"id":"a","outcome":"done","call":0,"return":1}`, `line 3: "op" is missing`},
		{"bad op", `{"process":0,"id":"a","op":"update","outcome":"done","call":0,"return":1}`, `line 3: op "update": want create, delete, read or nemesis`},
		{"op not string", `{"process":0,"id":"a","op":1,"outcome":"done","call":0,"return":1}`, `line 3: op 1: want a string`},
		{"no process", `{"id":"a","op":"create","outcome":"done","call":0,"return":1}`, `line 3: "process" is missing`},
		{"process float", `{"process":1.5,"id":"a","op":"create","outcome":"done","call":0,"return":1}`, `line 3: process 1.5: want an integer`},
		{"no id", `{"process":0,"op":"read","outcome":"absent","call":0,"return":1}`, `line 3: "id" is missing: a read names the id it reads`},
		{"empty id", `{"process":0,"id":"","op":"delete","outcome":"done","call":0,"return":1}`, `line 3: "id" is missing: a delete names the id it deletes`},
		{"id number", `{"process":0,"id":7,"op":"delete","outcome":"done","call":0,"return":1}`, `line 3: id 7: want a string`},
		{"no outcome", `{"process":0,"id":"a","op":"create","call":0,"return":1}`, `line 3: "outcome" is missing: a create ends done, unchanged, rolled_back or pending`},
		{"read outcome", `{"process":0,"id":"a","op":"read","outcome":"done","call":0,"return":1}`, `line 3: outcome "done": a read ends present or absent`},
		{"create outcome", `{"process":0,"id":"a","op":"create","outcome":"present","call":0,"return":1}`, `line 3: outcome "present": a create ends done, unchanged, rolled_back or pending`},
		{"no call", `{"process":0,"id":"a","op":"create","outcome":"done","return":1}`, `line 3: "call" is missing`},
		{"call string", `{"process":0,"id":"a","op":"create","outcome":"done","call":"5","return":9}`, `line 3: call "5": want an integer of nanoseconds`},
		{"call exp", `{"process":0,"id":"a","op":"create","outcome":"done","call":1e3,"return":9}`, `line 3: call 1e3: want an integer of nanoseconds`},
		{"call negative", `{"process":0,"id":"a","op":"create","outcome":"done","call":-5,"return":9}`, `line 3: call -5 is negative`},
		{"call huge", `{"process":0,"id":"a","op":"create","outcome":"done","call":99999999999999999999,"return":9}`, `line 3: call 99999999999999999999: want an integer`},
		{"no return", `{"process":0,"id":"a","op":"create","outcome":"done","call":0}`, `line 3: "return" is missing: give nanoseconds since the history's start, or null if the effect is unknown`},
		{"return -1", `{"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":-1}`, `line 3: return -1 is negative`},
		{"return before call", `{"process":0,"id":"a","op":"create","outcome":"done","call":10,"return":9}`, `line 3: return 9 is before call 10`},
		{"done null", `{"process":0,"id":"a","op":"create","outcome":"done","call":10,"return":null}`, `line 3: "return" is null, but the create ended done: only a pending operation has no return`},
		{"read null", `{"process":0,"id":"a","op":"read","outcome":"absent","call":10,"return":null}`, `line 3: "return" is null, but the read ended absent`},
		{"pending returned", `{"process":0,"id":"a","op":"delete","outcome":"pending","call":10,"return":20}`, `line 3: return 20 on a pending delete: its effect is unknown, so "return" is null`},
		{"what on op", `{"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":1,"what":"kill"}`, `line 3: "what" and "target" are for nemesis lines, not a create`},
		{"nemesis no what", `{"op":"nemesis","target":"node01","call":0,"return":1}`, `line 3: "what" is missing`},
		{"nemesis process", `{"op":"nemesis","what":"kill","process":2,"call":0,"return":1}`, `line 3: a nemesis line has no "process"`},
		{"nemesis id", `{"op":"nemesis","what":"kill","id":"a","call":0,"return":1}`, `line 3: a nemesis line has no "process", "id", "outcome" or "token"`},
		{"token number", `{"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":1,"token":1.5}`, `line 3: token 1.5: want a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good + "\n" + tc.line + "\n" + good
			_, err := history.ReadAll(strings.NewReader(in))
			var le *history.LineError
			if !errors.As(err, &le) {
				t.Fatalf("ReadAll: %v, want a *LineError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("ReadAll:\n got %v\nwant %s...", err, tc.want)
			}
		})
	}
}

// TestReadLenient: blank lines, CRLF and fields of a writer's own are
// allowed.
func TestReadLenient(t *testing.T) {
	in := "\n" + `{"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":10,"node_ms":[1,2],"error":null}` + "\r\n  \n" +
		`{"op":"nemesis","what":"late","call":3,"return":null,"seed":42}`
	ops, err := history.ReadAll(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(ops), 2; got != want {
		t.Fatalf("%d ops, want %d", got, want)
	}
	if got, want := ops[0].Line, 2; got != want {
		t.Errorf("first op on line %d, want %d", got, want)
	}
	if got, want := ops[1].Line, 4; got != want {
		t.Errorf("second op on line %d, want %d", got, want)
	}
}

func TestReadLongLine(t *testing.T) {
	in := `{"process":0,"id":"a","op":"read","outcome":"absent","call":0,"return":1}` + "\n" +
		`{"process":0,"id":"` + strings.Repeat("x", history.MaxLine) + `"}`
	_, err := history.ReadAll(strings.NewReader(in))
	if got, want := fmt.Sprint(err), fmt.Sprintf("line 2: longer than %d bytes", history.MaxLine); got != want {
		t.Fatalf("ReadAll: %s, want %s", got, want)
	}
}

// TestWriteInvalid: a Writer refuses an Op that would not read back.
func TestWriteInvalid(t *testing.T) {
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	for _, op := range []history.Op{
		{Kind: history.Create, ID: "a", Outcome: history.Pending, Call: 1, Return: 2},
		{Kind: history.Create, ID: "a", Outcome: history.Done, Call: 1, Return: history.NoReturn},
		{Kind: history.Read, ID: "\xff", Outcome: history.Absent},
		{Kind: history.Nemesis, What: "kill", Process: 1},
		{Kind: "update", ID: "a"},
	} {
		if err := w.Write(op); err == nil {
			t.Errorf("Write(%v) = nil, want an error", op)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %q", buf.String())
	}
}

// TestWriterConcurrent writes from many goroutines: every line is whole.
func TestWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for i := range 500 {
				call := w.Now()
				op := history.Op{Kind: history.Create, Process: p, ID: fmt.Sprintf("id-%d-%d", p, i), Outcome: history.Done, Call: call, Return: w.Now()}
				if err := w.Write(op); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	ops, err := history.ReadAll(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(ops), 8*500; got != want {
		t.Fatalf("%d ops, want %d", got, want)
	}
}

// TestWriterError: a failed write is returned by every later call.
func TestWriterError(t *testing.T) {
	w := history.NewWriter(failWriter{})
	op := history.Op{Kind: history.Read, ID: "a", Outcome: history.Absent}
	for range 10000 { // past the buffer
		if err := w.Write(op); err != nil {
			break
		}
	}
	if err := w.Flush(); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("Flush: %v, want the write's error", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

// FuzzReadAll: any input is read without panicking, and what is accepted
// writes back to what reads the same, and can be verified.
func FuzzReadAll(f *testing.F) {
	f.Add([]byte(`{"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":10,"token":"1.5"}
{"process":1,"id":"a","op":"read","outcome":"present","call":11,"return":12}
{"op":"nemesis","what":"pause","target":"node01","call":0,"return":null}
`))
	f.Add([]byte(`{"process":0,"id":"\u00e9\ud800","op":"delete","outcome":"pending","call":3,"return":null}`))
	f.Add([]byte(`{"process":0,"id":"a","op":"read","outcome":"absent","call":1,"return":0}`))
	f.Add([]byte("\n\r\n{}\n[]\nnull"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := history.ReadAll(bytes.NewReader(data))
		if err != nil {
			var le *history.LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("ReadAll: %v, want a *LineError", err)
			}
			return
		}
		var buf bytes.Buffer
		w := history.NewWriter(&buf)
		for i := range ops {
			if err := w.Write(ops[i]); err != nil {
				t.Fatalf("an op read cannot be written: %v", err)
			}
			ops[i].Line = 0
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		again, err := history.ReadAll(&buf)
		if err != nil {
			t.Fatalf("what was written does not read: %v\n%s", err, buf.Bytes())
		}
		for i := range again {
			again[i].Line = 0
		}
		if len(ops) != len(again) || len(ops) > 0 && !reflect.DeepEqual(ops, again) {
			t.Fatalf("round trip\n got %v\nwant %v", again, ops)
		}
		if len(ops) <= 64 {
			if _, err := history.Verify(ops); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		}
	})
}
