package nemesis

import (
	"fmt"
	"slices"
	"strings"
)

// Fault is what a window does to its node.
type Fault string

// Faults.
const (
	Kill    Fault = "kill"    // SIGKILL the node's process; restart it on the same address and data
	Pause   Fault = "pause"   // SIGSTOP the node's process; SIGCONT it
	Down    Fault = "down"    // the node refuses every request, as a stopped server does
	Late    Fault = "late"    // requests applied late, once the client gave up (late_rate)
	Reset   Fault = "reset"   // requests applied, then the connection reset (reset_rate)
	Gateway Fault = "gateway" // a proxy's 502, 503 or 504, passed on half of the time (gateway_rate)
)

// AllFaults are every Fault, in the order of README.
var AllFaults = []Fault{Kill, Pause, Down, Late, Reset, Gateway}

// String returns the fault's name.
func (f Fault) String() string { return string(f) }

// Process reports whether the fault strikes a node's process (kill,
// pause) rather than switching one of its faults.
func (f Fault) Process() bool { return f == Kill || f == Pause }

// ParseFaults reads a comma-separated list of faults, such as
// "kill,pause,late". A fault named twice counts once. It returns an error
// naming an unknown fault, or for an empty list.
func ParseFaults(list string) ([]Fault, error) {
	var fs []Fault
	for s := range strings.SplitSeq(list, ",") {
		f := Fault(strings.TrimSpace(s))
		switch {
		case f == "":
			continue
		case !slices.Contains(AllFaults, f):
			return nil, fmt.Errorf("unknown fault %q: the faults are %s", f, joinFaults(AllFaults))
		case !slices.Contains(fs, f):
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("no fault named: give some of %s, comma-separated", joinFaults(AllFaults))
	}
	return fs, nil
}

// joinFaults returns fs as "kill, pause, down".
func joinFaults(fs []Fault) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}
