package cli

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"
)

// CompletionCmd prints a shell's completion script.
type CompletionCmd struct {
	Shell string `arg:"" optional:"" predictor:"shell" help:"The shell: bash, zsh or fish."`
}

// completionUsage is what rops completion without a shell says.
const completionUsage = `give a shell: bash, zsh or fish, such as
  source <(rops completion bash)                                for bash, in ~/.bashrc
  source <(rops completion zsh)                                 for zsh, in ~/.zshrc
  rops completion fish > ~/.config/fish/completions/rops.fish   for fish`

// completionShells are the shells rops completion writes a script for.
var completionShells = []string{"bash", "zsh", "fish"}

// Run prints the script. It registers the rops binary as its own
// completer: the shell runs it with COMP_LINE set, and complete answers.
func (c *CompletionCmd) Run(io *IO) error {
	if c.Shell == "" {
		return usageError(errors.New("completion: " + completionUsage))
	}
	if !slices.Contains(completionShells, c.Shell) {
		return usageError(fmt.Errorf("unknown shell %q: give one of %s", c.Shell, strings.Join(completionShells, ", ")))
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the rops binary for the script: %w", err)
	}
	if abs, err := filepath.EvalSymlinks(bin); err == nil {
		bin = abs
	}
	fmt.Fprint(io.Stdout, completionScript(c.Shell, shellQuote(bin)))
	return nil
}

// completionScript is the script of shell running bin to complete rops.
func completionScript(shell, bin string) string {
	switch shell {
	case "zsh":
		return "# rops completion for zsh: add to ~/.zshrc: source <(rops completion zsh)\n" +
			"autoload -U +X bashcompinit && bashcompinit\n" +
			"complete -o nospace -C " + bin + " rops\n"
	case "fish":
		return "# rops completion for fish: rops completion fish > ~/.config/fish/completions/rops.fish\n" +
			"function __complete_rops\n" +
			"    set -lx COMP_LINE (commandline -cp)\n" +
			"    test -z (commandline -ct)\n" +
			"    and set COMP_LINE \"$COMP_LINE \"\n" +
			"    " + bin + "\n" +
			"end\n" +
			"complete -f -c rops -a \"(__complete_rops)\"\n"
	}
	return "# rops completion for bash: add to ~/.bashrc: source <(rops completion bash)\n" +
		"complete -C " + bin + " rops\n"
}

// shellQuote quotes s for a POSIX shell (and fish) if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '+' || r == ':' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// complete answers the shell when it runs rops to complete a line
// (COMP_LINE is set): it prints the candidates and reports true, and the
// caller must then exit without running a command.
func completeLine(parser *kong.Kong) (done bool) {
	if os.Getenv("COMP_LINE") == "" {
		return false
	}
	kongplete.Complete(parser,
		kongplete.WithPredictor("shell", complete.PredictSet(completionShells...)),
		kongplete.WithPredictor("file", complete.PredictFiles("*")),
		kongplete.WithPredictor("dir", complete.PredictDirs("*")),
		kongplete.WithPredictor("target", complete.PredictFunc(predictTargets)),
		kongplete.WithExitFunc(func(int) { done = true }),
		kongplete.WithErrorHandler(func(err error) {
			fmt.Fprintf(parser.Stderr, "rops: completion: %v\n", err)
		}),
	)
	return true
}

// predictTargets returns the targets --target may name on the line being
// completed: the built-in ones, and those of the config file that the line
// names with --config, else ROPS_CONFIG, else the default one. A config
// that does not load adds none.
func predictTargets(args complete.Args) []string {
	name := os.Getenv("ROPS_CONFIG")
	for i, a := range args.Completed {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			name = v
		} else if a == "--config" && i+1 < len(args.Completed) {
			name = args.Completed[i+1]
		}
	}
	targets := slices.Collect(maps.Keys(builtinTargets))
	if cfg, err := loadConfig(name); err == nil {
		for t := range cfg.Targets {
			if !slices.Contains(targets, t) {
				targets = append(targets, t)
			}
		}
	}
	slices.Sort(targets)
	return targets
}
