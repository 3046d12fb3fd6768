package nodes

import (
	"fmt"
	"math"
	"time"

	"github.com/reliable-ops/rops/core"
)

// Faults are the failures a Node injects. The zero value injects none.
// Rates are probabilities drawn independently for every call from the node's
// seeded RNG.
type Faults struct {
	// ErrorRate is the original's RANDOM_BEHAVIOR: the chance that a
	// Create, Delete or Get fails with 500 or 408 (half each) before it
	// does anything.
	ErrorRate float64 `json:"error_rate"`
	// AmbiguousRate is the chance that a Create, Delete or Get is carried
	// out and then fails with 500 or 408 anyway: the answer is lost.
	AmbiguousRate float64 `json:"ambiguous_rate"`
	// Latency delays every call.
	Latency Duration `json:"latency"`
	// Jitter adds a delay drawn uniformly from [0, Jitter) to every call.
	Jitter Duration `json:"jitter"`
	// HangRate is the chance that a Create, Delete or Get never answers:
	// only the caller's context ends it.
	HangRate float64 `json:"hang_rate"`
	// Down makes every call fail at once like a refused connection.
	Down bool `json:"down"`
}

// Validate returns an error with code EInvalid naming the first setting that
// is out of range: rates must be within [0, 1], durations not negative.
func (f Faults) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"error_rate", f.ErrorRate},
		{"ambiguous_rate", f.AmbiguousRate},
		{"hang_rate", f.HangRate},
	} {
		// Written so that NaN fails too.
		if !(r.v >= 0 && r.v <= 1) {
			return core.Errorf(core.EInvalid, "invalid faults: %s is %v; give a probability from 0 to 1", r.name, r.v)
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"latency", f.Latency},
		{"jitter", f.Jitter},
	} {
		if d.v < 0 {
			return core.Errorf(core.EInvalid, "invalid faults: %s is %v; give a duration of 0 or more, such as 15ms", d.name, d.v)
		}
	}
	return nil
}

// Duration is a time.Duration that reads and writes as a Go duration string
// such as "15ms", in JSON and any other text encoding.
type Duration time.Duration

// String returns d as time.Duration formats it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText returns d as a duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string such as "15ms" or "1.5s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return core.Errorf(core.EInvalid, "invalid duration %q: give a number with a unit, such as 15ms or 1.5s", b)
	}
	*d = Duration(v)
	return nil
}

// roll is every random draw one call may need. A call draws all of them
// whatever the faults are, so a node's stream of outcomes for one fault does
// not shift when another fault is switched on.
type roll struct {
	hang, fail, lost float64
	failStatus       int
	lostStatus       int
	jitter           float64 // fraction of Faults.Jitter, in [0, 1)
}

// randomError is the original server's random failure: a 500 or a 408 with
// its exact message, so the HTTP server can send it on unchanged.
func randomError(status int) error {
	msg := "InternalServerError due to Random Behavior"
	if status == 408 {
		msg = "Timeout due to Random Behavior"
	}
	return &core.Error{Code: core.ETransient, Status: status, Message: msg}
}

// delay returns the latency plus this call's share of the jitter.
func (f Faults) delay(r roll) time.Duration {
	j := time.Duration(math.Floor(r.jitter * float64(f.Jitter)))
	return time.Duration(f.Latency) + j
}

// String returns f as space-separated key=value settings, named as in JSON.
func (f Faults) String() string {
	return fmt.Sprintf("error_rate=%v ambiguous_rate=%v latency=%v jitter=%v hang_rate=%v down=%v",
		f.ErrorRate, f.AmbiguousRate, f.Latency, f.Jitter, f.HangRate, f.Down)
}
