package plugins

import (
	"hash/fnv"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes/faults"
)

// MaxNodeNameLen is the longest node name, in bytes.
const MaxNodeNameLen = 64

// ValidateNodeName returns an EInvalid error unless name is 1 to
// MaxNodeNameLen letters, digits, '-', '_' and '.': names travel in HTTP
// headers, file names and logs.
func ValidateNodeName(name string) error {
	if name == "" {
		return core.Errorf(core.EInvalid, "the node name is empty: name it with letters, digits, '-', '_' and '.', such as node01")
	}
	if len(name) > MaxNodeNameLen {
		return core.Errorf(core.EInvalid, "node name %.20q... is %d bytes long: the limit is %d", name, len(name), MaxNodeNameLen)
	}
	for i, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return core.Errorf(core.EInvalid, "invalid node name %q: %q at byte %d is not allowed; use letters, digits, '-', '_' and '.'", name, r, i)
		}
	}
	return nil
}

// faultKeys are the settings every local node spec takes, in the order
// error messages list them.
var faultKeys = []string{"error_rate", "ambiguous_rate", "latency", "jitter", "hang_rate", "down",
	"late_rate", "late_delay", "reset_rate", "duplicate_rate", "gateway_rate", "seed"}

// FaultKeys returns the fault settings that ParseNodeSpec reads, in the
// order its errors list them, so that a driver whose nodes take no faults
// (their server injects them) can refuse them by name.
func FaultKeys() []string { return slices.Clone(faultKeys) }

// NodeSpec is a parsed spec of a node that runs in this process: its name,
// its options, and the settings left for its driver.
type NodeSpec struct {
	// Name is the node's name: the spec's host.
	Name string
	// Options are env.Faults overridden key by key by the spec, the seed,
	// and env.Clock.
	Options faults.Options
	// Query holds the driver's own settings: only keys it asked for.
	Query url.Values
}

// New returns a faulty node over store as s describes.
func (s NodeSpec) New(store core.Store) *faults.Node { return faults.New(s.Name, store, s.Options) }

// ParseNodeSpec reads u as a spec of a local node, SCHEME://NAME?key=value&...,
// for drivers that run a store with faults. The settings are error_rate,
// ambiguous_rate, hang_rate, late_rate, reset_rate, duplicate_rate,
// gateway_rate (0 to 1), latency, jitter, late_delay (durations such as
// 15ms), down (true or false; alone means true) and seed (see
// faults.Faults), plus driverKeys,
// which are left in NodeSpec.Query. Each overrides env for this node only.
// Without seed=, the seed comes from env.Seed and the name. It returns an
// EInvalid error that says what to fix for anything else: a missing or
// invalid name, a path, an unknown or repeated key, a bad value.
func ParseNodeSpec(u *url.URL, env Env, driverKeys ...string) (NodeSpec, error) {
	form := u.Scheme + "://NAME?key=value&..."
	switch {
	case u.Opaque != "":
		return NodeSpec{}, core.Errorf(core.EInvalid, "write the node name after '//': %s://%s", u.Scheme, u.Opaque)
	case u.User != nil:
		return NodeSpec{}, core.Errorf(core.EInvalid, "a %s spec takes no user: write %s", u.Scheme, form)
	case u.Host == "":
		return NodeSpec{}, core.Errorf(core.EInvalid, "no node name: write %s, such as %s://node01", form, u.Scheme)
	case u.Path != "" && u.Path != "/":
		return NodeSpec{}, core.Errorf(core.EInvalid, "unexpected path %q: write %s", u.Path, form)
	case u.Fragment != "":
		return NodeSpec{}, core.Errorf(core.EInvalid, "unexpected fragment %q: write %s", "#"+u.Fragment, form)
	}
	name := u.Host
	if err := ValidateNodeName(name); err != nil {
		return NodeSpec{}, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return NodeSpec{}, core.Errorf(core.EInvalid, "cannot read the settings after '?' (%v): write key=value pairs joined by '&'", err)
	}
	allowed := append(slices.Clone(faultKeys), driverKeys...)
	// Sorted, so that of several mistakes the same one is reported.
	keys := slices.Sorted(maps.Keys(q))
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return NodeSpec{}, core.Errorf(core.EInvalid, "unknown setting %q: %s nodes take %s", k, u.Scheme, strings.Join(allowed, ", "))
		}
		if len(q[k]) > 1 {
			return NodeSpec{}, core.Errorf(core.EInvalid, "setting %q is given %d times: give it once", k, len(q[k]))
		}
	}
	spec := NodeSpec{
		Name:    name,
		Options: faults.Options{Faults: env.Faults, Seed: deriveSeed(env.Seed, name), Clock: env.Clock},
		Query:   url.Values{},
	}
	f := &spec.Options.Faults
	for _, k := range keys {
		v := q[k][0]
		var err error
		switch k {
		case "error_rate":
			f.ErrorRate, err = parseRate(k, v)
		case "ambiguous_rate":
			f.AmbiguousRate, err = parseRate(k, v)
		case "hang_rate":
			f.HangRate, err = parseRate(k, v)
		case "latency":
			f.Latency, err = parseDuration(k, v)
		case "jitter":
			f.Jitter, err = parseDuration(k, v)
		case "down":
			f.Down, err = parseBool(k, v)
		case "late_rate":
			f.LateRate, err = parseRate(k, v)
		case "late_delay":
			f.LateDelay, err = parseDuration(k, v)
		case "reset_rate":
			f.ResetRate, err = parseRate(k, v)
		case "duplicate_rate":
			f.DuplicateRate, err = parseRate(k, v)
		case "gateway_rate":
			f.GatewayRate, err = parseRate(k, v)
		case "seed":
			spec.Options.Seed, err = strconv.ParseUint(v, 10, 64)
			if err != nil {
				err = core.Errorf(core.EInvalid, "seed=%s is not a seed: give a whole number from 0 to %d", v, uint64(1<<64-1))
			}
		default:
			spec.Query[k] = q[k]
		}
		if err != nil {
			return NodeSpec{}, err
		}
	}
	if err := f.Validate(); err != nil {
		return NodeSpec{}, err
	}
	return spec, nil
}

// OnOff reads the driver setting key as on or off, def if the spec leaves it
// out; key must be one of the driverKeys given to ParseNodeSpec. Any other
// value gives an EInvalid error that names both.
func (s NodeSpec) OnOff(key string, def bool) (bool, error) {
	v, ok := s.Query[key]
	if !ok {
		return def, nil
	}
	switch v[0] {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, core.Errorf(core.EInvalid, "%s=%s: give on or off (the default is %s)", key, v[0], onOff(def))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func parseRate(k, v string) (float64, error) {
	r, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, core.Errorf(core.EInvalid, "%s=%s is not a number: give a probability from 0 to 1, such as %s=0.2", k, v, k)
	}
	return r, nil
}

func parseDuration(k, v string) (faults.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, core.Errorf(core.EInvalid, "%s=%s is not a duration: give a number with a unit, such as %s=15ms", k, v, k)
	}
	return faults.Duration(d), nil
}

func parseBool(k, v string) (bool, error) {
	if v == "" {
		// "?down" reads as a switch.
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, core.Errorf(core.EInvalid, "%s=%s is not true or false", k, v)
	}
	return b, nil
}

// deriveSeed returns the seed of the node called name in a run seeded with
// seed: the same for the same pair, and different for nodes of one run, so
// they do not fail in lockstep.
func deriveSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() ^ seed
}

func quote(s string) string { return strconv.Quote(s) }
