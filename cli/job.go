package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/term"

	"github.com/reliable-ops/rops/core"
)

// CreateCmd creates many group records.
type CreateCmd struct {
	IDSource
}

// openMode: a job changes records, after what earlier runs left.
func (*CreateCmd) openMode() openMode { return recovered }

// Run creates every id.
func (c *CreateCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	return runBulk(ctx, g, cl, io, core.OpCreate, c.ids)
}

// DeleteCmd deletes many group records.
type DeleteCmd struct {
	IDSource
}

// openMode: a job changes records, after what earlier runs left.
func (*DeleteCmd) openMode() openMode { return recovered }

// Run deletes every id.
func (c *DeleteCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	return runBulk(ctx, g, cl, io, core.OpDelete, c.ids)
}

// oneID is what create-one and delete-one share: the id, parsed before the
// cluster opens, and a cluster recovered first (a job changes records,
// after what earlier runs left).
type oneID struct {
	ID string `arg:"" help:"The group id: 1 to 128 printable characters, no '/' or spaces."`

	id core.GroupID `kong:"-"` // ID, parsed by prepare
}

func (*oneID) openMode() openMode { return recovered }

// prepare parses the id before the cluster opens.
func (c *oneID) prepare(*IO) (err error) {
	c.id, err = parseID(c.ID)
	return err
}

// CreateOneCmd creates one group record.
type CreateOneCmd struct {
	oneID `embed:""`
}

// Run creates the id.
func (c *CreateOneCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	return runOne(ctx, g, cl, io, core.OpCreate, c.id)
}

// DeleteOneCmd deletes one group record.
type DeleteOneCmd struct {
	oneID `embed:""`
}

// Run deletes the id.
func (c *DeleteOneCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	return runOne(ctx, g, cl, io, core.OpDelete, c.id)
}

// bulkGCPercent is the garbage collector's target while a bulk job runs,
// unless GOGC is set: a job keeps little live (a few MB) beside hundreds of
// goroutines in flight, so at Go's default of 100 it collected often and
// each collection scanned every goroutine's stack. At 200 a create at 0.2
// cost 54 µs of the client's CPU instead of 65, for a peak RSS of 80 MiB
// instead of 64 (100,000 ids over HTTP); 400 bought nothing more.
const bulkGCPercent = 200

// bulkGC sets the garbage collector's target for a bulk job, unless the
// user set GOGC, and returns what restores it.
func bulkGC() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	prev := debug.SetGCPercent(bulkGCPercent)
	return func() { debug.SetGCPercent(prev) }
}

func runBulk(ctx context.Context, g *Globals, cl *Cluster, io *IO, op core.Op, ids idList) error {
	defer bulkGC()()
	progress := newProgress(io.Stderr, terminalProgress(io.Stderr, g.Quiet || g.Verbose), op, ids.len())
	why := new(causes)
	each := func(res core.Result) {
		if cl.log != nil {
			logResult(cl.log, res)
		}
		why.add(res)
		progress.add(res)
	}
	// A cluster nobody answers is named once, and the job stops early.
	unreach := newUnreachable(cl.Nodes())
	trips := cl.roundTrips()
	rep := cl.Bulk(ctx, op, unreach.ids(ctx, ids.all()), cl.bulkConcurrency, unreach.each(each))
	trips = cl.roundTrips() - trips
	progress.done()
	notStarted := ids.len() - rep.Requested
	if g.Quiet && g.Output == "text" {
		printSummary(io.Stdout, rep, notStarted)
	} else if err := printJob(io.Stdout, g.Output, rep, jobExtras{notStarted: notStarted, trips: trips, why: why, interrupted: ctx.Err() != nil}); err != nil {
		return err
	}
	unreach.report(ctx, io.Stderr, notStarted)
	return unreach.exitError(jobErrorOf(ctx, rep, cl.left, ids.len()))
}

// parseID parses a one-id command's argument: a bad one is the user's to
// fix.
func parseID(arg string) (core.GroupID, error) {
	id, err := core.ParseGroupID(arg)
	if err != nil {
		return "", usageError(err)
	}
	return id, nil
}

