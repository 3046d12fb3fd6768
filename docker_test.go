package main

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScratchImage checks what the Dockerfile relies on without a Docker
// engine: the binary built as the Dockerfile says is static (no
// interpreter, no shared libraries), so it runs FROM scratch, and every file
// the Dockerfile copies from the repository exists.
func TestScratchImage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rops")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the binary is dynamically linked (%v): it cannot run FROM scratch", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary needs %v", libs)
	}

	df, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	sc := bufio.NewScanner(df)
	copies := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "COPY" {
			continue
		}
		fields = slices.DeleteFunc(fields[1:], func(f string) bool { return strings.HasPrefix(f, "--") })
		if len(fields) == 2 && fields[0] != "rops" {
			copies++
			if _, err := os.Stat(fields[0]); err != nil {
				t.Errorf("Dockerfile copies %s: %v", fields[0], err)
			}
		}
	}
	if copies == 0 {
		t.Fatal("found no COPY of repository files in the Dockerfile")
	}
}

// TestComposeVolumes checks docker-compose.yml without a Docker engine:
// every service keeps the image's data directory (ROPS_DATA in the
// Dockerfile) on a named volume of its own, declared at the top level. The
// Dockerfile's VOLUME would otherwise give it an anonymous volume, which
// "docker compose run --rm job" deletes with the container, and with it
// the journal of a job that left intents to recover.
func TestComposeVolumes(t *testing.T) {
	dataDir := dockerfileEnv(t)["ROPS_DATA"]
	if dataDir == "" {
		t.Fatal("the Dockerfile sets no ROPS_DATA")
	}
	c := readCompose(t, "docker-compose.yml")
	t.Logf("services and their mounts: %v; volumes: %v", c.services, c.volumes)
	if _, ok := c.services["job"]; !ok {
		t.Fatal("docker-compose.yml has no job service")
	}
	owner := map[string]string{} // volume → the service that mounts it
	for name, mounts := range c.services {
		var source string
		for _, m := range mounts {
			if src, dst, ok := strings.Cut(m, ":"); ok && strings.TrimSuffix(dst, ":rw") == dataDir {
				source = src
			}
		}
		switch {
		case source == "":
			t.Errorf("service %s mounts nothing at %s: its data would be on an anonymous volume", name, dataDir)
		case strings.ContainsAny(source[:1], "/.~$"):
			t.Errorf("service %s mounts %s at %s: want a named volume", name, source, dataDir)
		case !slices.Contains(c.volumes, source):
			t.Errorf("service %s mounts volume %s, which the top-level volumes do not declare", name, source)
		case owner[source] != "":
			t.Errorf("services %s and %s share volume %s", owner[source], name, source)
		default:
			owner[source] = name
		}
	}
}

// TestImageSettings checks, without a Docker engine, what the image and
// the compose file promise: a non-root user, a health check that pings the
// server, a build context of the binary and deploy/ only, and ports
// published on 127.0.0.1 only. The e2e/docker tests run them on an engine.
func TestImageSettings(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	instr := map[string]string{} // instruction → its last arguments
	for line := range strings.Lines(strings.ReplaceAll(string(df), "\\\n", " ")) {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			instr[f[0]] = strings.Join(f[1:], " ")
		}
	}
	if user, _, _ := strings.Cut(instr["USER"], ":"); user == "" || user == "0" || user == "root" {
		t.Errorf("the image runs as user %q: want a non-root one", instr["USER"])
	}
	if hc := instr["HEALTHCHECK"]; !strings.Contains(hc, `"/rops", "ping"`) {
		t.Errorf("HEALTHCHECK %q: want one that runs rops ping", hc)
	}
	ignore, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Fields(string(ignore)); !slices.Contains(lines, "*") || !slices.Contains(lines, "!rops") {
		t.Errorf(".dockerignore should leave out everything (*) but the binary (!rops) and what the Dockerfile copies:\n%s", ignore)
	}

	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	ports := 0
	for line := range strings.Lines(string(b)) {
		key, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		if key != "ports" {
			continue
		}
		for _, p := range flowList(value) {
			ports++
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("docker-compose.yml publishes port %q: want 127.0.0.1 only", p)
			}
		}
	}
	if ports == 0 {
		t.Error("docker-compose.yml publishes no port")
	}
}

// dockerfileEnv returns the variables the Dockerfile's ENV lines set.
func dockerfileEnv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "ENV" {
			continue
		}
		for _, kv := range fields[1:] {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

// compose is what TestComposeVolumes reads of a compose file.
type compose struct {
	services map[string][]string // service → its volume mounts, short syntax
	volumes  []string            // the top-level named volumes
}

// readCompose reads a compose file far enough for TestComposeVolumes: the
// block layout docker-compose.yml uses, two spaces an indent, each
// service's volumes as a flow ([a, b]) or block (- a) list. There is no
// YAML parser among the module's dependencies, and the test must run
// without Docker.
func readCompose(t *testing.T, path string) compose {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := compose{services: map[string][]string{}}
	var section, service string
	inVolumes := false // in a service's block list of volumes
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		text := strings.TrimSpace(line)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		key, value, _ := strings.Cut(text, ":")
		value = strings.TrimSpace(value)
		switch {
		case indent == 0:
			section, service, inVolumes = key, "", false
		case indent == 2 && section == "services":
			service, inVolumes = key, false
			c.services[service] = nil
		case indent == 2 && section == "volumes":
			c.volumes = append(c.volumes, key)
		case indent == 4 && service != "":
			inVolumes = key == "volumes"
			if inVolumes && value != "" {
				c.services[service] = append(c.services[service], flowList(value)...)
				inVolumes = false
			}
		case indent >= 6 && inVolumes && strings.HasPrefix(text, "- "):
			c.services[service] = append(c.services[service], unquote(strings.TrimPrefix(text, "- ")))
		}
	}
	return c
}

// flowList returns the items of a YAML flow list such as ["a:/data", b].
func flowList(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "["), "]")
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = unquote(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func unquote(s string) string {
	return strings.Trim(strings.TrimSpace(s), `"'`)
}
