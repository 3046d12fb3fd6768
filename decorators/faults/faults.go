package faults

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reliable-ops/rops/core"
)

// Faults are the failures a Node injects. The zero value injects none.
// Rates are probabilities drawn independently for every call (BatchRate: for
// every batch) from the node's seeded RNG.
//
// Its fields are the table of fault settings (see Settings): a field's JSON
// tag is its key in JSON, node specs and String, its type its kind, and a
// fault:"delay" tag bounds it by MaxDelay. A new fault is a new field.
type Faults struct {
	// ErrorRate is the original's RANDOM_BEHAVIOR: the chance that a
	// Create, Delete or Get fails with 500 or 408 (half each) before it
	// does anything.
	ErrorRate float64 `json:"error_rate"`
	// AmbiguousRate is the chance that a Create, Delete or Get is carried
	// out and then fails with 500 or 408 anyway: the answer is lost.
	AmbiguousRate float64 `json:"ambiguous_rate"`
	// Latency delays every call.
	Latency Duration `json:"latency" fault:"delay"`
	// Jitter adds a delay drawn uniformly from [0, Jitter) to every call.
	Jitter Duration `json:"jitter" fault:"delay"`
	// HangRate is the chance that a Create, Delete or Get never answers:
	// only the caller's context ends it.
	HangRate float64 `json:"hang_rate"`
	// Down makes every call fail at once like a refused connection.
	Down bool `json:"down"`
	// LateRate is the chance that a Create, Delete or Get is applied only
	// LateDelay after it arrived, in the background, as a request stuck in
	// a server's queue is: the call itself never answers, so the caller
	// has given up by the time it lands.
	LateRate float64 `json:"late_rate"`
	// LateDelay is how long after its arrival a late call is applied, and
	// how long after the first a duplicate's second apply comes
	// (DefaultLateDelay if zero, for duplicates). It must be positive if
	// LateRate is, and less than core.DefaultTombstoneTTL.
	LateDelay Duration `json:"late_delay"`
	// ResetRate is the chance that a Create, Delete or Get is applied and
	// its connection then reset with no answer (ErrReset).
	ResetRate float64 `json:"reset_rate"`
	// DuplicateRate is the chance that a Create, Delete or Get is applied
	// twice, as a retransmitted request is: the caller gets the first
	// answer, and the second apply comes LateDelay later, in the
	// background.
	DuplicateRate float64 `json:"duplicate_rate"`
	// GatewayRate is the chance that a Create, Delete or Get is answered
	// 502, 503 or 504 (a third each) by a proxy in front of the node
	// (ErrGateway), which passed the request on, so that it was applied,
	// half of the time.
	GatewayRate float64 `json:"gateway_rate"`
	// BatchRate is the chance that a whole batch (an HTTP server's POST
	// /batch, Node.BatchFault) meets a transport fault, one of four with
	// equal chance: its connection is reset before anything is applied,
	// or after every item is; it is applied only LateDelay
	// (DefaultLateDelay if zero) after it arrived and never answered; or
	// it is answered and applied again LateDelay later. Each item still
	// draws its own faults, again when a late or duplicated batch runs.
	BatchRate float64 `json:"batch_rate"`
}

// DefaultLateDelay is the delay of a duplicate's second apply when
// LateDelay is zero, and the CLI's default LateDelay: longer than the
// default request timeout (core.DefaultRequestTimeout), so that by default a
// late or duplicate write lands after its caller has given up.
const DefaultLateDelay = 3 * time.Second

// MaxDelay bounds Latency and Jitter: a delay beyond it is a typing mistake
// (1000h for 1000ms), and only a hang would hold a request that long.
const MaxDelay = time.Hour

