package cli

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kong"
)

// HelpCmd prints the help of rops or of one of its commands.
type HelpCmd struct {
	Command []string `arg:"" optional:"" help:"The command to describe, such as create."`
}

// Run prints the help of the command named, as `rops CMD --help` does.
func (c *HelpCmd) Run(k *kong.Context) error {
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
			return kong.DefaultHelpPrinter(options, ctx)
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
