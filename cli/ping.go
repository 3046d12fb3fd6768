package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reliable-ops/rops/core"
)

// PingCmd checks that every node of the target answers, and would take a
// write.
type PingCmd struct{}

// pingJSON is one node's line of ping -o json.
type pingJSON struct {
	Node  string  `json:"node"`
	OK    bool    `json:"ok"`
	Down  bool    `json:"down,omitempty"` // refused as a write would be: down, or not reached
	Ms    float64 `json:"ms"`
	Error string  `json:"error,omitempty"`
}

// pinger is a node with a cheap liveness call (an HTTP node's /ping).
type pinger interface {
	Ping(ctx context.Context) error
}

// Run asks each node once, in order, and prints how it answered; the exit
// code is ExitUnreachable if any did not answer, or is down.
func (c *PingCmd) Run(ctx context.Context, g *Globals, cl *Cluster, io *IO) error {
	var failed []string
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
			failed = append(failed, n.Name())
		}
		errs[i] = err
		if g.Output == "json" {
			out := pingJSON{Node: n.Name(), OK: err == nil, Down: cannotReach(err), Ms: round(float64(took)/float64(time.Millisecond), 3)}
			if err != nil {
				out.Error = err.Error()
			}
			if werr := writeJSON(io.Stdout, out); werr != nil {
				return werr
			}
			continue
		}
		switch {
		case cannotReach(err):
			fmt.Fprintf(io.Stdout, "%-*s down: %v\n", width, n.Name(), err)
		case err != nil:
			fmt.Fprintf(io.Stdout, "%-*s %v\n", width, n.Name(), err)
		default:
			fmt.Fprintf(io.Stdout, "%-*s ok (%v)\n", width, n.Name(), took.Round(time.Microsecond))
		}
	}
	if len(errs) > 0 && !slices.ContainsFunc(errs, func(err error) bool { return !cannotReach(err) }) {
		// Nobody answers: say why once.
		return &exitError{code: ExitUnreachable, err: fmt.Errorf("no node answered: %s", summarizeUnreachable(cl.Nodes(), errs))}
	}
	if len(failed) > 0 {
		return &exitError{code: ExitUnreachable, err: fmt.Errorf("%d of %d nodes are down or did not answer (%s): every create and delete rolls back until all of them answer", len(failed), len(cl.Nodes()), strings.Join(failed, ", "))}
	}
	return nil
}

// ping asks one node what a write to it would meet, reading nothing but
// one record's id and changing nothing. A node with a ping call (an HTTP
// node's /ping) is asked that, then for one record: a rops server answers
// /ping for itself, even while its node is down, and a down node refuses
// the listing as it refuses a write (503, Rops-Applied: false:
// EUnavailable). A server with no listing (the original) passes on its
// /ping. Other nodes are asked to count their records, which a local node
// that is down refuses. Wrappers such as the request log are looked
// through.
func ping(ctx context.Context, n core.Node) error {
	ctx, cancel := context.WithTimeout(ctx, core.DefaultRequestTimeout)
	defer cancel()
	for inner := n; inner != nil; {
		if p, ok := inner.(pinger); ok {
			if err := p.Ping(ctx); err != nil {
				return err
			}
			if _, err := n.List(ctx, "", 1); cannotReach(err) {
				return err
			}
			return nil
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
