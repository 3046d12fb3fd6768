package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/reliable-ops/rops/history"
	reportpkg "github.com/reliable-ops/rops/report"
)

// ExitNotLinearizable is rops verify's exit code for a history that no
// order of its operations explains.
const ExitNotLinearizable = 1

// VerifyCmd judges a history from outside: whether some order of its
// operations, each taking effect at one instant between its call and its
// return, explains every outcome.
type VerifyCmd struct {
	File   string `arg:"" placeholder:"FILE" help:"The history, one JSON object per line; - reads standard input."`
	HTML   string `name:"html" placeholder:"FILE" help:"Write porcupine's visualisation to FILE: the ids that cannot be explained, around their first error, or the first ids of a linearizable history."`
	Report string `name:"report" placeholder:"DIR" help:"Write the report of the history into DIR, as rops check --report does: history.html, latency.png, rate.png and summary.json (with the recovery time after each fault window)."`
}

// Help is the detail under the usage line.
func (*VerifyCmd) Help() string {
	return `The history is JSON Lines, one operation per line, as README ("Histories and rops verify") describes; any program may write it:

  {"process":0,"id":"a","op":"create","outcome":"done","call":0,"return":1500}
  {"process":1,"id":"a","op":"read","outcome":"absent","call":2000,"return":2600}

Each id is checked with porcupine against a model of one id as a set: a done create leaves it present, a done delete absent; unchanged asserts it was so; rolled_back changes nothing; pending (return null) may take effect once, any time after its call, or never; a read asserts what it found.

Exit code 0: linearizable; 1: not, naming the first operation that cannot be explained; 2: the file cannot be read (its line and what is wrong).

Example:

  rops verify --html history.html history.jsonl
  rops verify --report out/ history.jsonl`
}

// verifyJSON is what verify prints with -o json.
type verifyJSON struct {
	File    string     `json:"file"`
	Ops     int        `json:"ops"`
	IDs     int        `json:"ids"`
	Nemeses int        `json:"nemeses"`
	OK      bool       `json:"ok"`
	Failed  []string   `json:"failed"`
	First   *firstJSON `json:"first,omitempty"`
	HTML    string     `json:"html,omitempty"`
	Report  string     `json:"report,omitempty"`
}

// firstJSON is the first operation that cannot be explained: its line as
// the history has it, where it is, and what its id was before it.
type firstJSON struct {
	Line      int    `json:"line"`
	Op        any    `json:"op"`
	State     string `json:"state"`
	Explained int    `json:"explained"`
	Total     int    `json:"total"`
}

// Run reads the history, verifies it, and writes the visualisation if
// asked.
func (c *VerifyCmd) Run(g *Globals, io *IO) error {
	ops, err := c.read(io.Stdin)
	if err != nil {
		return usageError(err)
	}
	res, err := history.Verify(ops)
	if err != nil {
		return usageError(fmt.Errorf("%s: %w", c.name(), err))
	}
	if c.HTML != "" {
		if err := writeHTML(c.HTML, res); err != nil {
			return usageError(err)
		}
	}
	if c.Report != "" {
		if err := reportpkg.Write(c.Report, ops, res, reportpkg.Options{}); err != nil {
			return usageError(fmt.Errorf("cannot write --report: %w", err))
		}
	}
	out := verifyJSON{File: c.name(), Ops: res.Ops, IDs: res.IDs, Nemeses: res.Nemeses, OK: res.OK(), Failed: []string{}, HTML: c.HTML, Report: c.Report}
	for _, f := range res.Failures {
		out.Failed = append(out.Failed, f.ID)
	}
	if !res.OK() {
		f := res.Failures[0]
		line, err := history.Marshal(f.Op)
		if err != nil {
			return err
		}
		out.First = &firstJSON{Line: f.Op.Line, Op: rawJSON(line), State: f.State, Explained: f.Explained, Total: f.Total}
	}
	if g.Output == "json" {
		err = writeJSON(io.Stdout, out)
	} else {
		err = printVerify(io.Stdout, out, res)
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		return &exitError{code: ExitNotLinearizable}
	}
	return nil
}

// read reads the history of c.File, or of stdin for "-".
func (c *VerifyCmd) read(stdin io.Reader) ([]history.Op, error) {
	r := stdin
	if c.File != "-" {
		f, err := os.Open(c.File)
		if err != nil {
			return nil, fmt.Errorf("cannot read the history: %w", err)
		}
		defer f.Close()
		r = f
	}
	ops, err := history.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name(), err)
	}
	return ops, nil
}

// name is how messages name the history.
func (c *VerifyCmd) name() string {
	if c.File == "-" {
		return "standard input"
	}
	return c.File
}

func writeHTML(path string, res history.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write --html: %w", err)
	}
	err = res.Visualize(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write --html %s: %w", path, err)
	}
	return nil
}

// rawJSON is a line of the history, printed as it is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// printVerify prints the verdict: one line, and for a history that is not
// linearizable, its first unexplained operation and what came before it.
func printVerify(w io.Writer, out verifyJSON, res history.Result) error {
	nemeses := ""
	if out.Nemeses > 0 {
		nemeses = " and " + nouns(out.Nemeses, "fault window")
	}
	head := fmt.Sprintf("verify: %s: %s on %s%s", out.File, nouns(out.Ops, "operation"), nouns(out.IDs, "id"), nemeses)
	var b strings.Builder
	if out.OK {
		fmt.Fprintf(&b, "%s: linearizable\n", head)
	} else {
		ids := out.Failed[:min(len(out.Failed), 10)]
		more := ""
		if n := len(out.Failed) - len(ids); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		f := res.Failures[0]
		fmt.Fprintf(&b, "%s: NOT linearizable: %s cannot be explained: %s%s\n", head, nouns(len(out.Failed), "id"), strings.Join(ids, ", "), more)
		fmt.Fprintf(&b, "first that cannot be explained: %v\n", f.Op)
		fmt.Fprintf(&b, "  before it, %s is %s (%d of its %d operations explained)\n", f.ID, f.State, f.Explained, f.Total)
	}
	if out.HTML != "" {
		fmt.Fprintf(&b, "visualisation: %s\n", out.HTML)
	}
	if out.Report != "" {
		fmt.Fprintf(&b, "report: %s\n", out.Report)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// nouns writes n and the noun, plural unless n is 1: "1 id", "2 ids".
func nouns(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
