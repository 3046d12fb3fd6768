package cli

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/reliable-ops/rops/core"
)

// MaxRange bounds the ids one --range may name, so a typo cannot start an
// endless job.
const MaxRange = 10_000_000

// defaultRange is the original job's ids: 0-99.
var defaultRange = idRange{0, 99}

// idRange is an inclusive range of decimal ids.
type idRange struct{ from, to uint64 }

// parseRange parses "A-B": decimal A <= B, at most MaxRange ids.
func parseRange(s string) (idRange, error) {
	a, b, ok := strings.Cut(s, "-")
	from, errA := strconv.ParseUint(a, 10, 64)
	to, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case !ok || errA != nil || errB != nil:
		return idRange{}, fmt.Errorf("invalid --range %q: write it as A-B with two whole numbers, such as 0-99", s)
	case from > to:
		return idRange{}, fmt.Errorf("invalid --range %q: %d is after %d; write the smaller number first", s, from, to)
	case to-from >= MaxRange:
		return idRange{}, fmt.Errorf("invalid --range %q: %d ids is more than the limit of %d; split the job", s, to-from+1, MaxRange)
	}
	return idRange{from, to}, nil
}

func (r idRange) len() int { return int(r.to - r.from + 1) }

func (r idRange) all() iter.Seq[core.GroupID] {
	return func(yield func(core.GroupID) bool) {
		for i := r.from; ; i++ {
			if !yield(core.GroupID(strconv.FormatUint(i, 10))) || i == r.to {
				return
			}
		}
	}
}

// IDSource is how a bulk command names its ids: arguments, ranges, files,
// or all of them; none means the default range 0-99. Repeated --range and
// --file flags add up, and an id named more than once is sent once.
type IDSource struct {
	IDs   []string `arg:"" optional:"" name:"ID" help:"Group ids."`
	Range []string `placeholder:"A-B" help:"A range of decimal ids, such as 0-999; repeat the flag (or separate ranges with commas) for more: they add up."`
	File  []string `placeholder:"FILE" sep:"none" predictor:"file" help:"Read ids from FILE, one a line ('-': standard input; blank lines and lines starting with # are skipped); repeat the flag for more files."`

	ids idList `kong:"-"` // resolved by prepare
}

// prepare reads and checks the ids before the cluster opens, so that a
// mistake in them costs no connection, lock or recovery.
func (s *IDSource) prepare(io *IO) (err error) {
	s.ids, err = s.resolve(io.Stdin)
	return err
}

// idList is the ids of a job, validated and deduplicated before any is
// sent: the named ids (arguments, then files) in their order, then the
// ranges in ascending order, skipping the ids named already. Only the named
// ids are held in memory; the ranges are generated.
type idList struct {
	ids  []core.GroupID
	seen map[core.GroupID]bool // ids, as a set
	rngs []idRange             // sorted, disjoint and not adjacent
	n    int                   // the ids all yields
}

func (l idList) len() int { return l.n }

func (l idList) all() iter.Seq[core.GroupID] {
	return func(yield func(core.GroupID) bool) {
		for _, id := range l.ids {
			if !yield(id) {
				return
			}
		}
		for _, r := range l.rngs {
			for id := range r.all() {
				if !l.seen[id] && !yield(id) {
					return
				}
			}
		}
	}
}

// resolve reads and validates every id, so that bad input stops the job
// before it sends anything.
func (s *IDSource) resolve(stdin io.Reader) (idList, error) {
	var named []core.GroupID
	for _, a := range s.IDs {
		id, err := core.ParseGroupID(a)
		if err != nil {
			return idList{}, usageError(err)
		}
		named = append(named, id)
	}
	for _, name := range s.File {
		ids, err := readIDs(name, stdin)
		if err != nil {
			return idList{}, usageError(err)
		}
		named = append(named, ids...)
	}
	var rngs []idRange
	for _, a := range s.Range {
		r, err := parseRange(a)
		if err != nil {
			return idList{}, usageError(err)
		}
		rngs = append(rngs, r)
	}
	rngs = mergeRanges(rngs)
	total := 0
	for _, r := range rngs {
		total += r.len()
	}
	if total > MaxRange {
		return idList{}, usageError(fmt.Errorf("invalid --range %s: together they name %d ids, more than the limit of %d; split the job", strings.Join(s.Range, ", "), total, MaxRange))
	}
	if len(named) == 0 && len(rngs) == 0 {
		if len(s.File) > 0 {
			return idList{}, usageError(fmt.Errorf("no ids in %s: give one id a line", strings.Join(s.File, ", ")))
		}
		rngs = []idRange{defaultRange}
		total = defaultRange.len()
	}
	// Operations on one id are serialized anyway; repeating an id only
	// wastes requests.
	l := idList{ids: dedupe(named), rngs: rngs}
	l.seen = make(map[core.GroupID]bool, len(l.ids))
	l.n = len(l.ids) + total
	for _, id := range l.ids {
		l.seen[id] = true
		if inRanges(rngs, id) {
			l.n--
		}
	}
	return l, nil
}

// mergeRanges returns rs sorted, with overlapping and adjacent ranges
// merged into one.
func mergeRanges(rs []idRange) []idRange {
	slices.SortFunc(rs, func(a, b idRange) int { return cmp.Compare(a.from, b.from) })
	var out []idRange
	for _, r := range rs {
		if n := len(out); n > 0 && (r.from <= out[n-1].to || r.from-1 == out[n-1].to) {
			out[n-1].to = max(out[n-1].to, r.to)
			continue
		}
		out = append(out, r)
	}
	return out
}

// inRanges reports whether id is one that a range of rs yields: a decimal
// number in its canonical form (a range yields "5", never "05").
func inRanges(rs []idRange, id core.GroupID) bool {
	n, err := strconv.ParseUint(string(id), 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != string(id) {
		return false
	}
	for _, r := range rs {
		if r.from <= n && n <= r.to {
			return true
		}
	}
	return false
}

func dedupe(ids []core.GroupID) []core.GroupID {
	seen := make(map[core.GroupID]bool, len(ids))
	return slices.DeleteFunc(ids, func(id core.GroupID) bool {
		dup := seen[id]
		seen[id] = true
		return dup
	})
}

// readIDs reads ids one a line from the file name ("-": stdin).
func readIDs(name string, stdin io.Reader) ([]core.GroupID, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("cannot read ids: %w", err)
		}
		defer f.Close()
		r = f
	}
	return parseIDs(r, name)
}

// parseIDs reads ids one a line; blank lines and # comments are skipped.
func parseIDs(r io.Reader, name string) ([]core.GroupID, error) {
	var ids []core.GroupID
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		id, err := core.ParseGroupID(s)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read ids from %s: %w", name, err)
	}
	return ids, nil
}
