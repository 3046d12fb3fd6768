package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/alecthomas/kong"
)

// VersionCmd prints what build of rops this is.
type VersionCmd struct{}

// BuildInfo says what build of rops is running: the module version (a tag
// such as v1.2.3 when installed with go install, "(devel)" when built from a
// checkout) and the VCS revision it was built from, when the build knew it.
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
}

// Build reads the running binary's build information.
func Build() BuildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return BuildInfo{Version: "unknown"}
	}
	b := BuildInfo{Version: info.Main.Version, GoVersion: info.GoVersion}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// String is the one line `rops version` prints, such as
// "rops v1.2.3 (rev 0123abcd, 2026-12-02T05:00:00Z, go1.26.8)".
func (b BuildInfo) String() string {
	var extra []string
	if b.Revision != "" {
		rev := b.Revision[:min(12, len(b.Revision))]
		if b.Modified {
			rev += "+modified"
		}
		extra = append(extra, "rev "+rev)
	}
	if b.Time != "" {
		extra = append(extra, b.Time)
	}
	if b.GoVersion != "" {
		extra = append(extra, b.GoVersion)
	}
	if len(extra) == 0 {
		return "rops " + b.Version
	}
	return fmt.Sprintf("rops %s (%s)", b.Version, strings.Join(extra, ", "))
}

// Run prints the build, as one line of text or one JSON object.
func (c *VersionCmd) Run(g *Globals, io *IO) error {
	return printBuild(io.Stdout, g.Output)
}

// printBuild prints the running build in format: json, one JSON object;
// else one line of text.
func printBuild(w io.Writer, format string) error {
	b := Build()
	if format == "json" {
		return json.NewEncoder(w).Encode(b)
	}
	_, err := fmt.Fprintln(w, b)
	return err
}

// versionFlag is --version: it prints what `rops version` prints, in the
// same --output format, and exits 0 without running a command.
type versionFlag bool

// BeforeReset prints the build and exits, as kong.VersionFlag does; -o is
// read from the command line, else its environment variable.
func (versionFlag) BeforeReset(k *kong.Kong, ctx *kong.Context) error {
	format := ""
	for _, f := range ctx.Model.Flags {
		if f.Name != "output" {
			continue
		}
		if givenFlags(ctx)[f.Name] {
			format, _ = ctx.FlagValue(f).(string)
			break
		}
		for _, env := range f.Envs {
			if v, ok := os.LookupEnv(env); ok {
				format = v
				break
			}
		}
	}
	if err := printBuild(k.Stdout, format); err != nil {
		return err
	}
	k.Exit(0)
	return nil
}
