package plugins

import (
	"hash/fnv"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/reliable-ops/rops/core"
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

// NodeSpec is a parsed spec of a node that runs in this process: its name,
// the settings left for its driver, and what wraps its store.
type NodeSpec struct {
	// Name is the node's name: the spec's host.
	Name string
	// Query holds the driver's own settings: only keys it asked for.
	Query url.Values

	wraps []WrapFunc // one per registered wrapper, in order
}

// ParseNodeSpec reads u as a spec of a local node, SCHEME://NAME?key=value&...,
// for drivers that run a store in this process and build the node with
// NodeSpec.New. The settings are the Keys of the registered wrappers (with
// decorators/faults imported, error_rate, latency, seed and the other fault
// settings: see faults.Settings), each overriding Env.Defaults for this node
// only, plus driverKeys, which are left in NodeSpec.Query. It returns an
// EInvalid error that says what to fix for anything else: a missing or
// invalid name, a path, an unknown or repeated key, a bad value, or a key of
// Env.Defaults that no wrapper reads.
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
	ws := registeredWrappers()
	wrapped := wrapperKeys(ws)
	allowed := append(slices.Clone(wrapped), driverKeys...)
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
	for _, k := range slices.Sorted(maps.Keys(env.Defaults)) {
		if !slices.Contains(wrapped, k) {
			// A program's mistake, such as a decorator it did not import.
			return NodeSpec{}, core.Errorf(core.EInvalid, "default setting %q is one that no registered wrapper reads (they read %s): import the package that registers it, such as decorators/faults", k, strings.Join(wrapped, ", "))
		}
		if len(env.Defaults[k]) != 1 {
			return NodeSpec{}, core.Errorf(core.EInvalid, "default setting %q is given %d times: give it once", k, len(env.Defaults[k]))
		}
	}
	spec := NodeSpec{Name: name, Query: url.Values{}}
	for _, k := range keys {
		if !slices.Contains(wrapped, k) {
			spec.Query[k] = q[k]
		}
	}
	for _, w := range ws {
		s := Settings{Name: name, Values: url.Values{}, Env: env}
		for _, k := range w.Keys {
			if v, ok := q[k]; ok {
				s.Values[k] = v
			} else if v, ok := env.Defaults[k]; ok {
				s.Values[k] = v
			}
		}
		wrap, err := w.Parse(s)
		if err != nil {
			return NodeSpec{}, err
		}
		spec.wraps = append(spec.wraps, wrap)
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

// deriveSeed returns the seed of the node called name in a run seeded with
// seed: the same for the same pair, and different for nodes of one run, so
// they do not fail in lockstep.
func deriveSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() ^ seed
}

func quote(s string) string { return strconv.Quote(s) }
