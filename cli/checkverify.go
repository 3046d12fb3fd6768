package cli

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/reliable-ops/rops/history"
	reportpkg "github.com/reliable-ops/rops/report"
)

// verifyBatch bounds the operations that verifyHistory holds at once: a
// longer history is judged in batches of ids, each read from the file
// anew. Porcupine judges each id apart, so batches change nothing but the
// memory.
var verifyBatch = 500_000

// verdict is what verifyHistory found.
type verdict struct {
	// res is the Result of the whole history, or of the batch of ids that
	// holds the first operation that cannot be explained (the last batch
	// if none): OK, Failures[0] and Visualize are the whole history's.
	res               history.Result
	ops, ids, nemeses int
	failed            []history.Failure // the ids that cannot be explained, the first first
	first             *history.Failure  // the first of all, nil if none
	took              time.Duration     // reading and judging
	all               []history.Op      // the whole history, if it was read at once
}

// ok reports whether the history is linearizable.
func (v verdict) ok() bool { return v.first == nil }

// verifyHistory reads the history at path and judges it with
// history.Verify, in batches of ids of at most verifyBatch operations
// (an id with more is a batch of its own).
func verifyHistory(path string) (verdict, error) {
	start := time.Now()
	counts := map[string]int{}
	var v verdict
	if err := scanHistory(path, func(op history.Op) {
		if op.Kind == history.Nemesis {
			v.nemeses++
		} else {
			counts[op.ID]++
		}
	}); err != nil {
		return verdict{}, err
	}
	var batches []map[string]bool
	n := 0
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		if len(batches) == 0 || n+counts[id] > verifyBatch && n > 0 {
			batches = append(batches, map[string]bool{})
			n = 0
		}
		batches[len(batches)-1][id] = true
		n += counts[id]
	}
	if len(batches) <= 1 {
		ops, err := readHistory(path)
		if err != nil {
			return verdict{}, err
		}
		v.all = ops
		if err := v.add(ops); err != nil {
			return verdict{}, err
		}
	}
	for i := 0; len(batches) > 1 && i < len(batches); i++ {
		var ops []history.Op
		if err := scanHistory(path, func(op history.Op) {
			if op.Kind == history.Nemesis || batches[i][op.ID] {
				ops = append(ops, op)
			}
		}); err != nil {
			return verdict{}, err
		}
		if err := v.add(ops); err != nil {
			return verdict{}, err
		}
	}
	slices.SortStableFunc(v.failed, func(a, b history.Failure) int { return firstOf(a.Op, b.Op) })
	v.took = time.Since(start)
	return v, nil
}

// add judges one batch of ids.
func (v *verdict) add(ops []history.Op) error {
	res, err := history.Verify(ops)
	if err != nil {
		return err
	}
	v.ops, v.ids = v.ops+res.Ops, v.ids+res.IDs
	v.failed = append(v.failed, res.Failures...)
	if !res.OK() && (v.first == nil || firstOf(res.Failures[0].Op, v.first.Op) < 0) {
		v.first, v.res = &res.Failures[0], res
	}
	if v.first == nil {
		v.res = res
	}
	return nil
}

// firstOf orders operations as Verify orders its failures: by return,
// call, then line.
func firstOf(a, b history.Op) int {
	return cmp.Or(cmp.Compare(a.Return, b.Return), cmp.Compare(a.Call, b.Call), cmp.Compare(a.Line, b.Line))
}

// scanHistory calls f with every operation of the history at path, in
// order.
func scanHistory(path string, f func(history.Op)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	r := history.NewReader(file)
	for {
		op, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		f(op)
	}
}

// readHistory reads the whole history at path.
func readHistory(path string) ([]history.Op, error) {
	var ops []history.Op
	err := scanHistory(path, func(op history.Op) { ops = append(ops, op) })
	return ops, err
}

// writeReport writes the report of the history at path, judged lin, into
// dir (where the history is already), with the check's table.
func writeReport(dir, path string, lin verdict, table checkJSON) error {
	ops := lin.all
	if ops == nil {
		var err error
		if ops, err = readHistory(path); err != nil {
			return err
		}
	}
	return reportpkg.Write(dir, ops, lin.res, reportpkg.Options{Check: table, RequestsPerOp: table.RequestsOp})
}

// reportFiles lists the files of the report in dir.
func reportFiles(dir string) []string {
	var files []string
	for _, f := range []string{historyFile, reportpkg.HTMLFile, reportpkg.LatencyFile, reportpkg.RateFile, reportpkg.SummaryFile} {
		files = append(files, filepath.Join(dir, f))
	}
	return files
}
