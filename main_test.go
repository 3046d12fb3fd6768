package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/reliable-ops/rops/cli"
	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/badger"
)

var update = flag.Bool("update", false, "rewrite the golden output in testdata/script")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"rops": func() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScript runs the CLI scripts in testdata/script: every command, its
// golden output, and its answers to bad input.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		UpdateScripts:       *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("ROPS_DATA", env.Getenv("WORK")+"/data")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":        exits,
			"hold-data":    holdData,
			"hold-journal": holdJournal,
			"put-record":   putRecord,
			"put-intent":   putIntent,
		},
	})
}

// holdData opens a badger store in this process, so that a rops process
// started afterwards finds the data dir held by another process. It is
// released when the script ends.
func holdData(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: hold-data DIR")
	}
	st, err := badger.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Defer(func() { st.Close() })
}

// exits runs a program and checks its exit code: exits CODE PROG ARGS...
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// putRecord writes a record straight into one node's badger store, to make
// the nodes disagree: put-record DIR ID TOKEN.
func putRecord(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: put-record DIR ID TOKEN")
	}
	st, err := badger.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer st.Close()
	ts.Check(st.Create(context.Background(), core.GroupID(args[1]), core.Token(args[2])))
}

// holdJournal opens a journal in this process, as a running rops job would:
// hold-journal DIR.
func holdJournal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: hold-journal DIR")
	}
	j, err := badger.OpenJournal(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Defer(func() { j.Close() })
}

// putIntent leaves an intent in a journal, as a job killed mid-operation
// would: put-intent DIR create|delete ID TOKEN NODE[=PRETOKEN]...
func putIntent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 5 {
		ts.Fatalf("usage: put-intent DIR create|delete ID TOKEN NODE[=PRETOKEN]...")
	}
	in := core.Intent{Op: core.Op(args[1]), ID: core.GroupID(args[2]), Token: core.Token(args[3])}
	for _, n := range args[4:] {
		name, pre, ok := strings.Cut(n, "=")
		in.Nodes = append(in.Nodes, name)
		if ok {
			if in.PreImage == nil {
				in.PreImage = map[string]core.Token{}
			}
			in.PreImage[name] = core.Token(pre)
		}
	}
	j, err := badger.OpenJournal(ts.MkAbs(args[0]))
	ts.Check(err)
	defer j.Close()
	ts.Check(j.Begin(context.Background(), in))
}
