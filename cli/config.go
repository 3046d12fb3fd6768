package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Config is the --config file: named targets.
//
//	{"targets": {"lab": {"nodes": ["http://127.0.0.1:9001/v1?node=node01", ...],
//	                     "retries": 10, "concurrency": 16}}}
//
// A key rops does not know, at any level, is refused, naming it and its
// line: a misspelt key ("target", "retry") would otherwise be ignored
// without a word.
type Config struct {
	Targets map[string]TargetConfig `json:"targets"`

	// remote is the base URL of the built-in remote target (--remote);
	// empty, defaultRemote.
	remote string
	// name is the file the config was read from; empty, none.
	name string
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
	// AdminTokenFile and WriteTokenFile name files holding the tokens
	// sent to the target's servers, relative to the config file, unless
	// --admin-token-file and --write-token-file (or ROPS_ADMIN_TOKEN and
	// ROPS_WRITE_TOKEN) are given: the admin token to their admin API
	// (check --chaos and --nemesis), the write token with every request.
	AdminTokenFile string `json:"admin_token_file,omitempty"`
	WriteTokenFile string `json:"write_token_file,omitempty"`
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

// loadConfig reads a config file. An empty name reads the default one,
// defaultConfig's; where there is none, it gives no extra targets.
func loadConfig(name string) (Config, error) {
	if name != "" {
		data, err := os.ReadFile(name)
		if err != nil {
			return Config{}, fmt.Errorf("cannot read config: %w", err)
		}
		return parseConfig(data, name)
	}
	name = defaultConfig()
	if name == "" {
		return Config{}, nil
	}
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config: %w (rops reads it when --config is not given)", err)
	}
	c, err := parseConfig(data, name)
	if err != nil {
		return Config{}, fmt.Errorf("%w (rops reads this file when --config is not given)", err)
	}
	return c, nil
}

// defaultConfig returns the config file read when --config is not given:
// rops/config.json under $XDG_CONFIG_HOME, else under the user's config
// directory (os.UserConfigDir: ~/.config on Linux); empty if there is no
// such directory.
func defaultConfig() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		var err error
		if dir, err = os.UserConfigDir(); err != nil {
			return ""
		}
	}
	return filepath.Join(dir, "rops", "config.json")
}

// parseConfig decodes and checks a config file's contents.
func parseConfig(data []byte, name string) (Config, error) {
	c := Config{name: name}
	if err := json.Unmarshal(data, &c); err != nil {
		at := ""
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			at = fmt.Sprintf(" at line %d", lineAt(data, syntax.Offset))
		case errors.As(err, &typ):
			at = fmt.Sprintf(" at line %d", lineAt(data, typ.Offset))
		}
		return Config{}, fmt.Errorf("config %s is not valid%s: %v; it is JSON like {\"targets\": {\"lab\": {\"nodes\": [\"http://127.0.0.1:9001/v1?node=node01\"]}}}", name, at, err)
	}
	if err := checkKeys(data, name); err != nil {
		return Config{}, err
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

// checkKeys refuses the first key of a config file, at any level, that
// Config does not know, naming the file, the line and the keys there are.
// It is called once json.Unmarshal has accepted data, so every value is of
// its field's type.
func checkKeys(data []byte, name string) error {
	d := json.NewDecoder(bytes.NewReader(data))
	unknown := func(where, key, whose string, known []string) error {
		return fmt.Errorf("config %s:%d: %sunknown key %q: %s keys are %s; check its spelling", name, lineAt(data, d.InputOffset()), where, key, whose, strings.Join(known, ", "))
	}
	fileKeys, targetKeys := jsonKeys(reflect.TypeFor[Config]()), jsonKeys(reflect.TypeFor[TargetConfig]())
	return eachKey(d, func(key string) error {
		if !slices.Contains(fileKeys, key) {
			return unknown("", key, "a config's", fileKeys)
		}
		// The one key of the file: "targets", an object of targets.
		return eachKey(d, func(tname string) error {
			return eachKey(d, func(key string) error {
				if !slices.Contains(targetKeys, key) {
					return unknown(fmt.Sprintf("target %q: ", tname), key, "a target's", targetKeys)
				}
				var skip json.RawMessage
				return d.Decode(&skip)
			})
		})
	})
}

// eachKey reads an object, or null, from d and calls f with each key; f
// must read the key's value.
func eachKey(d *json.Decoder, f func(key string) error) error {
	t, err := d.Token()
	if err != nil || t != json.Delim('{') {
		return err // null
	}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return err
		}
		if err := f(t.(string)); err != nil {
			return err
		}
	}
	_, err = d.Token() // }
	return err
}

// jsonKeys returns the JSON keys of struct type t's exported fields, as
// encoding/json names them.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		keys = append(keys, cmp.Or(name, f.Name))
	}
	return keys
}

// lineAt returns the line, from 1, of the byte at offset in data.
func lineAt(data []byte, offset int64) int {
	offset = min(max(offset, 0), int64(len(data)))
	return 1 + bytes.Count(data[:offset], []byte("\n"))
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
	switch {
	case c.name == "" && defaultConfig() != "":
		hint = "; define more in a --config file, or in " + defaultConfig()
	case c.name == "":
		hint = "; define more in a --config file"
	case len(c.Targets) == 0:
		hint = fmt.Sprintf("; config %s defines none: name them under \"targets\"", c.name)
	}
	return TargetConfig{}, fmt.Errorf("unknown target %q: the targets are %s%s", name, strings.Join(known, ", "), hint)
}
