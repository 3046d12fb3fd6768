package storetest

import (
	"iter"
	"strconv"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// ScannedStore is a Store that can also stream its records (core.Scanner).
type ScannedStore interface {
	core.Store
	core.Scanner
}

// BenchmarkScanList measures reading all n records of s with one Scan
// ("scan"), against List's pages of core.DefaultPageSize ("list"), in
// ns/record: what streaming a listing saves over paging it.
func BenchmarkScanList(b *testing.B, s ScannedStore, n int) {
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k := 0
			if err := s.Scan(b.Context(), "", func(core.Record) bool { k++; return true }); err != nil || k != n {
				b.Fatalf("Scan: %d records, %v", k, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
	b.Run("list", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k := 0
			for after := core.GroupID(""); ; {
				page, err := s.List(b.Context(), after, core.DefaultPageSize)
				if err != nil {
					b.Fatal(err)
				}
				k += len(page)
				if len(page) < core.DefaultPageSize {
					break
				}
				after = page[len(page)-1].ID
			}
			if k != n {
				b.Fatalf("List: %d records", k)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
}

// IDs yields the ids "0" to "n-1", as a bulk job's input.
func IDs(n int) iter.Seq[core.GroupID] {
	return func(yield func(core.GroupID) bool) {
		for i := range n {
			if !yield(core.GroupID(strconv.Itoa(i))) {
				return
			}
		}
	}
}
