package cli

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
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
	b := Build()
	if g.Output == "json" {
		return json.NewEncoder(io.Stdout).Encode(b)
	}
	_, err := fmt.Fprintln(io.Stdout, b)
	return err
}
