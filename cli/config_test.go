package cli

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
	}{
		{name: "lab", in: `{"targets": {"lab": {"nodes": ["http://127.0.0.1:9001/v1?node=node01"], "retries": 3, "concurrency": 4}}}`},
		{name: "unknown key of the file", in: "{\n\"target\": {\"lab\": {\"nodes\": [\"memory://n\"]}}}",
			err: `config lab.json:2: unknown key "target": a config's keys are targets; check its spelling`},
		{name: "unknown key of a target", in: "{\"targets\": {\"lab\": {\"nodes\": [\"memory://n\"],\n\n \"retry\": 3}}}",
			err: `config lab.json:3: target "lab": unknown key "retry": a target's keys are nodes, retries, concurrency, journal, admin_token_file, write_token_file, ca_file, cert_file, key_file; check its spelling`},
		{name: "key in another case", in: `{"Targets": {"lab": {"nodes": ["memory://n"]}}}`, err: `config lab.json:1: unknown key "Targets"`},
		{name: "line of a syntax error", in: "{\"targets\":\n {\"lab\": }}", err: `config lab.json is not valid at line 2: invalid character '}'`},
		{name: "not json", in: `targets: lab`, err: `is not valid`},
		{name: "no nodes", in: `{"targets": {"lab": {}}}`, err: `target "lab" has no nodes`},
		{name: "negative retries", in: `{"targets": {"lab": {"nodes": ["memory://n"], "retries": -1}}}`, err: `retries -1 is negative`},
		{name: "zero concurrency", in: `{"targets": {"lab": {"nodes": ["memory://n"], "concurrency": 0}}}`, err: `concurrency 0 is too small`},
		{name: "concurrency over the limit", in: `{"targets": {"lab": {"nodes": ["memory://n"], "concurrency": 5000}}}`, err: `target "lab": concurrency 5000 is over the limit of 1024`},
		{name: "port out of range", in: `{"targets": {"lab": {"nodes": ["http://127.0.0.1:9001/v1?node=node01", "http://127.0.0.1:99999/v1?node=node02"]}}}`,
			err: `target "lab": node http://127.0.0.1:99999/v1?node=node02: port 99999 is out of range: give 1 to 65535`},
		{name: "wrong type", in: `{"targets": {"lab": {"nodes": "memory://n"}}}`, err: `is not valid`},
		{name: "journal not a URL", in: `{"targets": {"lab": {"nodes": ["memory://n"], "journal": "127.0.0.1:2379"}}}`, err: `target "lab": journal "127.0.0.1:2379" is not a URL: write etcd://`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig([]byte(tc.in), "lab.json")
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				lab, err := c.target("lab")
				if err != nil || *lab.Retries != 3 || *lab.Concurrency != 4 {
					t.Fatalf("target lab = %+v, %v; want retries 3, concurrency 4", lab, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("parseConfig error = %v, want one saying %q", err, tc.err)
			}
		})
	}
}

func TestConfigTargets(t *testing.T) {
	c, err := parseConfig([]byte(`{"targets": {"remote": {"nodes": ["http://127.0.0.1:9/v1?node=a"]}}}`), "c.json")
	if err != nil {
		t.Fatal(err)
	}
	// A config's target overrides the built-in of the same name.
	if r, _ := c.target("remote"); len(r.Nodes) != 1 {
		t.Fatalf("remote = %v, want the config's one node", r.Nodes)
	}
	if l, _ := c.target("local"); len(l.Nodes) != 3 {
		t.Fatalf("local = %v, want the three built-in nodes", l.Nodes)
	}
	if _, err := c.target("lab"); err == nil || !strings.Contains(err.Error(), "the targets are local, remote") {
		t.Fatalf("unknown target error = %v", err)
	}
	// A config that defines no target says so, not to define more in one.
	c, err = parseConfig([]byte(`{"targets": {}}`), "c.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.target("lab"); err == nil || !strings.HasSuffix(err.Error(), `the targets are local, remote; config c.json defines none: name them under "targets"`) {
		t.Fatalf("unknown target error = %v", err)
	}
}

// FuzzParseConfig: any file gives a config or a clear error, never a panic,
// and an accepted config has nodes in every target.
func FuzzParseConfig(f *testing.F) {
	f.Add(`{"targets": {"lab": {"nodes": ["memory://n"], "retries": 1}}}`)
	f.Add(`{"targets": {"": {"nodes": []}}}`)
	f.Add(`[1, 2]`)
	f.Add("{\n\"target\": {\"lab\": {\"nodes\": [\"memory://n\"]}}}")
	f.Add(`{"targets": {"lab": {"nodes": ["memory://n"], "retry": 3}}}`)
	f.Add(`{"targets": {"lab": null, "x": {"nodes": ["memory://n"], "Nodes": []}}, "notes": {}}`)
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseConfig([]byte(in), "fuzz.json")
		if err != nil {
			return
		}
		for name, tc := range c.Targets {
			if len(tc.Nodes) == 0 {
				t.Fatalf("accepted target %q with no nodes", name)
			}
		}
	})
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{"lab": "lab", "..": "__", "a/b": "a_b", "lab-2_x": "lab-2_x", "é": "_"} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}