// Validate returns an error with code EInvalid naming the first setting that
// is out of range: rates must be within [0, 1], Latency and Jitter within
// [0, MaxDelay], and LateDelay positive if LateRate is, and less than
// core.DefaultTombstoneTTL.
func (f Faults) Validate() error {
	// Rates first, then durations, each in the table's order, so that of
	// several mistakes the same one is reported.
	for _, s := range settings {
		// Written so that NaN fails too.
		if r, ok := s.Value(f).(float64); ok && !(r >= 0 && r <= 1) {
			return core.Errorf(core.EInvalid, "invalid faults: %s is %v; give a probability from 0 to 1", s.Key, r)
		}
	}
	for _, s := range settings {
		d, ok := s.Value(f).(Duration)
		if !ok {
			continue
		}
		if d < 0 {
			return core.Errorf(core.EInvalid, "invalid faults: %s is %v; give a duration of 0 or more, such as 15ms", s.Key, d)
		}
		if s.Max > 0 && time.Duration(d) > s.Max {
			return core.Errorf(core.EInvalid, "invalid faults: %s is %v; give at most %v, such as 15ms; to hold requests for good, use hang_rate", s.Key, d, s.Max)
		}
	}
	if f.LateRate > 0 && f.LateDelay == 0 {
		return core.Errorf(core.EInvalid, "invalid faults: late_delay is 0s with late_rate %v; give how late a late request is applied, such as %v", f.LateRate, DefaultLateDelay)
	}
	if time.Duration(f.LateDelay) >= core.DefaultTombstoneTTL {
		// Tombstones fence late writes only while they live: a write that
		// lands later could undo a rollback, which no real server's queue
		// would hold that long either.
		return core.Errorf(core.EInvalid, "invalid faults: late_delay is %v; give less than %v, the life of a tombstone: a late write must land while the tombstone that fences it still lives", f.LateDelay, core.DefaultTombstoneTTL)
	}
	return nil
}

// inert reports whether f changes no call: no rate, no delay, not Down.
// LateDelay alone times late and duplicate applies that never happen, so
// it does not count: rops serve's nodes run at 0 faults with the CLI's
// default --late-delay.
func (f Faults) inert() bool {
	f.LateDelay = 0
	return f == Faults{}
}

