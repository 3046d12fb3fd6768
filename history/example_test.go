package history_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/reliable-ops/rops/history"
)

// A history is written one line per operation, as it ends, and judged
// from outside: here a read finds absent an id that a create reported
// done, and nothing deleted it.
func Example() {
	w := history.NewWriter(os.Stdout)
	w.Write(history.Op{Kind: history.Create, Process: 0, ID: "a", Outcome: history.Done, Call: 0, Return: 1500, Token: "1.000001"})
	w.Write(history.Op{Kind: history.Delete, Process: 1, ID: "b", Outcome: history.Pending, Call: 200, Return: history.NoReturn})
	w.Write(history.Op{Kind: history.Read, Process: 1, ID: "a", Outcome: history.Absent, Call: 2000, Return: 2600})
	w.Flush()

	ops, err := history.ReadAll(strings.NewReader(`{"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":1500,"token":"1.000001"}
{"process":1,"id":"b","op":"delete","outcome":"pending","call":200,"return":null}
{"process":1,"id":"a","op":"read","outcome":"absent","call":2000,"return":2600}
`))
	if err != nil {
		panic(err)
	}
	res, err := history.Verify(ops)
	if err != nil {
		panic(err)
	}
	f := res.Failures[0]
	fmt.Printf("linearizable: %v\n%v\nbefore it, %s is %s\n", res.OK(), f.Op, f.ID, f.State)
	// Output:
	// {"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":1500,"token":"1.000001"}
	// {"process":1,"id":"b","op":"delete","outcome":"pending","call":200,"return":null}
	// {"process":1,"id":"a","op":"read","outcome":"absent","call":2000,"return":2600}
	// linearizable: false
	// line 3: process 1 read a: absent, call 2µs, return 2.6µs
	// before it, a is present
}
