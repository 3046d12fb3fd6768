package nemesis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SpawnOptions say what Spawn starts.
type SpawnOptions struct {
	// Bin is the rops binary, such as os.Executable's.
	Bin string
	// Nodes is how many nodes to start, node01 to nodeNN, each by a rops
	// serve of its own, so that one can be killed or paused alone.
	Nodes int
	// Dir is where the cluster's temporary directory is made; empty,
	// os.TempDir.
	Dir string
	// Args, if not nil, returns more flags for the rops serve of a node,
	// such as its faults and seed.
	Args func(node string) []string
	// Log, if not nil, is given the servers' logs, each line prefixed
	// with its node's name; else they are dropped. Lines from several
	// servers never interleave, but Log must be safe for concurrent use
	// with its other writers.
	Log io.Writer
	// StartTimeout bounds how long a server may take to listen; zero,
	// 30 s.
	StartTimeout time.Duration
}

// Cluster is the rops serve processes that Spawn started, one node each,
// with their data (badger stores) in a temporary directory of their own.
// Its methods are safe for concurrent use.
type Cluster struct {
	// Dir is the temporary directory: each node's data, under its name.
	// Close removes it.
	Dir   string
	procs []*Proc
}

// Spawn starts opts.Nodes rops serve processes on free loopback ports,
// each serving one node from a badger store under a new temporary
// directory, with its admin API on, and returns once all listen. If one
// fails to start, it stops those started and returns the error, with the
// last lines of the server's log. ctx bounds the start only: the servers
// run until Close. On Linux they are killed if this process dies, and
// they run in a process group of their own, so that Ctrl-C in a terminal
// stops the command, which then stops them, rather than them all at once.
func Spawn(ctx context.Context, opts SpawnOptions) (_ *Cluster, err error) {
	if opts.Nodes < 1 || opts.Nodes > 99 {
		return nil, fmt.Errorf("%d nodes: give 1 to 99", opts.Nodes)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.Dir != "" {
		// A data directory named for the first time, as every command
		// makes it.
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(opts.Dir, "rops-spawn-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	var logMu sync.Mutex
	for i := range opts.Nodes {
		name := fmt.Sprintf("node%02d", i+1)
		p := &Proc{name: name, dir: filepath.Join(dir, name), bin: opts.Bin, addr: "127.0.0.1:0", timeout: opts.StartTimeout, log: opts.Log, logMu: &logMu}
		if opts.Args != nil {
			p.args = opts.Args(name)
		}
		if err := os.Mkdir(p.dir, 0o755); err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
	}
	// Started at once, each opening its store while the others do.
	errs := make([]error, len(c.procs))
	var wg sync.WaitGroup
	for i, p := range c.procs {
		wg.Go(func() { errs[i] = p.start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Procs returns the cluster's processes, node01 first.
func (c *Cluster) Procs() []*Proc { return c.procs }

// Specs returns the node specs of the cluster, one per node, such as
// http://127.0.0.1:40123/v1?node=node01.
func (c *Cluster) Specs() []string {
	specs := make([]string, len(c.procs))
	for i, p := range c.procs {
		specs[i] = p.URL() + "?node=" + p.name
	}
	return specs
}

// Close kills every process (a paused one too), waits until they are
// dead and removes the cluster's directory.
func (c *Cluster) Close() error {
	var errs []error
	for _, p := range c.procs {
		errs = append(errs, p.Kill())
	}
	errs = append(errs, os.RemoveAll(c.Dir))
	return errors.Join(errs...)
}

// Proc is one node's rops serve process. Once killed, Restart starts it
// again on the same address and data. Its methods are safe for concurrent
// use.
type Proc struct {
	name, dir, bin string
	args           []string
	timeout        time.Duration
	log            io.Writer
	logMu          *sync.Mutex

	mu   sync.Mutex
	addr string // host:port; port 0 until it first listens
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited and been waited for
	tail *tail
}

var _ Process = (*Proc)(nil)

// Name returns the node's name, such as node01.
func (p *Proc) Name() string { return p.name }

// Addr returns where it listens, host:port.
func (p *Proc) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// URL returns the base URL of its API, such as http://127.0.0.1:40123/v1.
func (p *Proc) URL() string { return "http://" + p.Addr() + "/v1" }

// PID returns the process id of the running server, or 0 if it is not
// running.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isDone(p.done) {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill kills the server with SIGKILL, paused or not, and returns once it
// is dead. Killing a server that is not running does nothing.
func (p *Proc) Kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isDone(done) {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !isDone(done) {
		return fmt.Errorf("kill %s (pid %d): %w", p.name, cmd.Process.Pid, err)
	}
	<-done
	return nil
}

// Restart starts the server again, on its address and data, and returns
// once it listens. A server that is running is left as it is. A restart
// that cannot listen yet (the port not free again) is tried again until
// ctx ends.
func (p *Proc) Restart(ctx context.Context) error {
	p.mu.Lock()
	running := p.cmd != nil && !isDone(p.done)
	p.mu.Unlock()
	if running {
		return nil
	}
	var err error
	for {
		if err = p.start(ctx); err == nil {
			return nil
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return err
		}
	}
}

// Pause stops the server with SIGSTOP, and returns once it has stopped
// (on Linux): it holds its connections and answers nothing until Resume.
func (p *Proc) Pause() error {
	if err := p.signal(sigStop); err != nil {
		return err
	}
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	if err := waitStopped(pid); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// Resume continues a paused server with SIGCONT.
func (p *Proc) Resume() error { return p.signal(sigCont) }

func (p *Proc) signal(sig os.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isDone(done) {
		return fmt.Errorf("%s is not running", p.name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s (pid %d): %w", p.name, cmd.Process.Pid, err)
	}
	return nil
}

// start starts the server on p.addr and waits until it says where it
// listens, or has exited, or ctx or the start timeout ends.
func (p *Proc) start(ctx context.Context) error {
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	args := append([]string{"serve", "--addr", addr, "--nodes", p.name, "--store", "badger",
		"--store-dir", p.dir, "--data", p.dir, "--admin", "--log-format", "text"}, p.args...)
	cmd := exec.Command(p.bin, args...)
	cmd.SysProcAttr = sysProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done, listening, tl := make(chan struct{}), make(chan string, 1), newTail(20)
	go func() {
		p.read(stderr, listening, tl)
		cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done, p.tail = cmd, done, tl
	p.mu.Unlock()

	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	var why string
	select {
	case url := <-listening:
		p.mu.Lock()
		p.addr = strings.TrimPrefix(url, "http://")
		p.mu.Unlock()
		return nil
	case <-done:
		why = "exited: " + cmd.ProcessState.String()
	case <-timer.C:
		why = fmt.Sprintf("did not listen within %v", p.timeout)
	case <-ctx.Done():
		why = context.Cause(ctx).Error()
	}
	p.Kill()
	return fmt.Errorf("rops serve of %s on %s %s; its last lines:\n%s", p.name, addr, why, tl)
}

// read reads the server's log to its end: it sends the URL of the line
// that says where it listens to listening, keeps the last lines in tl,
// and passes them on to p.log. It reads to the end, so that the server
// never blocks on a full pipe.
func (p *Proc) read(r io.Reader, listening chan<- string, tl *tail) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		tl.add(line)
		if !found {
			if _, rest, ok := strings.Cut(line, "msg=listening url="); ok {
				url, _, _ := strings.Cut(rest, " ")
				listening <- url
				found = true
			}
		}
		if p.log != nil {
			p.logMu.Lock()
			fmt.Fprintf(p.log, "%s: %s\n", p.name, line)
			p.logMu.Unlock()
		}
	}
	io.Copy(io.Discard, r) // a line too long stops the scanner, not the server
}

// tail keeps the last lines of a log.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func newTail(n int) *tail { return &tail{max: n} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.max {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, line)
}

// String returns the lines kept, indented.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "  (none)"
	}
	return "  " + strings.Join(t.lines, "\n  ")
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
