package nemesis

import (
	"slices"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		want       []Fault
		err        bool
	}{
		{"one", "kill", []Fault{Kill}, false},
		{"issue", "kill,pause,late,reset", []Fault{Kill, Pause, Late, Reset}, false},
		{"spaces and twice", " down , gateway,down,", []Fault{Down, Gateway}, false},
		{"unknown", "kill,partition", nil, true},
		{"empty", " , ", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFaults(tc.list)
			if got, want := err != nil, tc.err; got != want {
				t.Fatalf("ParseFaults(%q) error = %v, want an error: %v", tc.list, err, want)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ParseFaults(%q) = %v, want %v", tc.list, got, tc.want)
			}
		})
	}
}

func TestBoundsFor(t *testing.T) {
	for _, tc := range []struct {
		run  time.Duration
		want Bounds
	}{
		{time.Minute, DefaultBounds},
		{20 * time.Second, Bounds{500 * time.Millisecond, 2500 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}},
		{6 * time.Second, Bounds{375 * time.Millisecond, 750 * time.Millisecond, 375 * time.Millisecond, 750 * time.Millisecond}},
		{3 * time.Second, Bounds{188 * time.Millisecond, 375 * time.Millisecond, 188 * time.Millisecond, 375 * time.Millisecond}},
		{0, Bounds{50 * time.Millisecond, 100 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}},
	} {
		got := BoundsFor(tc.run)
		if got != tc.want {
			t.Errorf("BoundsFor(%v) = %v, want %v", tc.run, got, tc.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("BoundsFor(%v) is not valid: %v", tc.run, err)
		}
	}
}

// TestScheduleSeeded checks that a seed gives the same plans every time,
// another seed others, that every fault strikes in each round of
// len(faults) windows, and that the bounds hold.
func TestScheduleSeeded(t *testing.T) {
	faults := []Fault{Kill, Pause, Late, Reset}
	nodes := []string{"node01", "node02", "node03"}
	plans := func(seed uint64) []Plan {
		s := NewSchedule(seed, faults, nodes, DefaultBounds)
		var ps []Plan
		for range 40 {
			ps = append(ps, s.Next())
		}
		return ps
	}
	a, b, c := plans(42), plans(42), plans(43)
	if !slices.Equal(a, b) {
		t.Fatalf("seed 42 gave two schedules:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same schedule: %v", a)
	}
	hit := map[string]bool{}
	for i, p := range a {
		if got, want := p.N, i+1; got != want {
			t.Fatalf("plan %d is numbered %d", want, got)
		}
		if p.Length < DefaultBounds.MinWindow || p.Length > DefaultBounds.MaxWindow || p.Gap < DefaultBounds.MinGap || p.Gap > DefaultBounds.MaxGap {
			t.Errorf("%v is out of %v", p, DefaultBounds)
		}
		hit[p.Node] = true
		if i%len(faults) == len(faults)-1 {
			round := a[i+1-len(faults) : i+1]
			for _, f := range faults {
				if !slices.ContainsFunc(round, func(p Plan) bool { return p.Fault == f }) {
					t.Errorf("round %v has no %s", round, f)
				}
			}
		}
	}
	if got, want := len(hit), len(nodes); got != want {
		t.Errorf("40 windows struck %d nodes, want %d", got, want)
	}
}
