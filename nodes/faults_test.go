package nodes_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/nodes"
)

func TestFaultsValidate(t *testing.T) {
	ms := nodes.Duration(time.Millisecond)
	for _, tc := range []struct {
		name   string
		faults nodes.Faults
		field  string // named in the error; "" means valid
	}{
		{"zero", nodes.Faults{}, ""},
		{"limits", nodes.Faults{ErrorRate: 1, AmbiguousRate: 1, HangRate: 1, Latency: ms, Jitter: ms, Down: true}, ""},
		{"error rate negative", nodes.Faults{ErrorRate: -0.1}, "error_rate"},
		{"error rate above one", nodes.Faults{ErrorRate: 1.5}, "error_rate"},
		{"error rate NaN", nodes.Faults{ErrorRate: math.NaN()}, "error_rate"},
		{"ambiguous rate above one", nodes.Faults{AmbiguousRate: 2}, "ambiguous_rate"},
		{"hang rate negative", nodes.Faults{HangRate: -1}, "hang_rate"},
		{"latency negative", nodes.Faults{Latency: -ms}, "latency"},
		{"jitter negative", nodes.Faults{Jitter: -ms}, "jitter"},
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

func TestFaultsJSON(t *testing.T) {
	f := nodes.Faults{ErrorRate: 0.2, Latency: nodes.Duration(15 * time.Millisecond), Down: true}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"error_rate":0.2,"ambiguous_rate":0,"latency":"15ms","jitter":"0s","hang_rate":0,"down":true}`; got != want {
		t.Fatalf("json.Marshal=%s, want %s", got, want)
	}
	var back nodes.Faults
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
		want    nodes.Faults
		wantErr bool
	}{
		{"durations", `{"latency":"1.5s","jitter":"3ms"}`, nodes.Faults{Latency: nodes.Duration(1500 * time.Millisecond), Jitter: nodes.Duration(3 * time.Millisecond)}, false},
		{"partial", `{"hang_rate":0.5}`, nodes.Faults{HangRate: 0.5}, false},
		{"no unit", `{"latency":"15"}`, nodes.Faults{}, true},
		{"number", `{"latency":15}`, nodes.Faults{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got nodes.Faults
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
	var d nodes.Duration
	err := d.UnmarshalText([]byte("soon"))
	if !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("UnmarshalText(soon)=%v, want an EInvalid error", err)
	}
	if !strings.Contains(err.Error(), "such as 15ms") {
		t.Fatalf("UnmarshalText(soon)=%q, want it to give an example", err)
	}
}
