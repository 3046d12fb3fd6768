package reqlog_test

import (
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/memory"
)

const seed = 20211009

// newNode returns a faulty node01 over a fresh memory store, closed when the
// test ends. Its clock is the system's: the log must not depend on timings.
func newNode(tb testing.TB, f faults.Faults, seed uint64) *faults.Node {
	tb.Helper()
	node := faults.New("node01", memory.New(), faults.Options{Faults: f, Seed: seed})
	tb.Cleanup(func() { node.Close() })
	return node
}

func id(i int) core.GroupID { return core.GroupID(strconv.Itoa(i)) }

// textLog returns a logger in slog's text format without times, so that
// tests can compare its lines.
func textLog(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}