// duplicateDelay returns how long after the first apply a duplicate's
// second apply comes.
func (f Faults) duplicateDelay() time.Duration {
	if f.LateDelay > 0 {
		return time.Duration(f.LateDelay)
	}
	return DefaultLateDelay
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
// not shift when another fault is switched on. Draws added later come after
// the earlier ones, so that seeded runs of the earlier faults stay the same.
type roll struct {
	hang, fail, lost float64
	failStatus       int
	lostStatus       int
	jitter           float64 // fraction of Faults.Jitter, in [0, 1)

	late, reset, duplicate, gateway float64
	gatewayStatus                   int  // 502, 503 or 504
	forwarded                       bool // the proxy passed the request on
}

// StatusError is the cause (core.Error.Err) of the error of an injected
// failure that has an HTTP status: the original server's random 500 or 408,
// or a proxy's 502, 503 or 504 (then Err is ErrGateway). Core decides from
// the error's code alone and knows nothing of HTTP; an HTTP server answers
// with the status and a request log shows it, both finding it by its
// HTTPStatus method, as they find the HTTP client's (httpapi.StatusError).
type StatusError struct {
	Status int
	Err    error // ErrGateway for a proxy's answer, else nil
}

// Error returns the status, such as "500".
func (e *StatusError) Error() string { return strconv.Itoa(e.Status) }

// Unwrap returns Err.
func (e *StatusError) Unwrap() error { return e.Err }

// HTTPStatus returns the status the failure answers with.
func (e *StatusError) HTTPStatus() int { return e.Status }

// randomError is the original server's random failure: a 500 or a 408 with
// its exact message, so the HTTP server can send it on unchanged.
func randomError(status int) error {
	msg := "InternalServerError due to Random Behavior"
	if status == 408 {
		msg = "Timeout due to Random Behavior"
	}
	return &core.Error{Code: core.ETransient, Message: msg, Err: &StatusError{Status: status}}
}

// ErrReset is the cause of the error a call returns when ResetRate fires:
// the call was applied, and then its connection was reset with no answer.
// The HTTP server matches it with errors.Is to send a real TCP reset.
var ErrReset = errors.New("connection reset by peer")

// ErrGateway is the cause of the error a call returns when GatewayRate
// fires: a proxy in front of the node answered 502, 503 or 504 (the
// error's StatusError), having passed the request on or not. The HTTP server
// matches it with errors.Is to answer as the proxy would, without the
// marks of a rops node.
var ErrGateway = errors.New("answered by a proxy in front of the node")

// resetError is the error of a call whose connection was reset after the
// node applied it: transient, as the caller cannot know what happened.
func (n *Node) resetError() error {
	return &core.Error{Code: core.ETransient, Message: n.name + ": connection reset by peer", Err: ErrReset}
}

// gatewayError is a proxy's answer in front of the node, with nginx's
// status line: transient, as a proxy may have passed the request on.
func (n *Node) gatewayError(status int) error {
	return &core.Error{Code: core.ETransient, Err: &StatusError{Status: status, Err: ErrGateway},
		Message: fmt.Sprintf("%d %s (from a proxy in front of %s)", status, GatewayText(status), n.name)}
}

// GatewayText returns the reason phrase nginx gives status, one of the
// answers of GatewayRate: "Bad Gateway", "Service Temporarily
// Unavailable" or "Gateway Time-out".
func GatewayText(status int) string {
	switch status {
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Temporarily Unavailable"
	case 504:
		return "Gateway Time-out"
	}
	return "Gateway Error"
}

// delay returns the latency plus this call's share of the jitter.
func (f Faults) delay(r roll) time.Duration {
	j := time.Duration(math.Floor(r.jitter * float64(f.Jitter)))
	return time.Duration(f.Latency) + j
}

// String returns f as space-separated key=value settings, named as in JSON.
func (f Faults) String() string {
	var b strings.Builder
	for i, s := range settings {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", s.Key, s.Value(f))
	}
	return b.String()
}

// Names of the injected faults, as a Note records them.
const (
	FaultNone         = "none"
	FaultError500     = "error_500"
	FaultError408     = "error_408"
	FaultAmbiguous500 = "ambiguous_500"
	FaultAmbiguous408 = "ambiguous_408"
	FaultHang         = "hang"
	FaultLate         = "late"
	FaultReset        = "reset"
	FaultDuplicate    = "duplicate"
	FaultGateway      = "gateway"
	FaultDown         = "down"

	// Faults of a whole batch (Node.BatchFault).
	FaultBatchLostBefore = "batch_lost_before"
	FaultBatchLostAfter  = "batch_lost_after"
	FaultBatchLate       = "batch_late"
	FaultBatchDuplicate  = "batch_duplicate"
)

// Note records which injected fault shaped a call's answer, for a server's
// metrics: a Node that injects a fault into a call whose context carries a
// Note (WithNote) sets Fault to the fault's name (FaultHang, ...). Fault
// stays empty when none fired; if several did (a duplicate whose answer is
// then lost), the last one is recorded. A Note is for one request at a
// time: a server makes one per request.
type Note struct {
	Fault string
}

type noteKey struct{}

// WithNote returns ctx carrying n, for the calls made with it to record
// their faults in.
func WithNote(ctx context.Context, n *Note) context.Context {
	return context.WithValue(ctx, noteKey{}, n)
}

// NoteContext is a context carrying a Note, as WithNote's, for a caller
// that allocates a value per request anyway (a server's response writer)
// and keeps both in it, so that carrying the note allocates nothing more.
// Set Context to the parent and use &c as the context.
type NoteContext struct {
	context.Context
	Note Note
}

// Value returns c's Note for the note's key, else the parent's value for
// key.
func (c *NoteContext) Value(key any) any {
	if key == (noteKey{}) {
		return &c.Note
	}
	return c.Context.Value(key)
}

// note records fault in ctx's Note, if it carries one. It allocates
// nothing, Note or not.
func note(ctx context.Context, fault string) {
	if n, ok := ctx.Value(noteKey{}).(*Note); ok {
		n.Fault = fault
	}
}

// randomFault names the fault of randomError(status) for ErrorRate, or for
// AmbiguousRate if ambiguous.
func randomFault(status int, ambiguous bool) string {
	switch {
	case ambiguous && status == 408:
		return FaultAmbiguous408
	case ambiguous:
		return FaultAmbiguous500
	case status == 408:
		return FaultError408
	}
	return FaultError500
}
