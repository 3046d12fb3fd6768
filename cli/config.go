package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Config is the --config file: named targets.
//
//	{"targets": {"lab": {"nodes": ["http://127.0.0.1:9001/v1?node=node01", ...],
//	                     "retries": 10, "concurrency": 16}}}
//
// Keys rops does not know are allowed, so a file can carry notes or settings
// of other tools.
type Config struct {
	Targets map[string]TargetConfig `json:"targets"`

	// remote is the base URL of the built-in remote target (--remote);
	// empty, defaultRemote.
	remote string
}

// TargetConfig is one named target.
type TargetConfig struct {
	// Nodes are node specs such as http://host:port/v1?node=node01,
	// badger://node01?error_rate=0.2 or memory://node01.
	Nodes []string `json:"nodes"`
	// Retries and Concurrency are used unless the flags are given.
	Retries     *int `json:"retries,omitempty"`
	Concurrency *int `json:"concurrency,omitempty"`
	// Journal, such as etcd://HOST:PORT/PREFIX, is where the target's
	// journal and locks live unless --journal is given; empty, the local
	// journal under --data.
	Journal string `json:"journal,omitempty"`
	// CAFile, CertFile and KeyFile are the TLS files of the target's
	// https:// nodes (see ClientTLSFlags), relative to the config file's
	// directory; the flags override them.
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

// builtinTargets are the targets every config has: the local cluster and
// the nodes `rops serve` serves by default.
var builtinTargets = map[string]TargetConfig{
	"local":  {Nodes: []string{"badger://node01", "badger://node02", "badger://node03"}},
	"remote": {Nodes: remoteNodes(defaultRemote)},
}

// loadConfig reads a config file; an empty name gives no extra targets.
func loadConfig(name string) (Config, error) {
	if name == "" {
		return Config{}, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config: %w", err)
	}
	return parseConfig(data, name)
}

// parseConfig decodes and checks a config file's contents.
func parseConfig(data []byte, name string) (Config, error) {
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("config %s is not valid: %v; it is JSON like {\"targets\": {\"lab\": {\"nodes\": [\"http://127.0.0.1:9001/v1?node=node01\"]}}}", name, err)
	}
	for _, tname := range slices.Sorted(maps.Keys(c.Targets)) {
		t := c.Targets[tname]
		switch {
		case strings.TrimSpace(tname) == "":
			return Config{}, fmt.Errorf("config %s: a target has an empty name", name)
		case len(t.Nodes) == 0:
			return Config{}, fmt.Errorf("config %s: target %q has no nodes: list node specs under \"nodes\"", name, tname)
		case t.Retries != nil && *t.Retries < 0:
			return Config{}, fmt.Errorf("config %s: target %q: retries %d is negative", name, tname, *t.Retries)
		case t.Journal != "" && !strings.Contains(t.Journal, "://"):
			return Config{}, fmt.Errorf("config %s: target %q: journal %q is not a URL: write etcd://HOST:PORT[,HOST:PORT...]/PREFIX, or leave it out for the local journal", name, tname, t.Journal)
		}
		for _, spec := range t.Nodes {
			if err := checkAddress(spec); err != nil {
				return Config{}, fmt.Errorf("config %s: target %q: node %s: %w", name, tname, spec, err)
			}
		}
		if t.Concurrency != nil {
			if err := checkConcurrency(*t.Concurrency); err != nil {
				return Config{}, fmt.Errorf("config %s: target %q: concurrency %w", name, tname, err)
			}
		}
	}
	return c, nil
}

// checkAddress says what is wrong with the address of a node spec, if
// anything: a port that no dial could reach would otherwise be retried as
// a server that is down. The rest of the spec is its driver's to check.
func checkAddress(spec string) error {
	u, err := url.Parse(strings.TrimSpace(spec))
	if err != nil || u.Port() == "" {
		return nil
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %s is out of range: give 1 to 65535", u.Port())
	}
	return nil
}

// target returns the named target: from the config first, else built in.
func (c Config) target(name string) (TargetConfig, error) {
	if t, ok := c.Targets[name]; ok {
		return t, nil
	}
	if name == "remote" && c.remote != "" {
		return TargetConfig{Nodes: remoteNodes(c.remote)}, nil
	}
	if t, ok := builtinTargets[name]; ok {
		return t, nil
	}
	known := slices.Sorted(maps.Keys(builtinTargets))
	for n := range c.Targets {
		known = append(known, n)
	}
	slices.Sort(known)
	hint := ""
	if len(c.Targets) == 0 {
		hint = "; define more in a --config file"
	}
	return TargetConfig{}, fmt.Errorf("unknown target %q: the targets are %s%s", name, strings.Join(known, ", "), hint)
}
