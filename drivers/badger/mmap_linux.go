//go:build linux

package badger

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// releaseTables drops from this process's resident memory the pages of the
// tables (*.sst) in dir that badger has memory-mapped. badger maps every
// table whole, and a scan touches every page of every table, which then
// stay resident for as long as the database is open: a listing of a
// million records would keep every table of every node resident, most of
// what stats at that size holds in memory. The pages stay in the
// kernel's page cache, so a later read faults them back in without I/O.
//
// Only shared mappings are released: their pages are the file's own, so
// dropping them loses nothing (a private mapping's changed pages would be
// lost). It finds the mappings in /proc/self/maps, as badger keeps its
// tables to itself. It is safe to call while badger reads or writes them.
func releaseTables(dir string) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) != 6 || !strings.HasSuffix(fields[5], ".sst") || filepath.Dir(fields[5]) != dir {
			continue
		}
		if perms := fields[1]; len(perms) != 4 || perms[3] != 's' {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), syscall.MADV_DONTNEED)
	}
}
