package faults_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

func TestFaultsValidate(t *testing.T) {
	ms := faults.Duration(time.Millisecond)
	hour := faults.Duration(faults.MaxDelay)
	ttl := faults.Duration(core.DefaultTombstoneTTL)
	for _, tc := range []struct {
		name   string
		faults faults.Faults
		field  string // named in the error; "" means valid
	}{
		{"zero", faults.Faults{}, ""},
		{"limits", faults.Faults{ErrorRate: 1, AmbiguousRate: 1, HangRate: 1, Latency: ms, Jitter: ms, Down: true,
			LateRate: 1, LateDelay: ms, ResetRate: 1, DuplicateRate: 1, GatewayRate: 1}, ""},
		{"longest delays", faults.Faults{Latency: hour, Jitter: hour, LateRate: 1, LateDelay: ttl - 1}, ""},
		{"duplicate without late delay", faults.Faults{DuplicateRate: 0.5}, ""},
		{"late delay without late rate", faults.Faults{LateDelay: ms}, ""},
		{"error rate negative", faults.Faults{ErrorRate: -0.1}, "error_rate"},
		{"error rate above one", faults.Faults{ErrorRate: 1.5}, "error_rate"},
		{"error rate NaN", faults.Faults{ErrorRate: math.NaN()}, "error_rate"},
		{"ambiguous rate above one", faults.Faults{AmbiguousRate: 2}, "ambiguous_rate"},
		{"hang rate negative", faults.Faults{HangRate: -1}, "hang_rate"},
		{"latency negative", faults.Faults{Latency: -ms}, "latency"},
		{"jitter negative", faults.Faults{Jitter: -ms}, "jitter"},
		{"latency of 1000h", faults.Faults{Latency: 1000 * hour}, "latency"},
		{"jitter over an hour", faults.Faults{Jitter: hour + 1}, "jitter"},
		{"late rate above one", faults.Faults{LateRate: 1.1, LateDelay: ms}, "late_rate"},
		{"late rate NaN", faults.Faults{LateRate: math.NaN()}, "late_rate"},
		{"late rate without delay", faults.Faults{LateRate: 0.1}, "late_delay"},
		{"late delay negative", faults.Faults{LateDelay: -ms}, "late_delay"},
		{"late delay outlives tombstones", faults.Faults{LateRate: 0.1, LateDelay: ttl}, "late_delay"},
		{"duplicate delay outlives tombstones", faults.Faults{DuplicateRate: 0.1, LateDelay: ttl}, "late_delay"},
		{"reset rate negative", faults.Faults{ResetRate: -0.5}, "reset_rate"},
		{"duplicate rate above one", faults.Faults{DuplicateRate: 2}, "duplicate_rate"},
		{"gateway rate NaN", faults.Faults{GatewayRate: math.NaN()}, "gateway_rate"},
		{"batch rate above one", faults.Faults{BatchRate: 1.5}, "batch_rate"},
		{"batch rate negative", faults.Faults{BatchRate: -0.1}, "batch_rate"},
		{"batch rate NaN", faults.Faults{BatchRate: math.NaN()}, "batch_rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.faults.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate()=%v, want nil", err)
				}
				return
			}
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("ErrorCode(Validate())=%q, want %q (err=%v)", got, want, err)
			}
			if !strings.Contains(err.Error(), tc.field+" is") {
				t.Fatalf("Validate()=%q, want it to name %s", err, tc.field)
			}
		})
	}
}

// TestFaultsValidateMessages checks that the errors say what to give and,
// for the late delay's bound, why.
func TestFaultsValidateMessages(t *testing.T) {
	for _, tc := range []struct {
		faults faults.Faults
		want   string
	}{
		{faults.Faults{Latency: faults.Duration(1000 * time.Hour)}, "latency is 1000h0m0s; give at most 1h0m0s"},
		{faults.Faults{LateRate: 0.1}, "late_delay is 0s with late_rate 0.1; give how late a late request is applied, such as 3s"},
		{faults.Faults{LateRate: 0.1, LateDelay: faults.Duration(time.Hour)},
			"late_delay is 1h0m0s; give less than 10m0s, the life of a tombstone: a late write must land while the tombstone that fences it still lives"},
	} {
		if err := tc.faults.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%v)=%v, want it to say %q", tc.faults, err, tc.want)
		}
	}
}

func TestFaultsString(t *testing.T) {
	f := faults.Faults{ErrorRate: 0.2, LateRate: 0.1, LateDelay: faults.Duration(3 * time.Second), GatewayRate: 0.05}
	if got, want := f.String(), "error_rate=0.2 ambiguous_rate=0 latency=0s jitter=0s hang_rate=0 down=false late_rate=0.1 late_delay=3s reset_rate=0 duplicate_rate=0 gateway_rate=0.05 batch_rate=0"; got != want {
		t.Fatalf("String()=%q, want %q", got, want)
	}
}

func TestFaultsJSON(t *testing.T) {
	f := faults.Faults{ErrorRate: 0.2, Latency: faults.Duration(15 * time.Millisecond), Down: true,
		LateRate: 0.1, LateDelay: faults.Duration(3 * time.Second), ResetRate: 0.2, DuplicateRate: 0.3, GatewayRate: 0.4, BatchRate: 0.5}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"error_rate":0.2,"ambiguous_rate":0,"latency":"15ms","jitter":"0s","hang_rate":0,"down":true,`+
		`"late_rate":0.1,"late_delay":"3s","reset_rate":0.2,"duplicate_rate":0.3,"gateway_rate":0.4,"batch_rate":0.5}`; got != want {
		t.Fatalf("json.Marshal=%s, want %s", got, want)
	}
	var back faults.Faults
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := back, f; got != want {
		t.Fatalf("round trip=%+v, want %+v", got, want)
	}
}

func TestFaultsUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    faults.Faults
		wantErr bool
	}{
		{"durations", `{"latency":"1.5s","jitter":"3ms"}`, faults.Faults{Latency: faults.Duration(1500 * time.Millisecond), Jitter: faults.Duration(3 * time.Millisecond)}, false},
		{"partial", `{"hang_rate":0.5}`, faults.Faults{HangRate: 0.5}, false},
		{"new faults", `{"late_rate":0.5,"late_delay":"2.5s","reset_rate":0.1,"duplicate_rate":0.2,"gateway_rate":0.3}`,
			faults.Faults{LateRate: 0.5, LateDelay: faults.Duration(2500 * time.Millisecond), ResetRate: 0.1, DuplicateRate: 0.2, GatewayRate: 0.3}, false},
		{"late delay no unit", `{"late_delay":"3"}`, faults.Faults{}, true},
		{"no unit", `{"latency":"15"}`, faults.Faults{}, true},
		{"number", `{"latency":15}`, faults.Faults{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got faults.Faults
			err := json.Unmarshal([]byte(tc.in), &got)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("json.Unmarshal(%s)=%+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("json.Unmarshal(%s)=%+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestDurationUnmarshalTextError(t *testing.T) {
	var d faults.Duration
	err := d.UnmarshalText([]byte("soon"))
	if !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("UnmarshalText(soon)=%v, want an EInvalid error", err)
	}
	if !strings.Contains(err.Error(), "such as 15ms") {
		t.Fatalf("UnmarshalText(soon)=%q, want it to give an example", err)
	}
}
