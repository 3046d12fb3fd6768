package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
)

// MinFree is the free space, in bytes, that a command wants on the file
// systems of its data before it writes there, and keeps watching for while
// it runs. The badger stores write through memory-mapped files, and a page
// of one that finds the disk full is a SIGBUS that kills the process, not
// an error it could handle: so rops stops writing while there is still
// room for what its databases may write as it winds down (per database a
// memtable of 1 MiB in a file of 2, a flush and a compaction; the journal
// preallocates its file).
const MinFree = 64 << 20

// spacePoll is how often a command that writes checks the free space.
const spacePoll = 50 * time.Millisecond

// freeSpace measures the free space of a directory's file system: diskFree,
// or a test's stand-in.
var freeSpace = diskFree

// noSpaceError says that the file system of dir has too little room left
// for rops to write there safely. It matches syscall.ENOSPC with errors.Is.
type noSpaceError struct {
	dir     string
	free    uint64 // bytes free; 0 with err
	err     error  // the error that said so, if any
	stopped bool   // found while the command ran: it stopped
}

func (e *noSpaceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no space left on %s: ", e.dir)
	if e.err != nil {
		fmt.Fprintf(&b, "%v", e.err)
	} else {
		fmt.Fprintf(&b, "%s free, and rops needs %s to write safely (its stores write through memory-mapped files, which crash on a full disk)", mib(e.free), mib(MinFree))
	}
	if e.stopped {
		b.WriteString("; so it stopped: what it reported done is done, and rops recover settles what is pending")
	}
	b.WriteString("; free some space, or choose another --data DIR")
	return b.String()
}

func (e *noSpaceError) Unwrap() error { return syscall.ENOSPC }

// mib formats n bytes in MiB, rounded down: just under MinFree must not
// read as MinFree.
func mib(n uint64) string { return fmt.Sprintf("%d.%d MiB", n>>20, (n&(1<<20-1))*10>>20) }

// spaceGuard watches the file systems a command keeps its data on.
type spaceGuard struct {
	dirs   []string // where the command's data lives (maybe not created yet)
	writes bool     // whether the command writes there
	free   func(dir string) (uint64, error)
}

// newSpaceGuard returns the guard of the command cmd of cli, whose flags
// are parsed: the data directory if the command keeps a journal or nodes
// there, and the directories its target's badger nodes name with dir=.
func newSpaceGuard(cli *CLI, cmd *kong.Node) *spaceGuard {
	g := &spaceGuard{free: freeSpace}
	if cmd == nil {
		return g
	}
	var specs []string
	switch cmd.Name {
	case "serve":
		if cli.Serve.Store != "badger" {
			return g
		}
		g.writes = true
		g.addDataDir(&cli.Globals)
		return g
	case "create", "delete", "create-one", "delete-one", "repair", "recover", "check":
		// They keep a journal in the data directory.
		g.writes = true
		g.addDataDir(&cli.Globals)
	case "stats", "ping":
		// Read-only: they need no margin, and go ahead on a full disk as
		// far as their stores let them; only a fault is reported.
	default:
		return g
	}
	if cfg, err := loadConfig(cli.Config); err == nil {
		if tc, err := cfg.target(cli.Target); err == nil {
			specs = tc.Nodes
		}
	}
	for _, s := range specs {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Scheme != "badger" {
			continue
		}
		if d := u.Query().Get("dir"); d != "" {
			g.dirs = append(g.dirs, d)
		} else {
			g.addDataDir(&cli.Globals)
		}
	}
	g.dirs = slices.Compact(g.dirs)
	return g
}

func (g *spaceGuard) addDataDir(globals *Globals) {
	if d, err := globals.dataDir(); err == nil && !slices.Contains(g.dirs, d) {
		g.dirs = append(g.dirs, d)
	}
}

// check returns a *noSpaceError if a directory of a command that writes
// has less than MinFree free. A file system it cannot measure passes.
func (g *spaceGuard) check() error {
	if !g.writes {
		return nil
	}
	for _, d := range g.dirs {
		if free, err := g.free(d); err == nil && free < MinFree {
			return &noSpaceError{dir: d, free: free}
		}
	}
	return nil
}

// watch checks the free space every spacePoll until the returned function
// is called, and cancels the command with a *noSpaceError as cause once
// check fails: the command then stops as it does on SIGINT, finishing or
// rolling back what it started, within the margin MinFree leaves.
func (g *spaceGuard) watch(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	if !g.writes || len(g.dirs) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(spacePoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := g.check(); err != nil {
					if ns, ok := errors.AsType[*noSpaceError](err); ok {
						ns.stopped = true
					}
					cancel(err)
					return
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// dir returns the directory to name in a message about err: the directory
// of a file that err names under one of the guard's, else the first.
func (g *spaceGuard) dir(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		for _, d := range g.dirs {
			if rel, rerr := filepath.Rel(d, pe.Path); rerr == nil && !strings.HasPrefix(rel, "..") {
				return d
			}
		}
		return filepath.Dir(pe.Path)
	}
	if len(g.dirs) > 0 {
		return g.dirs[0]
	}
	return "the data directory"
}

// noSpace returns err as a *noSpaceError if it is one, or if it says that
// a file system is full (ENOSPC, EDQUOT); else nil.
func (g *spaceGuard) noSpace(err error) *noSpaceError {
	if ns, ok := errors.AsType[*noSpaceError](err); ok {
		return ns
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &noSpaceError{dir: g.dir(err), err: err}
	}
	// badger flattens the errors of its file system into its messages
	// (y.Wrapf outside its debug mode), so the message is all there is
	// to go by; TestStatsOnAFullDisk pins it.
	if err != nil && (strings.Contains(err.Error(), syscall.ENOSPC.Error()) || strings.Contains(err.Error(), syscall.EDQUOT.Error())) {
		return &noSpaceError{dir: g.dir(err), err: err}
	}
	return nil
}

// fault turns a memory fault that SetPanicOnFault made a panic into the
// error to report: a memory-mapped file of a store under the guard's
// directories could not be read or written, which on a full disk is what
// happens instead of ENOSPC. It returns nil for any other panic value.
func (g *spaceGuard) fault(v any) error {
	re, ok := v.(runtime.Error)
	if !ok {
		return nil
	}
	at, ok := re.(interface{ Addr() uintptr })
	if !ok {
		return nil
	}
	for _, d := range g.dirs {
		if free, err := g.free(d); err == nil && free < MinFree {
			return &noSpaceError{dir: d, free: free,
				err: fmt.Errorf("a store's memory-mapped file could not be written (fault at %#x) with %s free", at.Addr(), mib(free))}
		}
	}
	return &noSpaceError{dir: g.dir(nil), err: fmt.Errorf("a store's memory-mapped file could not be read or written (fault at %#x): its disk is full or failing", at.Addr())}
}

// existing returns dir, or its nearest ancestor that exists: a data
// directory is created by the command that first writes there.
func existing(dir string) string {
	dir = filepath.Clean(dir)
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}
