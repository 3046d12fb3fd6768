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
	DryRun bool   `help:"Print the plan and change nothing; exit 7 if it plans fixes, 0 if there are none."`

	policy core.Policy `kong:"-"` // Policy, parsed by prepare
}

// openMode: a repair changes records, after what earlier runs left.
func (*RepairCmd) openMode() openMode { return recovered }

// prepare parses --policy before the cluster opens.
func (c *RepairCmd) prepare(*IO) (err error) {
	if c.policy, err = core.ParsePolicy(c.Policy); err != nil {
		return usageError(err)
	}
	return nil
}

// Run plans the repair and, unless --dry-run, applies it. A dry run exits
// ExitPlanned if it planned fixes, 0 if there are none. The plan is made
// once, page by page, and never held whole: each fix is printed as it is
// planned (--dry-run) or as it ends (applied), so memory stays flat however
// many ids diverge.
func (c *RepairCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	policy := c.policy
	out := &fixPrinter{w: io.Stdout, json: g.Output == "json", quiet: g.Quiet, policy: policy, dryRun: c.DryRun}
	var rep core.Report
	var err error
	if c.DryRun {
		err = cl.Plan(ctx, policy, func(f core.Fix) error {
			out.fix(f, nil)
			return nil
		})
	} else {
		rep, err = cl.Repair(ctx, policy, cl.concurrency, func(f core.Fix, res core.Result) {
			out.fix(f, &res)
		})
	}
	// A plan that failed before its first fix found nothing to do only
	// in what it could read: no last line then, only the error.
	if err == nil || out.n > 0 {
		if perr := out.end(rep); perr != nil {
			return perr
		}
	}
	if err != nil {
		what := "repair stopped"
		if c.DryRun {
			what = "cannot plan the repair"
		}
		err = unreachableError(ctx, cl.Nodes(), err)
		return &exitError{code: unreachableCode(err, ExitInconsistent), err: fmt.Errorf("%s: %w", what, err)}
	}
	if c.DryRun && out.n > 0 {
		// Fixes planned, as terraform plan -detailed-exitcode and diff
		// tell changes apart from none.
		return &exitError{code: ExitPlanned}
	}
	return jobError(ctx, rep, cl.left)
}

// fixJSON is one fix in repair's JSON output, with its outcome once it is
// applied.
type fixJSON struct {
	core.Fix
	Outcome core.Outcome `json:"outcome,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// fixPrinter writes repair's output a fix at a time: as text, or as JSON
// Lines, one object per fix, then {"policy", "fixes", "dry_run", "report"}.
// Calls must not overlap.
type fixPrinter struct {
	w      io.Writer
	json   bool
	quiet  bool // text: only the fixes that failed, and the last line
	policy core.Policy
	dryRun bool
	n      int   // fixes written
	err    error // the first write error
}

func (p *fixPrinter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// fix writes f, and its result if it was applied.
func (p *fixPrinter) fix(f core.Fix, res *core.Result) {
	p.n++
	if p.json {
		fj := fixJSON{Fix: f}
		if res != nil {
			fj.Outcome = res.Outcome
			if res.Err != nil && res.Outcome != core.Done && res.Outcome != core.Unchanged {
				fj.Error = res.Err.Error()
			}
		}
		p.writeJSON(fj)
		return
	}
	failed := res != nil && res.Outcome != core.Done && res.Outcome != core.Unchanged
	if p.quiet && !failed {
		return
	}
	if p.n == 1 && !p.quiet {
		if p.dryRun {
			p.printf("repair plan (%s):\n", p.policy)
		} else {
			p.printf("repair (%s), each fix as it ends:\n", p.policy)
		}
	}
	nodes := strings.Join(f.Nodes, ", ")
	if f.Op == core.OpCreate {
		p.printf("  create %s on %s (token %s)", f.ID, nodes, f.Token)
	} else {
		p.printf("  delete %s from %s", f.ID, nodes)
	}
	switch {
	case res == nil:
	case res.Outcome == core.Done || res.Outcome == core.Unchanged:
		p.printf(": %s", res.Outcome)
	default:
		p.printf(": %s: %v", strings.ReplaceAll(string(res.Outcome), "_", " "), res.Err)
	}
	p.printf("\n")
}

// end finishes the output with rep, the report of the fixes applied (none
// for a dry run), and returns the first write error.
func (p *fixPrinter) end(rep core.Report) error {
	if p.json {
		end := repairJSON{Policy: p.policy, Fixes: p.n, DryRun: p.dryRun}
		if !p.dryRun {
			rep.Seconds = round(rep.Seconds, 3)
			end.Report = &rep
		}
		p.writeJSON(end)
		return p.err
	}
	switch {
	case p.n == 0:
		p.printf("repair: every node holds the same ids; nothing to do\n")
	case p.dryRun:
		p.printf("dry run: %d ids to fix, nothing changed: rops repair --policy %s applies them\n", p.n, p.policy)
	default:
		if p.err == nil {
			p.err = printReport(p.w, "text", rep, 0, 0)
		}
	}
	return p.err
}

// repairJSON is the last line of repair's JSON output.
type repairJSON struct {
	Policy core.Policy  `json:"policy"`
	Fixes  int          `json:"fixes"`
	DryRun bool         `json:"dry_run"`
	Report *core.Report `json:"report,omitempty"`
}

// writeJSON writes v as a line, keeping the first error.
func (p *fixPrinter) writeJSON(v any) {
	if p.err == nil {
		p.err = writeJSON(p.w, v)
	}
}