func runOne(ctx context.Context, g *Globals, cl *Cluster, io *IO, op core.Op, id core.GroupID) error {
	// The command as the user typed it: create-one, delete-one.
	rep := core.Report{Command: string(op) + "-one", Requested: 1}
	start, trips := time.Now(), cl.roundTrips()
	res, _ := runOp(ctx, cl.Coordinator, op, id)
	trips = cl.roundTrips() - trips
	if cl.log != nil {
		logResult(cl.log, res)
	}
	rep.Add(res)
	rep.Seconds = time.Since(start).Seconds()
	unreach := newUnreachable(cl.Nodes())
	unreach.add(res)
	if g.Output == "json" {
		why := new(causes)
		why.add(res)
		if err := printJob(io.Stdout, g.Output, rep, jobExtras{id: id, trips: trips, why: why, interrupted: ctx.Err() != nil}); err != nil {
			return err
		}
	} else {
		printResult(io.Stdout, res, ctx.Err() != nil)
	}
	unreach.report(ctx, io.Stderr, 0)
	return unreach.exitError(jobError(ctx, rep, cl.left))
}

func runOp(ctx context.Context, c *core.Coordinator, op core.Op, id core.GroupID) (core.Result, error) {
	if op == core.OpDelete {
		return c.Delete(ctx, id)
	}
	return c.Create(ctx, id)
}

// logResult logs one operation's outcome as it ends, so that whoever
// watches a job knows what it reported even if it is killed before its
// summary: msg=result op=create id=5 outcome=done.
func logResult(log *slog.Logger, res core.Result) {
	log.LogAttrs(context.Background(), slog.LevelInfo, "result",
		slog.String("op", string(res.Op)), slog.String("id", string(res.ID)), slog.String("outcome", string(res.Outcome)))
}

// jobError turns a report, and the intents an earlier run left that could
// not be recovered, into the command's exit code.
func jobError(ctx context.Context, rep core.Report, left int) error {
	return jobErrorOf(ctx, rep, left, 0)
}

// jobErrorOf is jobError for a job given total ids (0: not known), which
// an interrupted job names: "interrupted after 120 of 1000 ids: 3 pending
// were cut off mid-operation; ...". The nodes are not to blame for what
// an interrupt left pending, so it says how that is settled instead.
func jobErrorOf(ctx context.Context, rep core.Report, left, total int) error {
	switch {
	case rep.Pending > 0 && ctx.Err() != nil:
		return &exitError{code: ExitInconsistent, err: errors.New(interrupted(rep, total))}
	case rep.Pending > 0:
		return &exitError{code: ExitInconsistent}
	case left > 0:
		return &exitError{code: ExitInconsistent, err: fmt.Errorf("%d operations of an earlier run are still pending: run rops recover once the nodes answer", left)}
	case ctx.Err() != nil:
		return &exitError{code: ExitInconsistent, err: errors.New(interrupted(rep, total))}
	case rep.RolledBack > 0:
		return &exitError{code: ExitRolledBack}
	}
	return nil
}

// interrupted says how far an interrupted job got, and what it left: the
// operations cut off mid-way (pending) and how they are settled, or else
// how to do the rest.
func interrupted(rep core.Report, total int) string {
	s := "interrupted"
	switch {
	case total > 0:
		s = fmt.Sprintf("interrupted after %d of %d ids", rep.Requested, total)
	case rep.Requested != 1: // a one-id command is not counted
		s = fmt.Sprintf("interrupted after %d ids", rep.Requested)
	}
	switch rep.Pending {
	case 0:
		return s + "; run the job again to do the rest (ids done are then left unchanged)"
	case 1:
		return s + ": 1 pending was cut off mid-operation; rops recover (or the next command, which recovers first) settles it"
	}
	return s + fmt.Sprintf(": %d pending were cut off mid-operation; rops recover (or the next command, which recovers first) settles them", rep.Pending)
}

// isTerminal reports whether w is a terminal. A character device is not
// enough: /dev/null is one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
