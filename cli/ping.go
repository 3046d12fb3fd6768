package cli

import (
	"context"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/reliable-ops/rops/core"
)

// PingCmd checks that every node of the target answers.
type PingCmd struct{}

// pingJSON is one node's line of ping -o json.
type pingJSON struct {
	Node  string  `json:"node"`
	OK    bool    `json:"ok"`
	Ms    float64 `json:"ms"`
	Error string  `json:"error,omitempty"`
}

// pinger is a node with a cheap liveness call (an HTTP node's /ping).
type pinger interface {
	Ping(ctx context.Context) error
}

// Run asks each node once, in order, and prints how it answered; the exit
// code is 3 if any did not.
func (c *PingCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	failed := 0
	errs := make([]error, len(cl.Nodes()))
	// Each line is printed as its node answers, so the names are padded
	// to the longest here: a tabwriter would print nothing until the last
	// node had answered or timed out.
	width := len("node01  ")
	for _, n := range cl.Nodes() {
		width = max(width, utf8.RuneCountInString(n.Name()))
	}
	for i, n := range cl.Nodes() {
		start := time.Now()
		err := ping(ctx, n)
		took := time.Since(start)
		if err != nil {
			failed++
		}
		errs[i] = err
		if g.Output == "json" {
			out := pingJSON{Node: n.Name(), OK: err == nil, Ms: round(float64(took)/float64(time.Millisecond), 3)}
			if err != nil {
				out.Error = err.Error()
			}
			if werr := writeJSON(io.Stdout, out); werr != nil {
				return werr
			}
			continue
		}
		if err != nil {
			fmt.Fprintf(io.Stdout, "%-*s %v\n", width, n.Name(), err)
			continue
		}
		fmt.Fprintf(io.Stdout, "%-*s ok (%v)\n", width, n.Name(), took.Round(time.Microsecond))
	}
	if len(errs) > 0 && !slices.ContainsFunc(errs, func(err error) bool { return !cannotReach(err) }) {
		// Nobody answers: say why once.
		return &exitError{code: ExitInconsistent, err: fmt.Errorf("no node answered: %s", summarizeUnreachable(cl.Nodes(), errs))}
	}
	if failed > 0 {
		return &exitError{code: ExitInconsistent, err: fmt.Errorf("%d of %d nodes did not answer", failed, len(cl.Nodes()))}
	}
	return nil
}

// ping asks one node: through its ping call if it has one, else by counting
// its records. Wrappers such as the request log are looked through.
func ping(ctx context.Context, n core.Node) error {
	ctx, cancel := context.WithTimeout(ctx, core.DefaultRequestTimeout)
	defer cancel()
	for inner := n; inner != nil; {
		if p, ok := inner.(pinger); ok {
			return p.Ping(ctx)
		}
		u, ok := inner.(interface{ Unwrap() core.Node })
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	_, err := n.Count(ctx)
	return err
}
