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
	Batch   Fault = "batch"   // batches lost before or after their items ran, late, or duplicated (batch_rate)

	// PauseCoordinator SIGSTOPs one of the coordinator processes that
	// share an etcd journal, past its lease, then SIGCONTs it.
	PauseCoordinator Fault = "pause-coordinator"
	// KillCoordinator SIGKILLs one of them; its heal settles what it left
	// (rops recover, once its lease expired) and starts it again.
	KillCoordinator Fault = "kill-coordinator"
)

// AllFaults are every Fault, in the order of README.
var AllFaults = append(slices.Clip(NodeFaults), PauseCoordinator, KillCoordinator)

// NodeFaults are the faults that strike a node, in the order of README.
var NodeFaults = []Fault{Kill, Pause, Down, Late, Reset, Gateway, Batch}

// String returns the fault's name.
func (f Fault) String() string { return string(f) }

// Process reports whether the fault strikes a node's process (kill,
// pause) rather than switching one of its faults.
func (f Fault) Process() bool { return f == Kill || f == Pause }

// Coordinator reports whether the fault strikes a coordinator process
// (pause-coordinator, kill-coordinator) rather than a node.
func (f Fault) Coordinator() bool { return f == PauseCoordinator || f == KillCoordinator }

// Switched reports whether the fault switches one of a node's faults
// (down, late, reset, gateway, batch).
func (f Fault) Switched() bool { return !f.Process() && !f.Coordinator() }

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
