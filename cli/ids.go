package cli

import (
	"bufio"
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

// IDSource is how a bulk command names its ids: arguments, a range, a file,
// or all three; none means the default range 0-99.
type IDSource struct {
	IDs   []string `arg:"" optional:"" name:"ID" help:"Group ids."`
	Range string   `placeholder:"A-B" help:"A range of decimal ids, such as 0-999."`
	File  string   `placeholder:"FILE" help:"Read ids from FILE, one a line ('-': standard input; blank lines and lines starting with # are skipped)."`
}

// idList is the ids of a job, validated before any is sent.
type idList struct {
	ids []core.GroupID
	rng *idRange // after ids
}

func (l idList) len() int {
	n := len(l.ids)
	if l.rng != nil {
		n += l.rng.len()
	}
	return n
}

func (l idList) all() iter.Seq[core.GroupID] {
	return func(yield func(core.GroupID) bool) {
		for _, id := range l.ids {
			if !yield(id) {
				return
			}
		}
		if l.rng != nil {
			for id := range l.rng.all() {
				if !yield(id) {
					return
				}
			}
		}
	}
}

// resolve reads and validates every id, so that bad input stops the job
// before it sends anything.
func (s *IDSource) resolve(stdin io.Reader) (idList, error) {
	var l idList
	for _, a := range s.IDs {
		id, err := core.ParseGroupID(a)
		if err != nil {
			return idList{}, usageError(err)
		}
		l.ids = append(l.ids, id)
	}
	if s.File != "" {
		ids, err := readIDs(s.File, stdin)
		if err != nil {
			return idList{}, usageError(err)
		}
		l.ids = append(l.ids, ids...)
	}
	if s.Range != "" {
		r, err := parseRange(s.Range)
		if err != nil {
			return idList{}, usageError(err)
		}
		l.rng = &r
	}
	switch {
	case l.len() == 0 && s.File != "":
		return idList{}, usageError(fmt.Errorf("no ids in %s: give one id a line", s.File))
	case l.len() == 0:
		l.rng = &defaultRange
	}
	// Operations on one id are serialized anyway; repeating an id only
	// wastes requests.
	l.ids = dedupe(l.ids)
	return l, nil
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
