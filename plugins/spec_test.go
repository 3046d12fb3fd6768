package plugins_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
	"github.com/reliable-ops/rops/drivers/memory"
	"github.com/reliable-ops/rops/plugins"
)

func TestParseNodeSpec(t *testing.T) {
	ms := faults.Duration(time.Millisecond)
	base := faults.Faults{ErrorRate: 0.2, Latency: 5 * ms}
	env := plugins.Env{Seed: 42, Defaults: base.Values()}
	for _, tc := range []struct {
		name       string
		spec       string
		driverKeys []string
		wantName   string
		want       faults.Faults
		wantQuery  url.Values
	}{
		{name: "bare", spec: "memory://node01", wantName: "node01", want: base},
		{name: "trailing slash", spec: "memory://node01/", wantName: "node01", want: base},
		{name: "name characters", spec: "memory://Node-1_a.b", wantName: "Node-1_a.b", want: base},
		{name: "one override keeps the rest", spec: "memory://node01?ambiguous_rate=0.1",
			wantName: "node01", want: faults.Faults{ErrorRate: 0.2, AmbiguousRate: 0.1, Latency: 5 * ms}},
		{name: "explicit zero overrides", spec: "memory://node01?error_rate=0&latency=0s",
			wantName: "node01", want: faults.Faults{}},
		{name: "every setting", spec: "memory://node01?error_rate=0.3&ambiguous_rate=0.1&hang_rate=0.05&latency=15ms&jitter=2ms&down=true&seed=7",
			wantName: "node01", want: faults.Faults{ErrorRate: 0.3, AmbiguousRate: 0.1, HangRate: 0.05, Latency: 15 * ms, Jitter: 2 * ms, Down: true}},
		{name: "down alone", spec: "memory://node01?down", wantName: "node01",
			want: faults.Faults{ErrorRate: 0.2, Latency: 5 * ms, Down: true}},
		{name: "down false", spec: "memory://node01?down=false", wantName: "node01", want: base},
		{name: "new faults", spec: "memory://node01?late_rate=0.1&late_delay=3s&reset_rate=0.2&duplicate_rate=0.3&gateway_rate=0.4",
			wantName: "node01", want: faults.Faults{ErrorRate: 0.2, Latency: 5 * ms,
				LateRate: 0.1, LateDelay: 3000 * ms, ResetRate: 0.2, DuplicateRate: 0.3, GatewayRate: 0.4}},
		{name: "driver key", spec: "badger://node01?dir=/tmp/x&error_rate=0.5", driverKeys: []string{"dir"},
			wantName: "node01", want: faults.Faults{ErrorRate: 0.5, Latency: 5 * ms}, wantQuery: url.Values{"dir": {"/tmp/x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := plugins.ParseNodeSpec(u, env, tc.driverKeys...)
			if err != nil {
				t.Fatalf("ParseNodeSpec(%s): %v", tc.spec, err)
			}
			if got.Name != tc.wantName {
				t.Fatalf("Name=%q, want %q", got.Name, tc.wantName)
			}
			if got, want := got.Query.Encode(), tc.wantQuery.Encode(); got != want {
				t.Fatalf("Query=%s, want %s", got, want)
			}
			n, c := got.New(memory.New(), nil)
			defer c.Close()
			fn, ok := faults.Faulty(n)
			if !ok {
				t.Fatalf("New gave a %T, want the faults' wrapper", n)
			}
			if got := fn.Faults(); got != tc.want {
				t.Fatalf("Faults=%v, want %v", got, tc.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	env := plugins.Env{Seed: 1}
	for _, tc := range []struct {
		name string
		spec string
		want string // part of the message
	}{
		{"empty", "", "empty node spec: write SCHEME://NAME"},
		{"blank", "   ", "empty node spec"},
		{"no scheme", "node01", `node spec "node01" has no scheme: write SCHEME://NAME, such as memory://node01 (known schemes are `},
		{"unknown scheme", "badgr://node01", `unknown scheme "badgr" in node spec "badgr://node01": known schemes are ` + strings.Join(plugins.Schemes(), ", ")},
		{"not a URL", "://node01", `node spec "://node01" is not a URL (missing protocol scheme)`},
		{"bad host escape", "memory://no%zzde", "is not a URL"},
		{"opaque", "memory:node01", "write the node name after '//': memory://node01"},
		{"no name", "memory://", "no node name: write memory://NAME?key=value&..., such as memory://node01"},
		{"no name with settings", "memory://?seed=1", "no node name"},
		{"port", "memory://node01:80", `invalid node name "node01:80": ':' at byte 6 is not allowed`},
		{"user", "memory://me@node01", "takes no user"},
		{"path", "memory://node01/data", `unexpected path "/data"`},
		{"fragment", "memory://node01#x", `unexpected fragment "#x"`},
		{"long name", "memory://" + strings.Repeat("n", plugins.MaxNodeNameLen+1), "bytes long: the limit is 64"},
		{"unknown setting", "memory://node01?colour=red", `unknown setting "colour": memory nodes take error_rate, ambiguous_rate, latency, jitter, hang_rate, down, late_rate, late_delay, reset_rate, duplicate_rate, gateway_rate, batch_rate, seed`},
		{"dir is badger's", "memory://node01?dir=/tmp", `unknown setting "dir"`},
		{"repeated setting", "memory://node01?seed=1&seed=2", `setting "seed" is given 2 times`},
		{"bad query escape", "memory://node01?error_rate=%zz", "cannot read the settings after '?'"},
		{"rate not a number", "memory://node01?error_rate=lots", "error_rate=lots is not a number: give a probability from 0 to 1, such as error_rate=0.2"},
		{"rate out of range", "memory://node01?hang_rate=1.5", "hang_rate is 1.5; give a probability from 0 to 1"},
		{"rate NaN", "memory://node01?ambiguous_rate=NaN", "ambiguous_rate is NaN"},
		{"duration without unit", "memory://node01?latency=15", "latency=15 is not a duration: give a number with a unit, such as latency=15ms"},
		{"negative duration", "memory://node01?jitter=-1s", "jitter is -1s; give a duration of 0 or more"},
		{"bad bool", "memory://node01?down=maybe", "down=maybe is not true or false"},
		{"late rate out of range", "memory://node01?late_rate=2&late_delay=1s", "late_rate is 2; give a probability from 0 to 1"},
		{"late rate without delay", "memory://node01?late_rate=0.5", "late_delay is 0s with late_rate 0.5"},
		{"late delay without unit", "memory://node01?late_delay=3", "late_delay=3 is not a duration"},
		{"late delay outlives tombstones", "memory://node01?late_rate=0.5&late_delay=1h", "a late write must land while the tombstone that fences it still lives"},
		{"reset rate not a number", "memory://node01?reset_rate=often", "reset_rate=often is not a number"},
		{"duplicate rate negative", "memory://node01?duplicate_rate=-0.1", "duplicate_rate is -0.1"},
		{"gateway rate out of range", "memory://node01?gateway_rate=1.01", "gateway_rate is 1.01"},
		{"latency of 1000h", "memory://node01?latency=1000h", "latency is 1000h0m0s; give at most 1h0m0s"},
		{"bad seed", "memory://node01?seed=-1", "seed=-1 is not a seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, c, err := plugins.Open(t.Context(), tc.spec, env)
			if err == nil {
				if c != nil {
					c.Close()
				}
				t.Fatalf("Open(%q)=%s, want an error", tc.spec, n.Name())
			}
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("ErrorCode=%q, want %q (err=%v)", got, want, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q)=%q, want it to contain %q", tc.spec, err, tc.want)
			}
			if spec := strings.TrimSpace(tc.spec); spec != "" && !strings.Contains(err.Error(), plugins.Quote(spec)) {
				t.Fatalf("Open(%q)=%q, want it to name the spec", tc.spec, err)
			}
		})
	}
}

func TestEnvDefaultsInvalid(t *testing.T) {
	bad := faults.Faults{ErrorRate: 2}.Values()
	_, _, err := plugins.Open(t.Context(), "memory://node01", plugins.Env{Defaults: bad})
	if got, want := core.ErrorCode(err), core.EInvalid; got != want {
		t.Fatalf("ErrorCode=%q, want %q (err=%v)", got, want, err)
	}
	// A spec can fix what env got wrong.
	if _, _, err := plugins.Open(t.Context(), "memory://node01?error_rate=0.2", plugins.Env{Defaults: bad}); err != nil {
		t.Fatalf("Open with an override of a bad env: %v", err)
	}
	// A default no wrapper reads is a program's mistake, refused.
	_, _, err = plugins.Open(t.Context(), "memory://node01", plugins.Env{Defaults: url.Values{"colour": {"red"}}})
	if got, want := fmt.Sprint(err), `default setting "colour" is one that no registered wrapper reads`; !strings.Contains(got, want) {
		t.Fatalf("err=%q, want it to contain %q", got, want)
	}
}

func TestDeriveSeed(t *testing.T) {
	if got, want := plugins.DeriveSeed(1, "node01"), plugins.DeriveSeed(1, "node01"); got != want {
		t.Fatalf("deriveSeed(1, node01) gave %d then %d", got, want)
	}
	seen := map[uint64]string{}
	for _, seed := range []uint64{0, 1, 2, 42} {
		for _, name := range []string{"node01", "node02", "node03"} {
			s := plugins.DeriveSeed(seed, name)
			if prev, dup := seen[s]; dup {
				t.Fatalf("deriveSeed(%d, %s)=%d, the same as for %s", seed, name, s, prev)
			}
			seen[s] = name
		}
	}
}

func TestValidateNodeName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		valid bool
	}{
		{"node01", true},
		{"a", true},
		{"A.b-c_9", true},
		{strings.Repeat("n", plugins.MaxNodeNameLen), true},
		{"", false},
		{strings.Repeat("n", plugins.MaxNodeNameLen+1), false},
		{"node 01", false},
		{"node/01", false},
		{"nöde", false},
		{"node:1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := plugins.ValidateNodeName(tc.name)
			if got, want := err == nil, tc.valid; got != want {
				t.Fatalf("ValidateNodeName(%q)=%v, want valid=%v", tc.name, err, want)
			}
			if err != nil && core.ErrorCode(err) != core.EInvalid {
				t.Fatalf("ValidateNodeName(%q)=%v, want EInvalid", tc.name, err)
			}
		})
	}
}
