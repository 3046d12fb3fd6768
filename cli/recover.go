package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/journals/wal"
)

// ExitDamaged is the exit code of a command that found the journal
// damaged (or the journal of an older rops unreadable): it did nothing, and
// waits for the user to decide (recover --discard KEY, or --accept-loss).
const ExitDamaged = 5

// RecoverCmd finishes or rolls back what earlier runs left unfinished.
type RecoverCmd struct {
	Discard    []string `placeholder:"KEY" help:"Drop a damaged range of the journal, by the key an error named, accepting that the operations it recorded are lost (look at the nodes with stats --diff first, and make them agree with repair once the damage is dropped). Name every damaged range."`
	AcceptLoss bool     `name:"accept-loss" help:"Drop every damaged range of the journal, as --discard with every key."`
}

// recoverJSON is the JSON shape of recover's output.
type recoverJSON struct {
	Intents    []intentJSON `json:"intents"`
	Done       int          `json:"done"`
	RolledBack int          `json:"rolled_back"`
	Pending    int          `json:"pending"`
}

type intentJSON struct {
	Op      core.Op      `json:"op"`
	ID      core.GroupID `json:"id"`
	Token   core.Token   `json:"token"`
	Outcome core.Outcome `json:"outcome"`
	Error   string       `json:"error,omitempty"`
}

// openMode opens the journal, whose intents recover finishes itself.
func (*RecoverCmd) openMode() openMode { return journaled }

// Run finishes or rolls back every intent in the cluster's journal (see
// core.Coordinator.Recover) and reports each one. The exit code is 3 if
// any is still pending (ExitUnreachable if no node answered), ExitDamaged if the journal is damaged, and 2 if it
// holds intents of another cluster.
func (c *RecoverCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	if err := c.discard(ctx, cl.journal, io.Stderr); err != nil {
		return err
	}
	results, rerr := cl.Recover(ctx, cl.concurrency)
	if err := journalError(rerr); err != nil {
		return err
	}
	out := recoverJSON{Intents: []intentJSON{}}
	for _, res := range results {
		in := intentJSON{Op: res.Op, ID: res.ID, Token: res.Token, Outcome: res.Outcome}
		switch res.Outcome {
		case core.Pending:
			out.Pending++
			in.Error = fmt.Sprint(res.Err)
		case core.Done:
			out.Done++
		default:
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
			if g.Quiet && in.Error == "" {
				continue // -q: only what went wrong, and the last line
			}
			fmt.Fprintf(io.Stdout, "%s %s (token %s): %s", in.Op, in.ID, in.Token, in.Outcome)
			if in.Error != "" {
				fmt.Fprintf(io.Stdout, ": %s", in.Error)
			}
			fmt.Fprintln(io.Stdout)
		}
		if len(out.Intents) == 0 {
			fmt.Fprintln(io.Stdout, "recover: nothing to recover")
		} else {
			fmt.Fprintf(io.Stdout, "recover: %d intents, %s%d rolled back, %d pending\n", len(out.Intents), doneCount(out.Done), out.RolledBack, out.Pending)
		}
	}
	switch {
	case rerr != nil:
		rerr = unreachableError(ctx, cl.Nodes(), rerr)
		return &exitError{code: unreachableCode(rerr, ExitInconsistent), err: rerr}
	case out.Pending > 0:
		return pendingError(ctx, cl.Nodes(), results)
	}
	return nil
}

// pendingError is recover's error when intents are still pending:
// ExitUnreachable, naming the cause once, if each stayed pending because
// no node could be reached and no node answers a ping; else
// ExitInconsistent.
func pendingError(ctx context.Context, nodes []core.Node, results []core.Result) error {
	var errs []error
	for _, res := range results {
		if res.Outcome == core.Pending {
			errs = append(errs, res.Err)
		}
	}
	if err := unreachableError(ctx, nodes, errors.Join(errs...)); unreachableCode(err, 0) == ExitUnreachable {
		return &exitError{code: ExitUnreachable, err: fmt.Errorf("%w: run rops recover again once the nodes answer", err)}
	}
	return &exitError{code: ExitInconsistent}
}

// doneCount says how many intents were found complete and finished, if
// any.
func doneCount(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d done, ", n)
}

// discard drops the damaged ranges of j that --discard names, or all of
// them with --accept-loss.
func (c *RecoverCmd) discard(ctx context.Context, j *wal.Journal, stderr io.Writer) error {
	if j == nil && (len(c.Discard) > 0 || c.AcceptLoss) {
		return usageError(errors.New("--discard and --accept-loss drop damage in the local journal; remove a damaged entry of a journal in etcd with etcdctl"))
	}
	keys := c.Discard
	if c.AcceptLoss {
		d := j.Damage()
		if d == nil {
			fmt.Fprintf(stderr, "rops: the journal %s has no damage to accept\n", j.Dir())
			return nil
		}
		keys = d.Keys()
	}
	if len(keys) == 0 {
		return nil
	}
	if err := j.Discard(ctx, keys); err != nil {
		return usageError(fmt.Errorf("cannot discard: %w", err))
	}
	for _, k := range keys {
		fmt.Fprintf(stderr, "rops: dropped the damaged journal range %s; what it recorded is lost\n", k)
	}
	return nil
}

// journalError returns the command's error for a journal the coordinator
// could not read, or nil: exit ExitDamaged for damage, 2 for intents of
// another cluster.
func journalError(err error) error {
	switch {
	case errors.Is(err, wal.ErrDamaged):
		return &exitError{code: ExitDamaged, err: err}
	case errors.Is(err, wal.ErrOtherCluster):
		return usageError(err)
	}
	return nil
}

// recoverFirst rolls back what earlier runs left, and says so on w. It
// returns how many intents are still pending; an unreadable journal stops
// the command.
func recoverFirst(ctx context.Context, cl *Cluster, w io.Writer) (left int, err error) {
	results, err := cl.Recover(ctx, cl.concurrency)
	if err := journalError(err); err != nil {
		return 0, err
	}
	var done, rolledBack int
	for _, res := range results {
		switch res.Outcome {
		case core.Pending:
			left++
		case core.Done:
			done++
		default:
			rolledBack++
		}
	}
	if len(results) > 0 {
		fmt.Fprintf(w, "rops: recovered %d operations an earlier run left unfinished (%s%d rolled back, %d still pending)\n", len(results), doneCount(done), rolledBack, left)
	}
	return left, nil
}
