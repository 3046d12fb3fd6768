package faults_test

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// sample is a value of each kind that no setting has by default, written as
// a spec writes it.
var sample = map[faults.Kind]string{faults.KindRate: "0.25", faults.KindDuration: "7ms", faults.KindBool: "true"}

// TestSettingsAreTheFields checks that the table holds every field of
// Faults once, in JSON's order and under JSON's names, and that each
// setting reaches its own field and no other: through Set, Value, String,
// JSON and Values.
func TestSettingsAreTheFields(t *testing.T) {
	b, err := json.Marshal(faults.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	// The keys of the JSON object, in order.
	var jsonKeys []string
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		jsonKeys = append(jsonKeys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for _, s := range faults.Settings() {
		keys = append(keys, s.Key)
	}
	if !slices.Equal(keys, jsonKeys) {
		t.Fatalf("setting keys %v, want JSON's %v", keys, jsonKeys)
	}

	for _, s := range faults.Settings() {
		t.Run(s.Key, func(t *testing.T) {
			v, ok := sample[s.Kind]
			if !ok {
				t.Fatalf("kind %d has no sample", s.Kind)
			}
			var f faults.Faults
			if err := s.Set(&f, v); err != nil {
				t.Fatalf("Set(%s)=%v", v, err)
			}
			if f == (faults.Faults{}) {
				t.Fatalf("Set(%s) changed no field", v)
			}
			for _, o := range faults.Settings() {
				if changed := o.Value(f) != o.Value(faults.Faults{}); changed != (o.Key == s.Key) {
					t.Fatalf("Set(%s) changed %s: %v", v, o.Key, changed)
				}
			}
			if got, want := f.String(), s.Key+"="+v; !strings.Contains(" "+got+" ", " "+want+" ") {
				t.Fatalf("String()=%q, want it to hold %s", got, want)
			}
			if got, want := f.Values().Get(s.Key), v; got != want {
				t.Fatalf("Values()[%s]=%q, want %q", s.Key, got, want)
			}
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			var back faults.Faults
			if err := json.Unmarshal(b, &back); err != nil || back != f {
				t.Fatalf("JSON %s read back as %v (%v), want %v", b, back, err, f)
			}
		})
	}
}

// TestSettingsKinds pins the kind and bound of each setting, so that a
// change of a field's type or tag shows.
func TestSettingsKinds(t *testing.T) {
	var got []string
	for _, s := range faults.Settings() {
		kind := map[faults.Kind]string{faults.KindRate: "rate", faults.KindDuration: "duration", faults.KindBool: "bool"}[s.Kind]
		if s.Max > 0 {
			kind += "<=" + s.Max.String()
		}
		got = append(got, s.Key+":"+kind)
	}
	want := "error_rate:rate ambiguous_rate:rate latency:duration<=1h0m0s jitter:duration<=1h0m0s hang_rate:rate down:bool " +
		"late_rate:rate late_delay:duration reset_rate:rate duplicate_rate:rate gateway_rate:rate batch_rate:rate"
	if got := strings.Join(got, " "); got != want {
		t.Fatalf("settings:\n%s\nwant\n%s", got, want)
	}
}

// TestValuesRoundTrip checks that Values writes faults that Set reads back
// exactly, even at the extremes of each kind.
func TestValuesRoundTrip(t *testing.T) {
	for _, f := range []faults.Faults{
		{},
		{ErrorRate: 0.1, AmbiguousRate: 1e-300, Latency: faults.Duration(1500 * time.Nanosecond), Jitter: faults.Duration(math.MaxInt64),
			HangRate: math.Inf(1), Down: true, LateRate: -0.3, LateDelay: faults.Duration(math.MinInt64), ResetRate: 1 / 3.0, DuplicateRate: math.SmallestNonzeroFloat64, GatewayRate: 1},
	} {
		var back faults.Faults
		for _, s := range faults.Settings() {
			if err := s.Set(&back, f.Values().Get(s.Key)); err != nil {
				t.Fatalf("%s: %v", s.Key, err)
			}
		}
		if back != f {
			t.Fatalf("Values()=%v read back as %v, want %v", f.Values(), back, f)
		}
	}
}

func TestSettingSetErrors(t *testing.T) {
	byKey := map[string]faults.Setting{}
	for _, s := range faults.Settings() {
		byKey[s.Key] = s
	}
	for _, tc := range []struct {
		key, v, want string
	}{
		{"error_rate", "lots", "error_rate=lots is not a number: give a probability from 0 to 1, such as error_rate=0.2"},
		{"latency", "15", "latency=15 is not a duration: give a number with a unit, such as latency=15ms"},
		{"down", "maybe", "down=maybe is not true or false"},
	} {
		f := faults.Faults{ErrorRate: 0.5}
		err := byKey[tc.key].Set(&f, tc.v)
		if got := core.ErrorCode(err); got != core.EInvalid {
			t.Fatalf("Set(%s=%s)=%v, want EInvalid", tc.key, tc.v, err)
		}
		if got, want := err.Error(), tc.want; got != want {
			t.Fatalf("Set(%s=%s)=%q, want %q", tc.key, tc.v, got, want)
		}
		if got, want := f, (faults.Faults{ErrorRate: 0.5}); got != want {
			t.Fatalf("a failed Set changed the faults to %v", got)
		}
	}
	var f faults.Faults
	if err := byKey["down"].Set(&f, ""); err != nil || !f.Down {
		t.Fatalf(`Set(down="")=%v, Down=%v, want a switch turned on`, err, f.Down)
	}
}
