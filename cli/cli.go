// Package cli is the rops command line: kong commands over core, with
// targets opened through plugins.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/reliable-ops/rops/core"
)

// Exit codes, as README.md gives them.
const (
	ExitOK           = 0 // every operation done, or already so
	ExitRolledBack   = 1 // some operations were rolled back
	ExitUsage        = 2 // bad flags, ids, config or input
	ExitInconsistent = 3 // some operations pending, or the nodes disagree
	// ExitNoSpace: the file system of the data is full, or nearly (less
	// than MinFree left): a command that writes did not start, or stopped
	// as on SIGINT, taking no new operation; what it reported done is
	// done, and what it reported pending is in the journal for rops
	// recover once there is room.
	ExitNoSpace = 4
	// ExitDamaged (5, in recover.go): the journal is damaged.

	// ExitUnreachable: no node of the target answered, so the command gave
	// up (a job stopped early, stats, repair, recover and check could not
	// read the nodes); ping exits so if any node is down or does not
	// answer. Not "inconsistent": nothing is known of the records.
	ExitUnreachable = 6
	// ExitPlanned: repair --dry-run planned fixes (0 when there are none),
	// as terraform plan -detailed-exitcode and diff tell changes apart.
	ExitPlanned = 7
)

// CLI is the whole command line.
type CLI struct {
	Globals `embed:"" group:"global"`

	VersionFlag versionFlag `name:"version" help:"Print the version, as rops version does (in --output's format), and exit."`

	Create    CreateCmd    `cmd:"" help:"Create many group records on every node (default ids 0-99, like the original job)."`
	CreateOne CreateOneCmd `cmd:"" name:"create-one" help:"Create one group record on every node."`
	Delete    DeleteCmd    `cmd:"" help:"Delete many group records from every node (default ids 0-99)."`
	DeleteOne DeleteOneCmd `cmd:"" name:"delete-one" help:"Delete one group record from every node."`
	Stats     StatsCmd     `cmd:"" help:"Show how many records each node holds and whether they agree."`
	Repair    RepairCmd    `cmd:"" help:"Make the nodes agree: plan a fix for every id not on every node, and apply it."`
	Recover   RecoverCmd   `cmd:"" help:"Finish or roll back what an earlier run left unfinished (every mutating command does this first)."`
	Ping      PingCmd      `cmd:"" help:"Check that every node of the target answers."`
	Check     CheckCmd     `cmd:"" help:"Run a seeded mix of creates and deletes on ids of its own and report anything lost, unexpected or divergent."`
	Verify    VerifyCmd    `cmd:"" help:"Check a history (JSON Lines) for linearizability, one id at a time, with porcupine: exit 1 naming the first operation that cannot be explained."`
	Serve     ServeCmd     `cmd:"" help:"Serve nodes over HTTP, wire-compatible with the original system."`

	Version    VersionCmd    `cmd:"" help:"Print the version: the module's and the VCS revision it was built from."`
	Completion CompletionCmd `cmd:"" help:"Print the completion script of a shell (bash, zsh or fish), such as: source <(rops completion bash)."`
	Help       HelpCmd       `cmd:"" help:"Show the help of rops or of a command, such as: rops help create."`
}

// IO is where a command reads input and writes output.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as the user's to fix: exit code 2.
func usageError(err error) error { return &exitError{code: ExitUsage, err: err} }

