package main

import (
	"context"
	binenc "encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/reliable-ops/rops/cli"
	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
	"github.com/reliable-ops/rops/journals/wal"
)

var update = flag.Bool("update", false, "rewrite the golden output in testdata/script")

func TestMain(m *testing.M) {
	testscript.Main(isolatedM{m}, map[string]func(){
		"rops": func() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// isolated holds the directories every rops process of these tests gets as
// its HOME, XDG_DATA_HOME and XDG_CONFIG_HOME; set by isolatedM.Run.
var isolated userDirs

// testRoot is the run's temporary directory, removed when the tests end:
// the stand-ins of isolated and the rops binary the tests build live there.
var testRoot string

// userDirs are stand-ins for the user's home, data and config directories.
type userDirs struct {
	home, data, config string
}

// env returns the test process's environment with d in place of the
// user's directories, and without the user's ROPS_* settings (ROPS_DATA
// would point rops at the user's data).
func (d userDirs) env() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "ROPS_") || strings.HasPrefix(kv, "GORACE=") })
	// A race-built rops sleeps a second at exit unless told otherwise: a
	// second for every process the tests start.
	return append(env, "HOME="+d.home, "XDG_DATA_HOME="+d.data, "XDG_CONFIG_HOME="+d.config,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// isolatedM runs the tests with every rops process they start (through
// ropsCmd or a script) pointed at empty stand-ins of the user's
// directories, and fails the run if anything was written there: a test
// must name its own --data, and must never touch ~/.local/share/rops, where
// the user's journals and a rops run by hand live. The go commands the
// tests run keep the real environment (and build cache).
type isolatedM struct{ m *testing.M }

func (im isolatedM) Run() int {
	root, err := os.MkdirTemp("", "rops-test-user-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	testRoot = root
	isolated = userDirs{filepath.Join(root, "home"), filepath.Join(root, "data"), filepath.Join(root, "config")}
	for _, d := range []string{isolated.home, isolated.data, isolated.config} {
		if err := os.Mkdir(d, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := im.m.Run()
	if err := isolated.untouched(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: a test wrote to the user's directories: %v\n", err)
		return 1
	}
	return code
}

// untouched returns an error naming what was written in d's directories.
func (d userDirs) untouched() error {
	var errs []error
	for _, dir := range []string{d.home, d.data, d.config} {
		err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
			if err == nil && path != dir {
				err = fmt.Errorf("%s was written (a rops run without --data?)", path)
			}
			return err
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TestUserDirsGuard shows that the guard of isolatedM works: rops run
// without --data keeps its data (the local nodes, the journal) under
// XDG_DATA_HOME, so a test that forgot --data writes into the stand-in,
// and untouched says so.
func TestUserDirsGuard(t *testing.T) {
	d := userDirs{t.TempDir(), t.TempDir(), t.TempDir()}
	if err := d.untouched(); err != nil {
		t.Fatalf("fresh dirs: %v", err)
	}
	cmd := exec.Command(binary(t), "--random-behavior", "0", "create-one", "x")
	cmd.Env = d.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rops create-one x: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(d.data, "rops", "journal")); err != nil {
		t.Errorf("rops without --data kept no journal under XDG_DATA_HOME: %v", err)
	}
	if err := d.untouched(); err == nil {
		t.Errorf("untouched found nothing written")
	}
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
			env.Setenv("HOME", isolated.home)
			env.Setenv("XDG_DATA_HOME", isolated.data)
			env.Setenv("XDG_CONFIG_HOME", isolated.config)
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

// holdJournal opens the cluster's journal under DIR (DIR/ID/journal.wal,
// the only one there) in this process, as a running rops job would:
// hold-journal DIR.
func holdJournal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: hold-journal DIR")
	}
	logs, err := filepath.Glob(filepath.Join(ts.MkAbs(args[0]), "*", "journal.wal"))
	ts.Check(err)
	if len(logs) != 1 {
		ts.Fatalf("hold-journal: %d journals under %s, want 1", len(logs), args[0])
	}
	j, err := wal.Open(filepath.Dir(logs[0]), wal.Options{})
	ts.Check(err)
	ts.Defer(func() { j.Close() })
}

// putIntent leaves an intent in the journal an older rops kept per target
// (journal/NAME, a badger database of its own), as one of its jobs killed
// mid-operation would: put-intent DIR create|delete ID TOKEN
// NODE[=PRETOKEN]...; put-intent DIR torn leaves an entry that cannot be
// read. It writes that rops' format by hand, as nothing in rops writes it
// any more: key "j/" and the sequence number in 20 digits, value the
// CRC32-C of the intent's JSON, big-endian, then the JSON.
func putIntent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || args[1] != "torn" && len(args) < 5 {
		ts.Fatalf("usage: put-intent DIR create|delete ID TOKEN NODE[=PRETOKEN]... | put-intent DIR torn")
	}
	value := []byte("x") // shorter than a checksum
	if args[1] != "torn" {
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
		js, err := json.Marshal(in)
		ts.Check(err)
		value = binenc.BigEndian.AppendUint32(nil, crc32.Checksum(js, crc32.MakeTable(crc32.Castagnoli)))
		value = append(value, js...)
	}
	// The options of rops' badger databases that decide their files.
	opts := badgerdb.DefaultOptions(ts.MkAbs(args[0])).WithLogger(nil).WithMemTableSize(1 << 20).
		WithValueLogFileSize(1 << 20).WithValueThreshold(64 << 10).WithCompression(options.None)
	db, err := badgerdb.Open(opts)
	ts.Check(err)
	defer db.Close()
	ts.Check(db.Update(func(txn *badgerdb.Txn) error {
		// Begins only appended: the next number is one more than the count.
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte("j/")})
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		it.Close()
		return txn.Set(fmt.Appendf(nil, "j/%020d", n+1), value)
	}))
}
