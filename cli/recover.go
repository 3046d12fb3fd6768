package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/badger"
)

// RecoverCmd rolls back what earlier runs left unfinished.
type RecoverCmd struct {
	Discard []string `placeholder:"KEY" help:"Remove an unreadable journal entry by the key an error named (after checking the nodes with stats --diff)."`
}

// recoverJSON is the JSON shape of recover's output.
type recoverJSON struct {
	Intents    []intentJSON `json:"intents"`
	RolledBack int          `json:"rolled_back"`
	Pending    int          `json:"pending"`
}

type intentJSON struct {
	Op      core.Op      `json:"op"`
	ID      core.GroupID `json:"groupId"`
	Token   core.Token   `json:"token"`
	Outcome core.Outcome `json:"outcome"`
	Error   string       `json:"error,omitempty"`
}

// Run rolls back every intent in the target's journal and reports each one.
// The exit code is 3 if any is still pending.
func (c *RecoverCmd) Run(ctx context.Context, g *Globals, io *IO) error {
	cl, err := g.open(ctx, io.Stderr, journaled)
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, key := range c.Discard {
		if err := cl.journal.Discard(ctx, key); err != nil {
			return usageError(fmt.Errorf("cannot discard journal entry %q: %w", key, err))
		}
		fmt.Fprintf(io.Stderr, "discarded journal entry %q\n", key)
	}
	results, rerr := cl.Recover(ctx, cl.concurrency)
	out := recoverJSON{Intents: []intentJSON{}}
	for _, res := range results {
		in := intentJSON{Op: res.Op, ID: res.ID, Token: res.Token, Outcome: res.Outcome}
		if res.Outcome == core.Pending {
			out.Pending++
			in.Error = fmt.Sprint(res.Err)
		} else {
			out.RolledBack++
		}
		out.Intents = append(out.Intents, in)
	}
	if g.Output == "json" {
		if err := writeJSON(io.Stdout, out); err != nil {
			return err
		}
	} else {
		for _, in := range out.Intents {
			fmt.Fprintf(io.Stdout, "%s %s (token %s): %s", in.Op, in.ID, in.Token, in.Outcome)
			if in.Error != "" {
				fmt.Fprintf(io.Stdout, ": %s", in.Error)
			}
			fmt.Fprintln(io.Stdout)
		}
		if len(out.Intents) == 0 {
			fmt.Fprintln(io.Stdout, "recover: nothing to recover")
		} else {
			fmt.Fprintf(io.Stdout, "recover: %d intents, %d rolled back, %d pending\n", len(out.Intents), out.RolledBack, out.Pending)
		}
	}
	switch {
	case rerr != nil:
		return &exitError{code: ExitInconsistent, err: rerr}
	case out.Pending > 0:
		return &exitError{code: ExitInconsistent}
	}
	return nil
}

// openForWrite opens the target with its journal for a mutating command,
// and first rolls back what earlier runs left. It returns how many of their
// intents are still pending.
func (g *Globals) openForWrite(ctx context.Context, stderr io.Writer) (*cluster, int, error) {
	cl, err := g.open(ctx, stderr, journaled)
	if err != nil {
		return nil, 0, err
	}
	left, err := recoverFirst(ctx, cl, stderr)
	if err != nil {
		cl.Close()
		return nil, 0, err
	}
	return cl, left, nil
}

// recoverFirst rolls back what earlier runs left, and says so on w. It
// returns how many intents are still pending; an unreadable journal stops
// the command.
func recoverFirst(ctx context.Context, cl *cluster, w io.Writer) (left int, err error) {
	results, err := cl.Recover(ctx, cl.concurrency)
	if errors.Is(err, badger.ErrCorrupt) {
		return 0, &exitError{code: ExitInconsistent, err: err}
	}
	var rolledBack int
	for _, res := range results {
		if res.Outcome == core.Pending {
			left++
		} else {
			rolledBack++
		}
	}
	if len(results) > 0 {
		fmt.Fprintf(w, "rops: recovered %d operations an earlier run left unfinished (%d rolled back, %d still pending)\n", len(results), rolledBack, left)
	}
	return left, nil
}