// Main runs rops with args (without the program name) and returns the exit
// code. It stops operations cleanly on SIGINT or SIGTERM.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, IO{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// Run is Main with a context and no signal handling, for tests and
// embedders.
func Run(ctx context.Context, args []string, io IO) (code int) {
	// The command's context also ends when its disk fills (spaceGuard).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var cli CLI
	var cl *Cluster // the command's cluster, if it took one: closed below
	exit := -1
	// rops alone prints a short usage: the commands, and where to read on.
	short := len(args) == 0
	if short {
		args = []string{"--help"}
	}
	parser, err := kong.New(&cli,
		kong.Name("rops"),
		kong.Description("Reliable operations on an unreliable cluster: create and delete group records on every node as one all-or-nothing operation."),
		kong.Writers(io.Stdout, io.Stderr),
		kong.Exit(func(code int) { exit = code }),
		globalEnvars("ROPS"),
		negativeValues(),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Help(helpPrinter(short)),
		kong.ExplicitGroups([]kong.Group{{Key: "global", Title: "Global flags:"}}),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(&cli.Globals, &io),
		bindCluster(&cl),
	)
	if err != nil {
		fmt.Fprintf(io.Stderr, "rops: internal error: %v\n", err)
		return ExitUsage
	}
	// The shell runs rops with COMP_LINE set to complete a line: answer,
	// and run no command.
	if completeLine(parser) {
		return ExitOK
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 { // --help and friends
		return exit
	}
	if err != nil {
		fmt.Fprintf(io.Stderr, "rops: %v\n", err)
		return ExitUsage
	}
	guard := newSpaceGuard(&cli, kctx.Selected())
	if err := guard.check(); err != nil {
		return report(io.Stderr, guard, err)
	}
	defer guard.watch(ctx, cancel)()
	// A store's memory-mapped file that faults in this goroutine (opening
	// a badger store on a full disk) is then a panic to report, not a
	// crash; the stores' own goroutines are spared it by the guard's
	// margin.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err := guard.fault(v)
			if err == nil {
				panic(v)
			}
			code = report(io.Stderr, guard, err)
		}
	}()
	closeCluster := func() {
		if cl != nil {
			// As when each command closed its own: what it did is
			// reported already, and a close that fails changes none of
			// it.
			_ = cl.Close()
			cl = nil
		}
	}
	defer closeCluster() // on a panic too, before it is reported
	if p, ok := selected(kctx).(preparer); ok {
		if err := p.prepare(&io); err != nil {
			return report(io.Stderr, guard, err)
		}
	}
	err = kctx.Run()
	closeCluster()
	if cause := context.Cause(ctx); guard.noSpace(cause) != nil {
		// Stopped by the guard: say what the command did, then why.
		if err != nil && guard.noSpace(err) == nil {
			report(io.Stderr, guard, err)
		}
		return report(io.Stderr, guard, cause)
	}
	if err != nil {
		return report(io.Stderr, guard, err)
	}
	return ExitOK
}

// bindCluster gives a command whose Run takes a *Cluster its cluster,
// opened once as the command's openMode says, as hermit binds its state
// into Run; commands that take none (version, help, completion, serve)
// open nothing. The cluster is left in *cl for Run to close after the
// command. Errors opening it are the command's.
func bindCluster(cl **Cluster) kong.Option {
	return kong.BindSingletonProvider(func(ctx context.Context, g *Globals, io *IO, k *kong.Context) (*Cluster, error) {
		mode := readOnly
		if m, ok := selected(k).(clusterUser); ok {
			mode = m.openMode()
		}
		var err error
		*cl, err = g.open(ctx, io.Stderr, mode)
		return *cl, err
	})
}

// clusterUser is a command whose cluster opens other than readOnly: with
// the journal, or also recovered.
type clusterUser interface{ openMode() openMode }

// preparer is a command that reads and checks its input before its cluster
// opens, so that a mistake in it costs no connection, lock or recovery,
// and its error comes first, as when each command opened its own.
type preparer interface{ prepare(io *IO) error }

// selected returns the command that k runs, or nil.
func selected(k *kong.Context) any {
	n := k.Selected()
	if n == nil || !n.Target.CanAddr() {
		return nil
	}
	return n.Target.Addr().Interface()
}

// report prints err and returns its exit code. A full disk under the
// guard's directories, wherever it was found, is ExitNoSpace.
func report(w io.Writer, guard *spaceGuard, err error) int {
	if ns := guard.noSpace(err); ns != nil {
		fmt.Fprintf(w, "rops: %v\n", ns)
		return ExitNoSpace
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(w, "rops: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(w, "rops: %v\n", err)
	if core.ErrorCode(err) == core.EInvalid {
		return ExitUsage
	}
	return ExitInconsistent
}
