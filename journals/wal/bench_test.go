package wal_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/journals/wal"
	"github.com/reliable-ops/rops/storetest"
)

// BenchmarkBulkCreateJournal measures what the journal costs a bulk job: a
// bulk create of b.N ids on three memory nodes (no faults; 16 at once, and
// the CLI's default, auto), with no journal, the memory journal and the
// log file. (The badger journal of earlier versions it measured too is
// gone: BENCHMARKS.md keeps its figures.)
func BenchmarkBulkCreateJournal(b *testing.B) {
	for _, tc := range []struct {
		name    string
		journal func(b *testing.B) core.Journal
	}{
		{"none", func(*testing.B) core.Journal { return nil }},
		{"memory", func(*testing.B) core.Journal { return memory.NewJournal() }},
		{"wal", func(b *testing.B) core.Journal {
			j, err := wal.Open(b.TempDir(), wal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				b.ReportMetric(float64(wal.Syncs(j))/float64(b.N), "syncs/op")
				j.Close()
			})
			return j
		}},
	} {
		for _, conc := range []int{16, core.AutoConcurrency} {
			b.Run(fmt.Sprintf("journal=%s/%s", tc.name, concurrencyName(conc)), func(b *testing.B) {
				bulkCreate(b, tc.journal(b), conc)
			})
		}
	}
}

// concurrencyName names a bulk job's concurrency as the CLI's flag does.
func concurrencyName(n int) string {
	if n == core.AutoConcurrency {
		return "concurrency=auto"
	}
	return fmt.Sprintf("concurrency=%d", n)
}

// bulkCreate creates b.N ids on three memory nodes through j (nil: no
// journal), concurrency at once.
func bulkCreate(b *testing.B, j core.Journal, concurrency int) {
	var ns []core.Node
	for i := range 3 {
		ns = append(ns, faults.New(fmt.Sprintf("node%02d", i+1), memory.New(), faults.Options{}))
	}
	cfg := core.Config{Nodes: ns}
	if j != nil {
		cfg.Journal = j
	}
	c, err := core.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rep := c.Bulk(context.Background(), core.OpCreate, storetest.IDs(b.N), concurrency, nil)
	b.StopTimer()
	if rep.Done != b.N {
		b.Fatalf("report = %+v, want %d done", rep, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkBeginFinish measures one Begin and one Finish from 16
// goroutines at once, as a bulk job's workers make them.
func BenchmarkBeginFinish(b *testing.B) {
	j, err := wal.Open(b.TempDir(), wal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	b.SetParallelism(16)
	var next wal.AtomicCounter
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add()
			in := core.Intent{Op: core.OpCreate, ID: core.GroupID(strconv.Itoa(i)), Token: core.Token(fmt.Sprintf("1700000000.%09d", i)), Nodes: []string{"node01", "node02", "node03"}}
			if err := j.Begin(context.Background(), in); err != nil {
				b.Error(err)
				return
			}
			if err := j.Finish(context.Background(), in.Token); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(wal.Syncs(j))/float64(b.N), "syncs/op")
}

// BenchmarkOpenClose measures what opening the journal costs every
// command: Open and Close of a journal holding 10 intents, as a
// short-lived CLI does.
func BenchmarkOpenClose(b *testing.B) {
	in := func(i int) core.Intent {
		return core.Intent{Op: core.OpCreate, ID: core.GroupID(strconv.Itoa(i)), Token: core.Token(fmt.Sprintf("1700000000.%06d", i)), Nodes: []string{"node01", "node02", "node03"}}
	}
	b.Run("journal=wal", func(b *testing.B) {
		dir := b.TempDir()
		j, err := wal.Open(dir, wal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range 10 {
			if err := j.Begin(context.Background(), in(i)); err != nil {
				b.Fatal(err)
			}
		}
		j.Close()
		for b.Loop() {
			j, err := wal.Open(dir, wal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			j.Close()
		}
	})
}

// BenchmarkOpen measures what the journal costs a command that finds
// nothing pending, as `rops recover` does: Open, Pending and Close of a log
// that has only been created (history=0); of the log that 100,000 finished
// operations (Begin and Finish, 16 at once as a bulk job makes them) left;
// and of the largest history a Close leaves in place (create-one after
// create-one, up to the last before Close rewrites the log). Each round
// opens the log as they left it (restored if a round changed it); log-KiB
// is how much of it is written. The
// goal (issue 20) is every case within 1.2× of the first.
func BenchmarkOpen(b *testing.B) {
	for _, tc := range []struct {
		name    string
		history func(b *testing.B, dir string)
	}{
		{"history=0", func(*testing.B, string) {}},
		{"history=100000", func(b *testing.B, dir string) {
			j, err := wal.Open(dir, wal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			var next wal.AtomicCounter
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for i := next.Add(); i < 100_000; i = next.Add() {
						if err := beginFinish(j, i); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := j.Close(); err != nil {
				b.Fatal(err)
			}
		}},
		{"history=largest-kept", func(b *testing.B, dir string) {
			// Count the create-ones up to the one whose Close rewrites,
			// then make one fewer.
			n := 0
			for i := 0; ; i++ {
				if i == 10_000 {
					b.Fatal("no Close rewrote the log in 10,000 create-ones")
				}
				j, err := wal.Open(dir, wal.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := beginFinish(j, i); err != nil {
					b.Fatal(err)
				}
				before := wal.Rewrites(j)
				if err := j.Close(); err != nil {
					b.Fatal(err)
				}
				if n > 0 && i == 2*n-2 {
					return
				}
				if n == 0 && wal.Rewrites(j) > before {
					n = i + 1
				}
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			j, err := wal.Open(dir, wal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := j.Close(); err != nil {
				b.Fatal(err)
			}
			tc.history(b, dir)
			path := filepath.Join(dir, wal.FileName)
			log, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				restore(b, path, log)
				b.StartTimer()
				j, err := wal.Open(dir, wal.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if ins, err := j.Pending(context.Background()); err != nil || len(ins) > 0 {
					b.Fatalf("Pending=%v, %v; want none", ins, err)
				}
				if err := j.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(bytes.TrimRight(log, "\x00")))/1024, "log-KiB")
		})
	}
}

// beginFinish begins and finishes operation i in j.
func beginFinish(j *wal.Journal, i int) error {
	in := core.Intent{Op: core.OpCreate, ID: core.GroupID(strconv.Itoa(i)), Token: core.Token(fmt.Sprintf("1700000000.%09d", i)), Nodes: []string{"node01", "node02", "node03"}}
	if err := j.Begin(context.Background(), in); err != nil {
		return err
	}
	return j.Finish(context.Background(), in.Token)
}

// restore puts log back at path, durably, as the journal writes a log: a
// new file, preallocated, holding log's bytes up to its last non-zero one,
// so that the rest is the hole an Open finds in a log it did not read past
// its end before (an Open or Close may have rewritten the log; reading the
// whole file to compare would put its hole in the page cache as data).
func restore(b *testing.B, path string, log []byte) {
	b.Helper()
	tmp := path + ".bench"
	f, err := os.Create(tmp)
	if err == nil {
		err = wal.Preallocate(f, int64(len(log)))
	}
	if err == nil {
		_, err = f.Write(bytes.TrimRight(log, "\x00"))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCreateOne measures what the journal costs create-one after
// create-one in one directory: Open, Begin, Finish and Close, each time.
// Run it a fixed number of times (-benchtime 500x): the history the Opens
// read depends on how many went before.
func BenchmarkCreateOne(b *testing.B) {
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		j, err := wal.Open(dir, wal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := beginFinish(j, i); err != nil {
			b.Fatal(err)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
