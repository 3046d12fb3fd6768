package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/reliable-ops/rops/core"
)

// RepairCmd makes the nodes agree again.
type RepairCmd struct {
	Policy string `default:"majority" enum:"majority,union,intersection" help:"How to fix an id not on every node: majority (create it where missing if most nodes hold it, with their token, else delete it), union (create where missing), intersection (delete where present)."`
	DryRun bool   `help:"Print the plan and change nothing."`
}

// repairJSON is the JSON shape of repair's output.
type repairJSON struct {
	Policy core.Policy  `json:"policy"`
	Plan   []core.Fix   `json:"plan"`
	Report *core.Report `json:"report,omitempty"` // absent for --dry-run
}

// Run prints the plan and, unless --dry-run, applies it.
func (c *RepairCmd) Run(ctx context.Context, g *Globals, io *IO) error {
	policy, err := core.ParsePolicy(c.Policy)
	if err != nil {
		return usageError(err)
	}
	cl, left, err := g.openForWrite(ctx, io.Stderr)
	if err != nil {
		return err
	}
	defer cl.Close()
	out := repairJSON{Policy: policy, Plan: []core.Fix{}}
	if err := cl.Plan(ctx, policy, func(f core.Fix) error {
		out.Plan = append(out.Plan, f)
		return nil
	}); err != nil {
		return &exitError{code: ExitInconsistent, err: fmt.Errorf("cannot plan the repair: %w", err)}
	}
	if !c.DryRun && len(out.Plan) > 0 {
		rep, err := cl.Repair(ctx, policy, cl.concurrency, nil)
		if err != nil {
			return &exitError{code: ExitInconsistent, err: fmt.Errorf("repair stopped: %w", err)}
		}
		out.Report = &rep
	}
	if g.Output == "json" {
		if err := writeJSON(io.Stdout, out); err != nil {
			return err
		}
	} else {
		printPlan(io.Stdout, out, c.DryRun)
	}
	if out.Report == nil {
		return jobError(ctx, core.Report{}, left)
	}
	return jobError(ctx, *out.Report, left)
}

func printPlan(w io.Writer, out repairJSON, dryRun bool) {
	if len(out.Plan) == 0 {
		fmt.Fprintln(w, "repair: every node holds the same ids; nothing to do")
		return
	}
	fmt.Fprintf(w, "repair plan (%s): %d ids\n", out.Policy, len(out.Plan))
	for _, f := range out.Plan {
		nodes := strings.Join(f.Nodes, ", ")
		if f.Op == core.OpCreate {
			fmt.Fprintf(w, "  create %s on %s (token %s)\n", f.ID, nodes, f.Token)
		} else {
			fmt.Fprintf(w, "  delete %s from %s\n", f.ID, nodes)
		}
	}
	if dryRun {
		fmt.Fprintln(w, "dry run: nothing changed")
		return
	}
	if err := printReport(w, "text", *out.Report); err != nil {
		fmt.Fprintln(w, err)
	}
}
