package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/history"
)

// checkRun is one run of rops check and its history: every operation it
// runs and every reading it takes is written to hist as it ends. Processes
// 0 to workers-1 are its workers (the first deletes, the workload, the
// final reading), workers is the reader, workers+1 the final recover.
// With --coordinators, the workload's processes are the crew's: those of
// the n-th worker process started are numbered from 10000·n.
//
// A nemesis writes its fault windows with recordWindow, on the clock of
// hist.Now.
type checkRun struct {
	c       *core.Coordinator
	w       *workload
	hist    *history.Writer
	workers int
}

// readEvery is how long the reader waits between two readings.
const readEvery = 5 * time.Millisecond

// recordWindow writes a fault window of a nemesis: what struck target from
// start to end, times of hist.Now; end is history.NoReturn if the window
// had not ended when the history did.
func (r *checkRun) recordWindow(what, target string, start, end time.Duration) {
	_ = r.hist.Write(history.Op{Kind: history.Nemesis, What: what, Target: target, Call: start, Return: end})
}

// op runs op on id as process p, and records its outcome in the checker, the
// workload's pending ids and the history.
func (r *checkRun) op(ctx context.Context, p int, op core.Op, id core.GroupID) core.Result {
	call := r.hist.Now()
	res, _ := runOp(ctx, r.c, op, id)
	ret := r.hist.Now()
	r.w.chk.Record(res)
	r.w.mu.Lock()
	r.w.pending[id] = res.Outcome == core.Pending
	r.w.mu.Unlock()
	r.record(p, res, call, ret)
	return res
}

// record writes res, an operation of process p called at call and returned
// at ret.
func (r *checkRun) record(p int, res core.Result, call, ret time.Duration) {
	op := history.Op{Kind: history.Create, Process: p, ID: string(res.ID), Outcome: history.Outcome(res.Outcome), Call: call, Return: ret, Token: string(res.Token)}
	if res.Op == core.OpDelete {
		op.Kind = history.Delete
	}
	if res.Outcome == core.Pending {
		op.Return = history.NoReturn
	}
	_ = r.hist.Write(op) // a write error is sticky: Flush returns it
}

// work runs t, an operation of the workload, as process p.
func (r *checkRun) work(ctx context.Context, p int, t task) {
	start := time.Now()
	res := r.op(ctx, p, t.op, t.id)
	took := time.Since(start)
	w := r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rep.Requested++
	w.rep.Add(res)
	w.latencies = append(w.latencies, took)
	delete(w.busy, t.id)
}

