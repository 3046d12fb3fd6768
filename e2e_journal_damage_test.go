package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
)

// damagedRange matches the range a damage error names, and its key.
var damagedRange = regexp.MustCompile(`is damaged: bytes (\d+)-(\d+) .*?key (journal\.wal@\d+-\d+)`)

// TestJournalDamagedAfterKill is issue 17's crash (point 2) with real
// processes: create-one with node03 hanging is killed with SIGKILL once
// the write landed on node01 and node02, after its Begin was synced; then
// one bit of the journal's last records flips on disk, in the Begin or in
// the batch record of its write. recover must refuse (exit 5, naming the
// file and the byte range), every time, instead of finding nothing to
// recover and leaving the id on 2 of 3 nodes without a word; and the
// damage is then dropped as documented (--discard KEY, or --accept-loss),
// and repair makes the nodes agree.
func TestJournalDamagedAfterKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   core.GroupID
		// flip returns the offset of the byte to damage in the journal
		// b, whose id's Begin holds its id at begin.
		flip func(b []byte, begin int) int
		drop []string // recover's flags that drop the damage; KEY: its key
	}{{
		name: "a bit of the Begin, dropped with --discard",
		id:   "x1",
		flip: func(b []byte, begin int) int { return begin + 12 },
		drop: []string{"--discard", "KEY"},
	}, {
		name: "a bit of its batch record, dropped with --accept-loss",
		id:   "x2",
		flip: func(b []byte, begin int) int { return bytes.LastIndex(b[:begin], []byte("rops-wal")) + 3 },
		drop: []string{"--accept-loss"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			// Servers of its own: the access log is flushed every 100 ms,
			// so a counter shared with an earlier case could still count
			// that case's last requests, and kill too soon.
			requests := newCounter() // node01's and node02's answers
			var addrs []string
			for _, name := range []string{"node01", "node02"} {
				addrs = append(addrs, startServer(t, "", requests, "--nodes", name, "--store", "memory", "--random-behavior", "0").addr)
			}
			node03 := startServer(t, "", nil, "--nodes", "node03", "--store", "memory", "--random-behavior", "0", "--admin")
			addrs = append(addrs, node03.addr)
			cfg := writeConfig(t, "lab", remoteSpecs(addrs...)...)
			data := t.TempDir()
			target := []string{"--config", cfg, "--target", "lab", "--data", data}

			// The write lands on node01 and node02; node03 never answers,
			// and rops is killed while it waits.
			setFaults(t, node03.addr, `{"node03": {"hang_rate": 1}}`)
			job := runKilled(t, requests, 2, append(target, "--request-timeout", "1m", "--operation-timeout", "1m", "create-one", string(tc.id))...)
			if job.finished {
				t.Fatalf("create-one %s ended before node01 and node02 answered", tc.id)
			}
			setFaults(t, node03.addr, `{"node03": {"hang_rate": 0}}`)
			for i, a := range addrs {
				if got, want := records(t, a, nodeName(i))[tc.id], i < 2; got != want {
					t.Fatalf("after the kill, %s holds %s: %v, want %v", nodeName(i), tc.id, got, want)
				}
			}

			// One bit of the journal's last records flips on disk.
			paths, err := filepath.Glob(filepath.Join(data, "journal", "*", "journal.wal"))
			if err != nil || len(paths) != 1 {
				t.Fatalf("journal files: %v, %v", paths, err)
			}
			path := paths[0]
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			begin := bytes.Index(b, []byte(`"id":"`+tc.id+`"`))
			if begin < 0 {
				t.Fatalf("no Begin of %s in %s", tc.id, path)
			}
			off := tc.flip(b, begin)
			b[off] ^= 0x10
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}

			// recover refuses, names the file and the bytes, and touches
			// nothing; every time.
			var key string
			for range 2 {
				code, out, errOut := runStderr(t, append(target, "recover")...)
				m := damagedRange.FindStringSubmatch(errOut)
				if code != 5 || m == nil || !strings.Contains(errOut, path) {
					t.Fatalf("recover with byte %d of %s damaged exited %d, want 5 naming the file and the bytes:\n%s%s", off, path, code, out, errOut)
				}
				start, _ := strconv.Atoi(m[1])
				end, _ := strconv.Atoi(m[2])
				if off < start || off >= end {
					t.Fatalf("recover names bytes %d-%d, which do not hold the damaged byte %d:\n%s", start, end, off, errOut)
				}
				key = m[3]
			}
			if code, _ := run(t, append(target, "create-one", "y")...); code != 5 {
				t.Fatalf("create-one on a damaged journal exited %d, want 5", code)
			}
			st := runJSON[statsOut](t, append(target, "stats", "--diff")...)
			if len(st.Divergent) != 1 || st.Divergent[0].ID != tc.id || !slices.Equal(st.Divergent[0].On, []string{"node01", "node02"}) {
				t.Fatalf("stats --diff = %+v, want %s on node01 and node02 only", st, tc.id)
			}

			// The user checked the nodes and drops the damage: what it
			// recorded is lost, so there is nothing left to recover; repair
			// then makes the nodes agree.
			drop := slices.Clone(tc.drop)
			if i := slices.Index(drop, "KEY"); i >= 0 {
				drop[i] = key
			}
			code, out, errOut := runStderr(t, append(append(target, "recover"), drop...)...)
			if code != 0 || !strings.Contains(errOut, "dropped the damaged journal range "+key+"; what it recorded is lost") || !strings.Contains(out, "nothing to recover") {
				t.Fatalf("recover %v exited %d:\n%s%s", drop, code, out, errOut)
			}
			if code, out := run(t, append(target, "repair")...); code != 0 {
				t.Fatalf("repair exited %d:\n%s", code, out)
			}
			if st := runJSON[statsOut](t, append(target, "stats")...); !st.Consistent {
				t.Fatalf("after repair: stats = %+v, want consistent", st)
			}
		})
	}
}

// nodeName names the i-th node of a cluster3-like target.
func nodeName(i int) string { return "node0" + strconv.Itoa(i+1) }
