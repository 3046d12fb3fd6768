package cli

import (
	"fmt"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kong"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// FaultFlags are the faults of the nodes rops runs itself: the local
// target's, and those rops serve serves. They are global flags, so that
// both read them the same way, and map one to one onto faults.Settings
// (named by faultFlag; TestFaultFlagsAreTheSettings keeps them so): kong
// reads flags from struct fields, so the table cannot make them, but it
// checks them.
type FaultFlags struct {
	RandomBehavior float64       `default:"0.2" help:"Local nodes fail each request with probability P (500 or 408), like the original's RANDOM_BEHAVIOR."`
	AmbiguousRate  float64       `default:"0" help:"Local nodes apply a request, then fail it anyway, with probability P (the acknowledgement is lost)."`
	Latency        time.Duration `default:"0s" help:"Local nodes delay every request by this much (at most 1h)."`
	Jitter         time.Duration `default:"0s" help:"Local nodes add a random delay of up to this much to every request (at most 1h)."`
	HangRate       float64       `default:"0" help:"Local nodes never answer a request, with probability P: only the client's timeout ends it."`
	Down           []string      `sep:"," placeholder:"NODE" help:"Local nodes that are down: they refuse every request, as a stopped server does."`
	LateRate       float64       `default:"0" help:"Local nodes apply a request only --late-delay after it arrived, once the client has given up, with probability P: it never answers."`
	LateDelay      time.Duration `default:"3s" help:"How long after arriving a late request is applied, and after the first a duplicate's second copy: more than 0 and less than 10m, the life of the tombstones that fence late writes."`
	ResetRate      float64       `default:"0" help:"Local nodes apply a request, then reset the connection with no answer, with probability P."`
	DuplicateRate  float64       `default:"0" help:"Local nodes apply a request twice, the second time --late-delay later, with probability P."`
	GatewayRate    float64       `default:"0" help:"Local nodes answer 502, 503 or 504 as a proxy in front of them would, with probability P, having passed half of those requests on."`
	BatchRate      float64       `default:"0" help:"Local nodes meet a transport fault on a whole batch (POST /batch) with probability P: reset before or after it is applied, applied --late-delay later and never answered, or applied twice."`
}

// faultFlagNames are the flags whose names are not their fault setting's key
// in kebab case: --random-behavior keeps the original's name.
var faultFlagNames = map[string]string{"error_rate": "random-behavior"}

// faultFlag returns the flag of the fault setting key, such as --hang-rate
// for hang_rate.
func faultFlag(key string) string {
	if name, ok := faultFlagNames[key]; ok {
		return "--" + name
	}
	return "--" + strings.ReplaceAll(key, "_", "-")
}

// isFaultFlag reports whether name (without --) is a fault flag's.
func isFaultFlag(name string) bool {
	return name == "down" || slices.ContainsFunc(faults.Settings(), func(s faults.Setting) bool { return faultFlag(s.Key) == "--"+name })
}

// validate checks the flags' ranges, naming the flag at fault: rates, then
// bounded durations, in the order of faults.Settings.
func (f *FaultFlags) validate() error {
	ff := f.faults()
	for _, s := range faults.Settings() {
		// Written so that NaN fails too.
		if r, ok := s.Value(ff).(float64); ok && !(r >= 0 && r <= 1) {
			return fmt.Errorf("%s %v is out of range: give a probability from 0 to 1", faultFlag(s.Key), r)
		}
	}
	for _, s := range faults.Settings() {
		if d, ok := s.Value(ff).(faults.Duration); ok && s.Max > 0 && (d < 0 || time.Duration(d) > s.Max) {
			return fmt.Errorf("%s %v is out of range: give a duration from 0 to %v, such as 15ms", faultFlag(s.Key), d, s.Max)
		}
	}
	// Checked even with --late-rate 0: --duplicate-rate uses it too, and
	// 0 is never what was meant.
	if f.LateDelay <= 0 {
		return fmt.Errorf("--late-delay %v is not positive: give a duration such as %v", f.LateDelay, faults.DefaultLateDelay)
	}
	if f.LateDelay >= core.DefaultTombstoneTTL {
		return fmt.Errorf("--late-delay %v is too long: give less than %v, the life of a tombstone, so that a late write lands while the tombstone that fences it still lives", f.LateDelay, core.DefaultTombstoneTTL)
	}
	// Caught above, unless faults.Faults has learned a new rule.
	return ff.Validate()
}

// faults returns the faults the flags give every local node; --down is
// per node (setDown).
func (f *FaultFlags) faults() faults.Faults {
	return faults.Faults{
		ErrorRate:     f.RandomBehavior,
		AmbiguousRate: f.AmbiguousRate,
		Latency:       faults.Duration(f.Latency),
		Jitter:        faults.Duration(f.Jitter),
		HangRate:      f.HangRate,
		LateRate:      f.LateRate,
		LateDelay:     faults.Duration(f.LateDelay),
		ResetRate:     f.ResetRate,
		DuplicateRate: f.DuplicateRate,
		GatewayRate:   f.GatewayRate,
		BatchRate:     f.BatchRate,
	}
}

// setDown takes down the nodes --down names, among ns. It fails if one is
// not among them, or is not a local node, whose faults rops controls.
func (f *FaultFlags) setDown(ns []core.Node) error {
	for _, name := range f.Down {
		i := slices.IndexFunc(ns, func(n core.Node) bool { return n.Name() == name })
		if i < 0 {
			names := make([]string, len(ns))
			for j, n := range ns {
				names[j] = n.Name()
			}
			return fmt.Errorf("--down %s: the target has no node %s; its nodes are %s", name, name, strings.Join(names, ", "))
		}
		fn, ok := faults.Faulty(ns[i])
		if !ok {
			return fmt.Errorf("--down %s: %s is not a local node; take a remote node down with its server's admin API", name, name)
		}
		faults := fn.Faults()
		faults.Down = true
		if err := fn.SetFaults(faults); err != nil {
			return err
		}
	}
	return nil
}

// defaultFaultFlags returns the fault flags as their defaults leave them.
// It is worked out on first use, not at start-up: building a kong parser
// costs about 0.3 ms, which every command, create-one among them, would pay.
var defaultFaultFlags = sync.OnceValue(func() FaultFlags {
	var d struct{ FaultFlags }
	k, err := kong.New(&d)
	if err == nil {
		_, err = k.Parse(nil)
	}
	if err != nil {
		panic(fmt.Sprintf("the fault flags' defaults do not parse: %v", err))
	}
	return d.FaultFlags
})

// changed returns the fault flags that differ from their defaults, as
// "--latency 5ms", followed by " (from ROPS_LATENCY)" when k's command line
// does not give it and so its environment variable did: a flag set to its
// default, by either, changes nothing and is not named.
func (f *FaultFlags) changed(k *kong.Context) []string {
	given := givenFlags(k)
	envs := map[string][]string{}
	for _, fl := range k.Model.Flags {
		envs["--"+fl.Name] = fl.Envs
	}
	from := func(flag string) string {
		if given[strings.TrimPrefix(flag, "--")] {
			return ""
		}
		for _, env := range envs[flag] {
			if _, ok := os.LookupEnv(env); ok {
				return " (from " + env + ")"
			}
		}
		return ""
	}
	// A fault differs from its default only if the command line or an
	// environment variable gave it: with neither, nothing changed, and
	// the defaults, which cost a parser of their own, are not worked out
	// (every command on a remote target asks).
	if len(f.Down) == 0 && !slices.ContainsFunc(faults.Settings(), func(s faults.Setting) bool {
		flag := faultFlag(s.Key)
		return given[strings.TrimPrefix(flag, "--")] || from(flag) != ""
	}) {
		return nil
	}
	defaults := defaultFaultFlags()
	ff, def := f.faults(), defaults.faults()
	var changed []string
	for _, s := range faults.Settings() {
		if v := s.Value(ff); !reflect.DeepEqual(v, s.Value(def)) {
			flag := faultFlag(s.Key)
			changed = append(changed, fmt.Sprintf("%s %v%s", flag, v, from(flag)))
		}
	}
	if len(f.Down) > 0 {
		changed = append(changed, "--down "+strings.Join(f.Down, ",")+from("--down"))
	}
	return changed
}

// refuseRemote refuses fault flags that differ from their defaults when
// every node of the target is remote (http or https): they apply to local
// nodes and to rops serve only, and would be ignored without a word.
func (f *FaultFlags) refuseRemote(k *kong.Context, target string, specs []string) error {
	if len(specs) == 0 || slices.ContainsFunc(specs, func(s string) bool { return !remoteSpec(s) }) {
		return nil
	}
	changed := f.changed(k)
	if len(changed) == 0 {
		return nil
	}
	return fmt.Errorf("%s: fault flags apply to local nodes and to rops serve, and the nodes of target %q are all remote: change a remote server's faults through its admin API (start it with rops serve --admin; rops check --chaos and --nemesis switch faults that way), or leave the flag out", strings.Join(changed, ", "), target)
}

// remoteSpec reports whether a node spec is a remote node's: http or https.
func remoteSpec(spec string) bool {
	u, err := url.Parse(strings.TrimSpace(spec))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}
