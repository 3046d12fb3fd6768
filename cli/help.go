package cli

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kong"
)

// HelpCmd prints the help of rops or of one of its commands.
type HelpCmd struct {
	Command []string `arg:"" optional:"" help:"The command to describe, such as create; or exit-codes, the table of exit codes."`
}

// exitCodesHelp is the table of exit codes, as README.md gives it: `rops
// help exit-codes` prints it, and so does the end of `rops --help`.
const exitCodesHelp = `Exit codes:
  0  every operation done or already so (repair --dry-run: nothing to fix)
  1  some operations rolled back: run the job again
  2  a usage or input error, a journal in use, or another cluster's journal;
     stats or ping given a --data with no cluster in it
  3  some operations pending, an earlier run's still unresolved, or stats
     found the nodes disagreeing: run rops recover, then rops repair
  4  no space left on the data directory
  5  the journal is damaged: rops recover --discard or --accept-loss
  6  unreachable: no node of the target answered, so the command gave up
     (ping: some node is down or did not answer); nothing is known of the
     records
  7  repair --dry-run planned fixes: rops repair applies them
`

// Run prints the help of the command named, as `rops CMD --help` does, or
// the exit codes for `rops help exit-codes`.
func (c *HelpCmd) Run(k *kong.Context) error {
	if len(c.Command) == 1 && c.Command[0] == "exit-codes" {
		_, err := fmt.Fprint(k.Stdout, exitCodesHelp)
		return err
	}
	ctx, err := kong.Trace(k.Kong, c.Command)
	if err == nil {
		err = ctx.Error
	}
	if err != nil {
		return usageError(fmt.Errorf("help %s: %w (rops help lists the commands)", strings.Join(c.Command, " "), err))
	}
	return ctx.PrintUsage(false)
}

// globalEnvars gives each global flag (the root's: those every command
// takes) the environment variable ROPS_<NAME>, and no command flag one: a
// stale ROPS_RANGE must not change which ids a delete removes.
func globalEnvars(prefix string) kong.Option {
	return kong.PostBuild(func(k *kong.Kong) error {
		for _, f := range k.Model.Flags {
			if f.Name == "help" || f.Name == "version" || len(f.Envs) > 0 {
				continue
			}
			name := prefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
			f.Envs = append(f.Envs, name)
			f.Value.Tag.Envs = append(f.Value.Tag.Envs, name)
		}
		return nil
	})
}

// helpPrinter prints a command's own arguments and flags in full and the
// global flags as a list of names under their own headings, so that a
// command's help fits on a screen; `rops --help` describes them all. With
// short set (rops run with no arguments) it prints the commands alone.
func helpPrinter(short bool) kong.HelpPrinter {
	return func(options kong.HelpOptions, ctx *kong.Context) error {
		sub := ctx.Selected() != nil
		if !sub && !short {
			if err := kong.DefaultHelpPrinter(options, ctx); err != nil {
				return err
			}
			_, err := fmt.Fprint(ctx.Stdout, "\n"+exitCodesHelp)
			return err
		}
		// Hide the root's flags (but --help) while the default printer
		// runs, and list them by name after it.
		var hidden []*kong.Flag
		for _, f := range ctx.Model.Flags {
			if !f.Hidden && f.Name != "help" {
				f.Hidden = true
				hidden = append(hidden, f)
			}
		}
		defer func() {
			for _, f := range hidden {
				f.Hidden = false
			}
		}()
		if err := kong.DefaultHelpPrinter(options, ctx); err != nil {
			return err
		}
		w := ctx.Stdout
		if short {
			_, err := fmt.Fprintln(w, "Run \"rops --help\" for every flag.")
			return err
		}
		var groups []string
		byGroup := map[string][]string{}
		for _, f := range hidden {
			title := "Global flags:"
			if f.Group != nil && f.Group.Title != "" {
				title = f.Group.Title
			}
			if _, ok := byGroup[title]; !ok {
				groups = append(groups, title)
			}
			name := "--" + f.Name
			if f.Short != 0 {
				name = fmt.Sprintf("-%c, %s", f.Short, name)
			}
			byGroup[title] = append(byGroup[title], name)
		}
		for _, g := range groups {
			fmt.Fprintf(w, "\n%s\n", strings.TrimSuffix(g, ":")+" (rops --help describes them):")
			line := " "
			for _, n := range byGroup[g] {
				if len(line)+len(n)+3 > 80 {
					fmt.Fprintln(w, line)
					line = " "
				}
				line += "  " + n
			}
			fmt.Fprintln(w, line)
		}
		return nil
	}
}
