package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     idRange
		err      string
	}{
		{name: "one", in: "5-5", want: idRange{5, 5}},
		{name: "default", in: "0-99", want: idRange{0, 99}},
		{name: "top", in: "18446744073709551614-18446744073709551615", want: idRange{1<<64 - 2, 1<<64 - 1}},
		{name: "reversed", in: "9-1", err: "9 is after 1"},
		{name: "no dash", in: "12", err: "write it as A-B"},
		{name: "negative", in: "-1-5", err: "write it as A-B"},
		{name: "letters", in: "a-b", err: "write it as A-B"},
		{name: "too many", in: "0-10000000", err: "more than the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRange(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseRange(%q) error = %v, want one saying %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("parseRange(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestRangeAllStopsAtTheTop(t *testing.T) {
	r := idRange{1<<64 - 2, 1<<64 - 1}
	got := slices.Collect(r.all())
	if want := []core.GroupID{"18446744073709551614", "18446744073709551615"}; !slices.Equal(got, want) {
		t.Fatalf("ids = %v, want %v", got, want)
	}
}

func TestResolveIDs(t *testing.T) {
	src := IDSource{IDs: []string{"b", "a", "b"}, Range: []string{"1-2"}, File: []string{"-"}}
	l, err := src.resolve(strings.NewReader("x\n\n# skip\n a \n"))
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Collect(l.all())
	if want := []core.GroupID{"b", "a", "x", "1", "2"}; !slices.Equal(got, want) {
		t.Fatalf("ids = %v, want %v", got, want)
	}
	if got, want := l.len(), 5; got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
}

// TestResolveSendsEachIDOnce: an id named in the arguments, a file and a
// range, and ranges that overlap, give each id once, and repeated --range
// flags add up.
func TestResolveSendsEachIDOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  IDSource
		file string
		want []core.GroupID
	}{
		{name: "arg in range", src: IDSource{IDs: []string{"5"}, Range: []string{"0-9"}},
			want: []core.GroupID{"5", "0", "1", "2", "3", "4", "6", "7", "8", "9"}},
		{name: "ranges add up", src: IDSource{Range: []string{"0-2", "7-8"}},
			want: []core.GroupID{"0", "1", "2", "7", "8"}},
		{name: "ranges overlap", src: IDSource{Range: []string{"3-5", "0-3", "4-6", "8-8", "7-7"}},
			want: []core.GroupID{"0", "1", "2", "3", "4", "5", "6", "7", "8"}},
		{name: "file in range", src: IDSource{File: []string{"-"}, Range: []string{"1-3"}}, file: "3\n03\nx\n3\n",
			want: []core.GroupID{"3", "03", "x", "1", "2"}},
		{name: "top of the range", src: IDSource{IDs: []string{"18446744073709551615"}, Range: []string{"18446744073709551614-18446744073709551615", "18446744073709551615-18446744073709551615"}},
			want: []core.GroupID{"18446744073709551615", "18446744073709551614"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tc.src.resolve(strings.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Collect(l.all()); !slices.Equal(got, tc.want) {
				t.Fatalf("ids = %v, want %v", got, tc.want)
			}
			if got, want := l.len(), len(tc.want); got != want {
				t.Fatalf("len = %d, want %d", got, want)
			}
		})
	}
}

func TestResolveBoundsTheRangesTogether(t *testing.T) {
	src := IDSource{Range: []string{"0-9999999", "20000000-20000000"}}
	if _, err := src.resolve(strings.NewReader("")); err == nil || !strings.Contains(err.Error(), "together they name 10000001 ids, more than the limit") {
		t.Fatalf("resolve error = %v, want the limit named", err)
	}
}

func TestResolveDefaultsToTheOriginalRange(t *testing.T) {
	l, err := (&IDSource{}).resolve(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.len(), 100; got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
}

// FuzzParseIDs feeds arbitrary id files and ranges to the parsers: they
// never panic, and every id they accept is valid.
func FuzzParseIDs(f *testing.F) {
	f.Add("1\n2\n# c\n\nabc\n", "0-99")
	f.Add("a/b\n", "9-1")
	f.Add("\x00\xff\n", "18446744073709551615-18446744073709551615")
	f.Fuzz(func(t *testing.T, file, rng string) {
		ids, err := parseIDs(strings.NewReader(file), "fuzz")
		if err == nil {
			for _, id := range ids {
				if err := id.Validate(); err != nil {
					t.Fatalf("accepted invalid id %q: %v", id, err)
				}
			}
		}
		if r, err := parseRange(rng); err == nil {
			if r.from > r.to || r.len() > MaxRange {
				t.Fatalf("accepted bad range %q as %v", rng, r)
			}
		}
	})
}