// each calls f for every id on the run's workers, f's first argument the
// worker's number, and returns when all are done.
func (r *checkRun) each(ids []core.GroupID, f func(p int, id core.GroupID)) {
	next := make(chan core.GroupID)
	var wg sync.WaitGroup
	for p := range max(1, r.workers) {
		wg.Go(func() {
			for id := range next {
				f(p, id)
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
}

// startReader starts the reader: every readEvery, it takes an id that no
// operation is on and that is not pending, as the workload takes one, and
// reads it on every node. It returns a function that stops the reader and
// waits for it.
func (r *checkRun) startReader(ctx context.Context, rng *rand.Rand) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(readEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			id, ok := r.w.takeRead(rng)
			if !ok {
				continue
			}
			call := r.hist.Now()
			held, err := r.c.Holders(ctx, id)
			ret := r.hist.Now()
			r.w.endRead()
			if err == nil {
				r.recordReading(r.workers, id, held, false, call, ret)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// takeRead claims for the reader an id that is neither busy nor pending.
func (w *workload) takeRead(rng *rand.Rand) (core.GroupID, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	free := make([]core.GroupID, 0, len(w.ids))
	for _, id := range w.ids {
		if !w.busy[id] && !w.pending[id] {
			free = append(free, id)
		}
	}
	if len(free) == 0 {
		return "", false
	}
	w.reading = free[rng.IntN(len(free))]
	return w.reading, true
}

// endRead ends the reader's claim, and wakes an operation waiting for it.
func (w *workload) endRead() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reading = ""
	w.free.Broadcast()
}

// recordReading writes a reading of id by process p: held of the nodes
// hold it. Nodes that disagree are not one register's value: if an
// operation on the id is pending they may, and nothing is written;
// otherwise the reading is written as two reads over the same span,
// present (what the holders say) and absent (the others), which no order
// explains unless a pending operation could have flipped the id between
// them: the divergence that check's table reports, for rops verify to see
// too.
func (r *checkRun) recordReading(p int, id core.GroupID, held int, pending bool, call, ret time.Duration) {
	read := history.Op{Kind: history.Read, Process: p, ID: string(id), Outcome: history.Absent, Call: call, Return: ret}
	nodes := len(r.c.Nodes())
	switch {
	case held == nodes:
		read.Outcome = history.Present
	case held > 0 && pending:
		return
	case held > 0:
		present := read
		present.Outcome = history.Present
		_ = r.hist.Write(present)
	}
	_ = r.hist.Write(read)
}

// recover settles what is pending, as process workers+1: each operation it
// settles is written with the outcome Recover gave it, over the span of
// the whole recovery, as an operation of its own (the pending one stays
// pending). It returns the ids still pending.
func (r *checkRun) recover(ctx context.Context, concurrency int) []core.GroupID {
	call := r.hist.Now()
	results, _ := r.c.Recover(ctx, concurrency)
	ret := r.hist.Now()
	var still []core.GroupID
	for _, res := range results {
		if res.Outcome == core.Pending {
			still = append(still, res.ID)
			continue
		}
		r.record(r.workers+1, res, call, ret)
	}
	return still
}

// verify reads every id on every node, on the run's workers, writes each
// reading to the history, and judges them with chk.
func (r *checkRun) verify(ctx context.Context, chk *core.Checker, ids []core.GroupID) (core.Violations, error) {
	pending := map[core.GroupID]bool{}
	for _, id := range chk.Pending() {
		pending[id] = true
	}
	var mu sync.Mutex
	byID := make(map[core.GroupID]int, len(ids))
	var first error
	r.each(ids, func(p int, id core.GroupID) {
		call := r.hist.Now()
		held, err := r.c.Holders(ctx, id)
		ret := r.hist.Now()
		if err == nil {
			r.recordReading(p, id, held, pending[id], call, ret)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil && first == nil {
			first = fmt.Errorf("cannot check: %w", err)
		}
		byID[id] = held
	})
	if first != nil {
		return core.Violations{}, first
	}
	return chk.Verify(len(r.c.Nodes()), func(id core.GroupID) int { return byID[id] }, ids), nil
}

// sink is where a check writes its history: --history FILE and
// DIR/history.jsonl for --report DIR, or else a temporary file removed at
// the end.
type sink struct {
	io.Writer
	files []*os.File
	temp  bool
}

// openSink creates the history's files, or a temporary one in tempDir if
// neither path nor report is given. It creates report.
func openSink(path, reportDir, tempDir string) (_ *sink, err error) {
	s := &sink{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if path == "" && reportDir == "" {
		f, err := os.CreateTemp(tempDir, "rops-check-*.jsonl")
		if err != nil {
			return nil, fmt.Errorf("cannot write the history: %w", err)
		}
		s.files, s.temp = []*os.File{f}, true
	}
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("cannot write --history: %w", err)
		}
		s.files = append(s.files, f)
	}
	if reportDir != "" {
		if err := os.MkdirAll(reportDir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot write --report: %w", err)
		}
		f, err := os.Create(filepath.Join(reportDir, historyFile))
		if err != nil {
			return nil, fmt.Errorf("cannot write --report: %w", err)
		}
		s.files = append(s.files, f)
	}
	ws := make([]io.Writer, len(s.files))
	for i, f := range s.files {
		ws[i] = f
	}
	s.Writer = io.MultiWriter(ws...)
	return s, nil
}

// historyFile is the history's name in a report's directory.
const historyFile = "history.jsonl"

// path is the file to read the history back from.
func (s *sink) path() string { return s.files[0].Name() }

// close closes the files, and removes a temporary one.
func (s *sink) close() {
	for _, f := range s.files {
		f.Close()
		if s.temp {
			os.Remove(f.Name())
		}
	}
}

// scratchDir is where the check keeps what it removes at the end: the
// system's temporary directory or, where there is none (an image built
// FROM scratch has no /tmp), the data directory.
func scratchDir(g *Globals) string {
	if fi, err := os.Stat(os.TempDir()); err == nil && fi.IsDir() {
		return ""
	}
	if d, err := g.dataDir(); err == nil && os.MkdirAll(d, 0o755) == nil {
		return d
	}
	return ""
}
