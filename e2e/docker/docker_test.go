package docker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests drive the docker and docker-compose commands through os/exec
// rather than the Docker Go SDK: the commands are what the README tells a
// user to run, so the tests run them too, and the module needs no new
// dependency.

// limit bounds every command these tests run and every wait.
const limit = 2 * time.Minute

// root is the repository: the Dockerfile and docker-compose.yml under test.
var root = func() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}()

// engine is the Docker engine the tests run on: the command that runs
// Compose, docker-compose (v1) or docker compose (the v2 plugin).
type engine struct {
	compose []string
}

// requireDocker skips the test with a clear message when no Docker daemon
// answers or no Compose runs, unless ROPS_DOCKER=required (as CI on a
// machine with Docker sets it), which makes that a failure.
func requireDocker(t *testing.T) engine {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("ROPS_DOCKER") == "required" {
		skip = t.Fatalf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		skip("no Docker daemon answers `docker info` (%v: %s): the Docker tests need a running engine", err, bytes.TrimSpace(out))
		return engine{}
	}
	for _, c := range [][]string{{"docker-compose"}, {"docker", "compose"}} {
		if exec.CommandContext(ctx, c[0], append(c[1:], "version")...).Run() == nil {
			return engine{compose: c}
		}
	}
	skip("neither docker-compose nor the docker compose plugin runs: the Docker tests need Compose")
	return engine{}
}

// suffix returns a random name part, so that what a run creates is its own.
func suffix() string {
	return fmt.Sprintf("%08x", rand.Uint32())
}

// execute runs a command bounded by limit and returns its output and exit
// code; err is set if it could not run or was killed.
func execute(env []string, name string, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if _, ok := errors.AsType[*exec.ExitError](err); ok && code >= 0 {
		err = nil
	}
	return out.String(), errOut.String(), code, err
}

// docker runs a docker command that must succeed and returns its output.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code, err := execute(nil, "docker", args...)
	if err != nil || code != 0 {
		t.Fatalf("docker %s: exit %d %v\n%s%s", strings.Join(args, " "), code, err, out, errOut)
	}
	return strings.TrimSpace(out)
}

// remove runs a docker command that removes something, at cleanup: a
// failure is reported, unless the thing was gone already.
func remove(t *testing.T, args ...string) {
	t.Helper()
	out, errOut, code, err := execute(nil, "docker", args...)
	if (err != nil || code != 0) && !strings.Contains(errOut, "No such") {
		t.Errorf("cleanup: docker %s: exit %d %v\n%s%s", strings.Join(args, " "), code, err, out, errOut)
	}
}

// buildImage builds rops for the image (static, as the Dockerfile says) and
// the image, tagged tag, from a build context holding what the repository's
// Dockerfile and .dockerignore take: the tests write nothing into the
// working tree. It returns the binary, which runs on the host too; the
// image is removed at cleanup.
func buildImage(t *testing.T, tag string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "rops")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(dir, "deploy"), os.DirFS(filepath.Join(root, "deploy"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remove(t, "rmi", "-f", tag) })
	docker(t, "build", "-q", "-t", tag, dir)
	return bin
}

// project is one run of docker-compose.yml under a project name of its
// own: its containers, network and volumes are named after it and removed
// at the end of the test that made it; a job container, at the end of the
// test that started it.
type project struct {
	eng  engine
	name string
	env  []string
	bin  string // rops, to run on the host
	// overrides are compose files given after docker-compose.yml, each
	// with the profiles it adds.
	overrides []string
}

// newProject returns a project running image, with its ports published on
// free 127.0.0.1 ports.
func newProject(t *testing.T, eng engine, image, bin string) *project {
	t.Helper()
	p := &project{eng: eng, name: "ropse2e" + suffix(), bin: bin}
	p.env = append(os.Environ(), "ROPS_IMAGE="+image,
		"ROPS_PORT=", "ROPS_NODE01_PORT=", "ROPS_NODE02_PORT=", "ROPS_NODE03_PORT=")
	t.Cleanup(func() { p.down(t) })
	t.Logf("compose project %s", p.name)
	return p
}

// args returns the Compose command line for args, every profile on.
func (p *project) args(args ...string) []string {
	a := append([]string{}, p.eng.compose[1:]...)
	a = append(a, "-p", p.name, "-f", filepath.Join(root, "docker-compose.yml"))
	for _, f := range p.overrides {
		a = append(a, "-f", filepath.Join(root, f))
	}
	a = append(a, "--profile", "per-node", "--profile", "job")
	if len(p.overrides) > 0 {
		a = append(a, "--profile", "certs")
	}
	return append(a, args...)
}

// compose runs a Compose command and returns its stdout, stderr and exit
// code.
func (p *project) compose(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	stdout, stderr, code, err := execute(p.env, p.eng.compose[0], p.args(args...)...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", p.eng.compose[0], strings.Join(p.args(args...), " "), err, stderr)
	}
	return stdout, stderr, code
}

// must runs a Compose command that must succeed.
func (p *project) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := p.compose(t, args...)
	if code != 0 {
		t.Fatalf("compose %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// down removes the project's containers, network and volumes.
func (p *project) down(t *testing.T) {
	out, errOut, code, err := execute(p.env, p.eng.compose[0], p.args("down", "-v", "--remove-orphans", "-t", "0")...)
	if err != nil || code != 0 {
		t.Errorf("cleanup: compose down: exit %d %v\n%s%s", code, err, out, errOut)
	}
}

// up starts services and waits until the health check (rops ping) says
// each is healthy.
func (p *project) up(t *testing.T, services ...string) {
	t.Helper()
	since := time.Now()
	p.must(t, append([]string{"up", "-d"}, services...)...)
	p.healthy(t, since, services...)
}

// healthy waits until every service has turned healthy since the given
// time, reading the engine's health events (the first check runs one
// interval after the container starts).
func (p *project) healthy(t *testing.T, since time.Time, services ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ev := exec.CommandContext(ctx, "docker", "events", "--since", fmt.Sprint(since.Unix()),
		"--filter", "label=com.docker.compose.project="+p.name, "--filter", "event=health_status",
		"--format", `{{index .Actor.Attributes "com.docker.compose.service"}} {{.Status}}`)
	out, err := ev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		ev.Wait()
	}()
	waiting := map[string]bool{}
	for _, s := range services {
		waiting[s] = true
	}
	sc := bufio.NewScanner(out)
	for len(waiting) > 0 && sc.Scan() {
		service, status, _ := strings.Cut(sc.Text(), " ")
		switch status {
		case "health_status: healthy":
			delete(waiting, service)
		case "health_status: unhealthy":
			logs, _, _ := p.compose(t, "logs", "--no-color", service)
			t.Fatalf("%s is unhealthy:\n%s", service, logs)
		}
	}
	if len(waiting) > 0 {
		t.Fatalf("not healthy within %v: %v", limit, waiting)
	}
}

// container returns the id of a service's container. (The docker command
// answers in a tenth of the time docker-compose takes to start.)
func (p *project) container(t *testing.T, service string) string {
	t.Helper()
	id := docker(t, "ps", "-a", "-q", "--filter", "label=com.docker.compose.project="+p.name,
		"--filter", "label=com.docker.compose.service="+service, "--filter", "label=com.docker.compose.oneoff=False")
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("service %s has containers %q, want one", service, id)
	}
	return id
}

// network returns the name of the project's network.
func (p *project) network() string { return p.name + "_internal" }

// addr returns where a service's port 8080 is published on the host, which
// must be 127.0.0.1.
func (p *project) addr(t *testing.T, service string) string {
	t.Helper()
	addr, _, _ := strings.Cut(docker(t, "port", p.container(t, service), "8080/tcp"), "\n")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("%s's port 8080 is published on %q: want 127.0.0.1 only", service, addr)
	}
	return addr
}

// run runs rops in a new job container to the end and returns its stdout
// and exit code.
func (p *project) run(t *testing.T, args ...string) (stdout string, code int) {
	t.Helper()
	stdout, stderr, code := p.compose(t, append([]string{"run", "--rm", "-T", "job"}, args...)...)
	if code == 2 || code > 4 {
		t.Fatalf("rops %s exited %d:\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout, code
}

// host runs rops on the host against nodes, through their published
// ports, as target "host" of a config of its own, and returns its stdout
// and exit code. Its data and home directories are empty ones of the test.
func (p *project) host(t *testing.T, nodes []node, args ...string) (stdout string, code int) {
	t.Helper()
	home := t.TempDir()
	var specs []string
	for _, n := range nodes {
		specs = append(specs, fmt.Sprintf("%q", "http://"+n.addr+"/v1?node="+n.name))
	}
	cfg := filepath.Join(home, "targets.json")
	if err := os.WriteFile(cfg, []byte(`{"targets": {"host": {"nodes": [`+strings.Join(specs, ", ")+`]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	args = append([]string{"--config", cfg, "--target", "host", "--data", filepath.Join(home, "data")}, args...)
	stdout, stderr, code, err := execute(env, p.bin, args...)
	if err != nil || code == 2 || code > 4 {
		t.Fatalf("rops %s on the host exited %d: %v\n%s%s", strings.Join(args, " "), code, err, stdout, stderr)
	}
	return stdout, code
}

// stats runs rops stats from the host: the nodes must agree.
func (p *project) stats(t *testing.T, nodes []node) statsOut {
	t.Helper()
	out, code := p.host(t, nodes, "-o", "json", "stats")
	var st statsOut
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	t.Logf("stats: consistent %v, %v", st.Consistent, st.Nodes)
	if code != 0 || !st.Consistent {
		t.Fatalf("stats exited %d: %+v", code, st)
	}
	return st
}

// recover runs rops recover in a new job container; it must settle
// everything.
func (p *project) recover(t *testing.T, target string) recoverOut {
	t.Helper()
	out, code := p.run(t, "-o", "json", "--target", target, "recover")
	var rec recoverOut
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("recover: %v\n%s", err, out)
	}
	t.Logf("recover --target %s: %d intents, %d done, %d rolled back, %d pending",
		target, len(rec.Intents), rec.Done, rec.RolledBack, rec.Pending)
	if code != 0 || rec.Pending > 0 {
		t.Fatalf("recover --target %s exited %d: %s", target, code, out)
	}
	return rec
}

// statsOut is what `rops -o json stats` prints.
type statsOut struct {
	Consistent bool           `json:"consistent"`
	Nodes      map[string]int `json:"nodes"`
}

// recoverOut is what `rops -o json recover` prints.
type recoverOut struct {
	Intents []struct {
		Op      string `json:"op"`
		ID      string `json:"id"`
		Outcome string `json:"outcome"`
	} `json:"intents"`
	Done       int `json:"done"`
	RolledBack int `json:"rolled_back"`
	Pending    int `json:"pending"`
}

// report is what `rops -o json create` and delete print.
type report struct {
	Requested  int      `json:"requested"`
	Done       int      `json:"done"`
	Unchanged  int      `json:"unchanged"`
	RolledBack int      `json:"rolled_back"`
	Pending    int      `json:"pending"`
	Requests   int      `json:"requests"`
	Seconds    float64  `json:"seconds"`
	PendingIDs []string `json:"pending_ids"`
}

func (r report) String() string {
	return fmt.Sprintf("%d requested: %d done, %d unchanged, %d rolled back, %d pending; %d requests in %.2fs",
		r.Requested, r.Done, r.Unchanged, r.RolledBack, r.Pending, r.Requests, r.Seconds)
}

// job is rops running in a job container of its own, with -v: its
// "msg=result op=OP id=ID outcome=OUTCOME" records are collected as they come, so a test can
// act at a point of the job without sleeping.
type job struct {
	t       *testing.T
	name    string // the container's
	cmd     *exec.Cmd
	stdout  bytes.Buffer
	ended   chan struct{} // closed when the job's stderr ends
	changed chan struct{} // signalled on every result
	mu      sync.Mutex
	results map[string][]string // outcome → ids
}

// start starts rops args in a new job container.
func (p *project) start(t *testing.T, args ...string) *job {
	t.Helper()
	j := &job{t: t, name: p.name + "-job-" + suffix(),
		ended: make(chan struct{}), changed: make(chan struct{}, 1), results: map[string][]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	j.cmd = exec.CommandContext(ctx, p.eng.compose[0], p.args(append([]string{"run", "--rm", "-T", "--name", j.name, "job", "-v", "-o", "json"}, args...)...)...)
	j.cmd.Env = p.env
	j.cmd.Stdout = &j.stdout
	j.cmd.WaitDelay = 10 * time.Second
	stderr, err := j.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := j.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	// Cleanups run last first: the job ends before the project goes down.
	t.Cleanup(func() {
		cancel()
		<-j.ended
		j.cmd.Wait()
		remove(t, "rm", "-f", "-v", j.name)
	})
	go func() {
		defer close(j.ended)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if id, outcome, ok := resultLine(sc.Text()); ok {
				j.mu.Lock()
				j.results[outcome] = append(j.results[outcome], id)
				j.mu.Unlock()
				select {
				case j.changed <- struct{}{}:
				default:
				}
			}
		}
	}()
	return j
}

// resultLine parses a -v "result" record in slog's text format, such as
// "time=... level=INFO msg=result op=create id=5 outcome=done", into the id
// and its outcome.
func resultLine(line string) (id, outcome string, ok bool) {
	if !strings.Contains(line, " msg=result ") {
		return "", "", false
	}
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "id="); ok {
			id = v
		} else if v, ok := strings.CutPrefix(f, "outcome="); ok {
			outcome = v
		}
	}
	return id, outcome, id != "" && outcome != ""
}

// count returns how many results of an outcome the job has reported.
func (j *job) count(outcome string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.results[outcome])
}

// ids returns the ids the job reported with an outcome.
func (j *job) ids(outcome string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.results[outcome]...)
}

// until waits until cond holds of the job's results; it fails if the job
// ends first or limit passes.
func (j *job) until(what string, cond func() bool) {
	j.t.Helper()
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	for !cond() {
		select {
		case <-j.changed:
		case <-j.ended:
			if !cond() {
				j.t.Fatalf("the job ended before %s", what)
			}
		case <-timeout.C:
			j.t.Fatalf("not %s within %v", what, limit)
		}
	}
}

// await waits until the job has reported n results of an outcome.
func (j *job) await(outcome string, n int) {
	j.t.Helper()
	j.until(fmt.Sprintf("%d results %s", n, outcome), func() bool { return j.count(outcome) >= n })
}

// wait waits for the job's end and returns its exit code and report (zero
// if it printed none, as when it was killed).
func (j *job) wait() (int, report) {
	j.t.Helper()
	<-j.ended
	j.cmd.Wait()
	var r report
	if out := strings.TrimSpace(j.stdout.String()); out != "" {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			j.t.Fatalf("job output: %v\n%s", err, out)
		}
	}
	return j.cmd.ProcessState.ExitCode(), r
}

// node is one node of a target as seen from the host: the published
// address of its server and its name.
type node struct{ addr, name string }

// perNode returns the per-node containers' nodes.
func (p *project) perNode(t *testing.T) []node {
	return []node{{p.addr(t, "node01"), "node01"}, {p.addr(t, "node02"), "node02"}, {p.addr(t, "node03"), "node03"}}
}

// cluster returns the nodes of the cluster container.
func (p *project) cluster(t *testing.T) []node {
	a := p.addr(t, "cluster")
	return []node{{a, "node01"}, {a, "node02"}, {a, "node03"}}
}

// held lists the ids a node holds through GET /v1/groups on its published
// port, which is never faulted.
func held(t *testing.T, n node) map[string]bool {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	ids := map[string]bool{}
	after := ""
	for {
		req, err := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/groups?limit=10000&after=%s", n.addr, url.QueryEscape(after)), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("node", n.name)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Groups []struct {
				ID string `json:"groupId"`
			} `json:"groups"`
			Next *string `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/groups of %s at %s: %d %v", n.name, n.addr, resp.StatusCode, err)
		}
		for _, g := range page.Groups {
			ids[g.ID] = true
		}
		if page.Next == nil {
			return ids
		}
		after = *page.Next
	}
}

// span is a range of decimal ids, as --range takes it.
type span struct{ first, last int }

func (r span) String() string { return fmt.Sprintf("%d-%d", r.first, r.last) }

func (r span) len() int { return r.last - r.first + 1 }

func (r span) has(id string) bool {
	n, err := strconv.Atoi(id)
	return err == nil && r.first <= n && n <= r.last
}

// agree checks, from the host, that the nodes hold the same ids, as many as
// stats counted, and what the job reported: an id it reported done is on
// every node after a create and on none after a delete, and one it
// reported rolled back the other way round. It returns the ids of the
// job's range the nodes hold.
func agree(t *testing.T, nodes []node, st statsOut, op string, j *job, ids span) map[string]bool {
	t.Helper()
	first := held(t, nodes[0])
	for _, n := range nodes {
		h := held(t, n)
		if len(h) != len(first) || len(h) != st.Nodes[n.name] {
			t.Fatalf("%s holds %d ids, %s %d; stats counted %v", nodes[0].name, len(first), n.name, len(h), st.Nodes)
		}
		for id := range h {
			if !first[id] {
				t.Fatalf("%s holds %s, %s does not", n.name, id, nodes[0].name)
			}
		}
	}
	created := op == "create"
	for _, id := range j.ids("done") {
		if first[id] != created {
			t.Fatalf("%s %s was reported done, but the nodes hold it: %v", op, id, first[id])
		}
	}
	for _, id := range j.ids("rolled_back") {
		if first[id] == created {
			t.Fatalf("%s %s was reported rolled back, but the nodes hold it: %v", op, id, first[id])
		}
	}
	in := map[string]bool{}
	for id := range first {
		if ids.has(id) {
			in[id] = true
		}
	}
	return in
}

// TestDocker runs the image and docker-compose.yml on the Docker engine:
// the README's cluster with jobs from a job container and from the host,
// the job container killed mid-job and the per-node containers under node
// loss and a network partition. It is skipped under -short, the quick loop. Each scenario ends
// with the nodes checked: stats from a job container and the ids each node
// holds, read from the host. Scenarios share a cluster, each on ids of its
// own.
func TestDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: the Docker scenarios build an image and run containers for 1-3 minutes; run go test ./e2e/docker")
	}
	eng := requireDocker(t)
	image := "rops-e2e:" + suffix()
	bin := buildImage(t, image)
	t.Logf("image %s, compose %s", image, strings.Join(eng.compose, " "))
	if user := docker(t, "image", "inspect", "--format", "{{.Config.User}}", image); user != "65532:65532" {
		t.Fatalf("the image runs as user %q, want 65532:65532", user)
	}

	t.Run("cluster", func(t *testing.T) {
		p := newProject(t, eng, image, bin)
		p.up(t, "cluster")
		t.Run("jobs", func(t *testing.T) { testClusterJobs(t, p) })
		t.Run("no-probe-lines", func(t *testing.T) { testNoProbeLines(t, p) })
		t.Run("job-killed", func(t *testing.T) { testJobKilled(t, p) })
	})
	t.Run("per-node", func(t *testing.T) {
		p := newProject(t, eng, image, bin)
		p.up(t, "node01", "node02", "node03")
		t.Run("create-delete", func(t *testing.T) { testPerNode(t, p) })
		t.Run("node-killed", func(t *testing.T) { testNodeKilled(t, p) })
		t.Run("node-cut-off", func(t *testing.T) { testNodeCutOff(t, p) })
	})
}

// testClusterJobs runs the README's cluster: one container serving
// node01..03 under their original names, a job from the job container
// (target cluster, preset) and one from the host through the published
// port.
func testClusterJobs(t *testing.T, p *project) {
	out, code := p.run(t, "-o", "json", "create")
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code > 1 || r.Done+r.RolledBack != 100 {
		t.Fatalf("create from the job container exited %d: %v %s", code, err, out)
	}
	t.Logf("create (ids 0-99) from the job container: %v", r)

	// The host reaches the cluster on 127.0.0.1 only.
	out, code = p.host(t, p.cluster(t), "-o", "json", "create", "--range", "100-199")
	var hr report
	if err := json.Unmarshal([]byte(out), &hr); err != nil || code > 1 || hr.Done+hr.RolledBack != 100 {
		t.Fatalf("create from the host exited %d: %v %s", code, err, out)
	}
	t.Logf("create 100-199 from the host: %v", hr)

	// And stats from the job container, as the README runs it.
	out, code = p.run(t, "-o", "json", "stats")
	var st statsOut
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || !st.Consistent {
		t.Fatalf("stats from the job container exited %d: %v %s", code, err, out)
	}
	t.Logf("stats from the job container: consistent %v, %v", st.Consistent, st.Nodes)
	if got, want := st.Nodes["node01"], r.Done+hr.Done; got != want {
		t.Fatalf("node01 holds %d ids, want %d", got, want)
	}
}

// testNoProbeLines reads the cluster's log up to the first write a job
// sent: the health check (rops ping, every 2 s) ran before any job, as
// the cluster was healthy first, yet its requests are not in the log at
// its level, INFO; the lines come out in order, so they would be before the
// job's.
func testNoProbeLines(t *testing.T, p *project) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	logs := exec.CommandContext(ctx, "docker", "logs", "-f", p.container(t, "cluster"))
	stderr, err := logs.StderrPipe() // the server logs to stderr
	if err != nil {
		t.Fatal(err)
	}
	if err := logs.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		logs.Wait()
	}()
	var read []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		read = append(read, line)
		if strings.Contains(line, "/ping HTTP/") || strings.Contains(line, "/healthz HTTP/") || strings.Contains(line, "/readyz HTTP/") {
			t.Fatalf("the cluster logs the health check's probes at INFO:\n%s", strings.Join(read, "\n"))
		}
		if strings.Contains(line, `msg="POST /v1/`) {
			if !strings.Contains(line, " duration=") {
				t.Errorf("an access line without its duration: %s", line)
			}
			return
		}
	}
	t.Fatalf("no job's request in the cluster's log within %v:\n%s", limit, strings.Join(read, "\n"))
}

// testPerNode runs a create and a delete of 2000 ids, at the original's 20%
// failures, against one container per node, then rops check.
func testPerNode(t *testing.T, p *project) {
	ids := span{0, 1999}
	before := 0 // ids the nodes hold
	for _, op := range []string{"create", "delete"} {
		j := p.start(t, "--target", "per-node", op, "--range", ids.String())
		code, r := j.wait()
		t.Logf("%s %v: exit %d, %v", op, ids, code, r)
		// Ids absent are unchanged by a delete; every id is new to the create.
		if code > 3 || r.Done+r.RolledBack+r.Pending+r.Unchanged != ids.len() || r.Unchanged != map[string]int{"create": 0, "delete": ids.len() - before}[op] {
			t.Fatalf("%s exited %d: %v (the nodes held %d ids)", op, code, r, before)
		}
		if r.Pending > 0 {
			p.recover(t, "per-node")
		}
		held := agree(t, p.perNode(t), p.stats(t, p.perNode(t)), op, j, ids)
		// Pending operations may have been finished or rolled back.
		lo, hi := r.Done, r.Done+r.Pending
		if op == "delete" {
			lo, hi = before-hi, before-lo
		}
		if len(held) < lo || len(held) > hi {
			t.Fatalf("after %s: the nodes hold %d ids, want %d to %d", op, len(held), lo, hi)
		}
		before = len(held)
	}
	out, code := p.run(t, "-o", "json", "--target", "per-node", "check", "--ops", "300")
	t.Logf("check --ops 300: exit %d, %s", code, strings.TrimSpace(out))
	var c struct {
		OK         bool     `json:"ok"`
		Lost       []string `json:"lost"`
		Unexpected []string `json:"unexpected"`
		Divergent  []string `json:"divergent"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || code != 0 || !c.OK || c.Lost == nil || len(c.Lost)+len(c.Unexpected)+len(c.Divergent) > 0 {
		t.Fatalf("check exited %d: %v %s", code, err, out)
	}
}

// testNodeKilled kills node02's container (SIGKILL) in the middle of a
// create of 2000 ids and starts it again; once recover has run, every node
// holds what the job reported.
func testNodeKilled(t *testing.T, p *project) {
	ids := span{2000, 3999}
	node02 := p.container(t, "node02")
	j := p.start(t, "--target", "per-node", "--retries", "3", "--compensation-timeout", "3s", "create", "--range", ids.String())
	j.await("done", 300)
	docker(t, "kill", node02)
	// The job notices: an operation that could not reach node02 is rolled
	// back, or left pending if its request was in flight.
	failed := func() int { return j.count("rolled_back") + j.count("pending") }
	before := failed()
	j.until("an operation failed on node02", func() bool { return failed() > before })
	t.Logf("node02 killed after 300 done; the job then reported %d rolled back, %d pending", j.count("rolled_back"), j.count("pending"))
	since := time.Now()
	docker(t, "start", node02)
	p.healthy(t, since, "node02")
	code, r := j.wait()
	t.Logf("create %v: exit %d, %v", ids, code, r)
	if code > 3 || r.Done+r.RolledBack+r.Pending != ids.len() || r.RolledBack+r.Pending == 0 {
		t.Fatalf("create exited %d: %v", code, r)
	}
	p.recover(t, "per-node")
	held := agree(t, p.perNode(t), p.stats(t, p.perNode(t)), "create", j, ids)
	if len(held) < r.Done || len(held) > r.Done+r.Pending {
		t.Fatalf("the nodes hold %d ids of %v, want %d to %d", len(held), ids, r.Done, r.Done+r.Pending)
	}
}

// testNodeCutOff disconnects node03's container from the network in the
// middle of a create of 2000 ids and reconnects it only once the job has
// reported an operation pending: node03 was unreachable for longer than
// the compensation timeout. The job exits 3, and recover settles it.
func testNodeCutOff(t *testing.T, p *project) {
	ids := span{4000, 5999}
	node03 := p.container(t, "node03")
	// Sixteen operations at once: some always have a request in flight to
	// node03 when it is cut off, which can then be neither confirmed nor
	// undone.
	j := p.start(t, "--target", "per-node", "--concurrency", "16", "--retries", "3", "--request-timeout", "500ms",
		"--operation-timeout", "5s", "--compensation-timeout", "2s", "create", "--range", ids.String())
	j.await("done", 300)
	cut := time.Now()
	docker(t, "network", "disconnect", p.network(), node03)
	j.await("pending", 1)
	t.Logf("node03 cut off after 300 done, for %v: the job reported %d pending, %d rolled back", time.Since(cut).Round(time.Millisecond), j.count("pending"), j.count("rolled_back"))
	docker(t, "network", "connect", "--alias", "node03", "--alias", "node03.per-node.internal.com", p.network(), node03)
	code, r := j.wait()
	t.Logf("create %v: exit %d, %v", ids, code, r)
	if code != 3 || r.Pending == 0 || r.Done+r.RolledBack+r.Pending != ids.len() {
		t.Fatalf("create exited %d: %v; want exit 3 and pending operations", code, r)
	}
	rec := p.recover(t, "per-node")
	if len(rec.Intents) < r.Pending {
		t.Fatalf("recover found %d intents, the job left %d pending", len(rec.Intents), r.Pending)
	}
	held := agree(t, p.perNode(t), p.stats(t, p.perNode(t)), "create", j, ids)
	if len(held) < r.Done || len(held) > r.Done+r.Pending {
		t.Fatalf("the nodes hold %d ids of %v, want %d to %d", len(held), ids, r.Done, r.Done+r.Pending)
	}
}

// testJobKilled kills the job container (SIGKILL) in the middle of a create
// of 2000 ids on the cluster; a new job container, on the same named
// volume, finds the journal's intents and recover settles them.
func testJobKilled(t *testing.T, p *project) {
	ids := span{1000, 2999}
	j := p.start(t, "create", "--range", ids.String())
	j.await("done", 300)
	docker(t, "kill", j.name)
	code, _ := j.wait()
	t.Logf("job container killed after %d done (exit %d)", j.count("done"), code)
	if j.count("done") >= ids.len() {
		t.Fatalf("the job finished before it was killed")
	}
	rec := p.recover(t, "cluster")
	if len(rec.Intents) == 0 {
		t.Fatal("recover found no intents: the killed job's journal is not on the volume")
	}
	held := agree(t, p.cluster(t), p.stats(t, p.cluster(t)), "create", j, ids)
	// What the job reported done and what recover finished is on the
	// nodes; an operation the job finished but could not report before
	// it died may be too.
	known := map[string]bool{}
	for _, id := range j.ids("done") {
		known[id] = true
	}
	for _, in := range rec.Intents {
		if in.Outcome == "done" {
			known[in.ID] = true
		}
		if held[in.ID] != (in.Outcome == "done") {
			t.Fatalf("recover says %s %s %s, but the nodes hold it: %v", in.Op, in.ID, in.Outcome, held[in.ID])
		}
	}
	if len(held) < len(known) {
		t.Fatalf("the nodes hold %d ids of %v, want at least %d", len(held), ids, len(known))
	}
	t.Logf("the nodes hold %d ids of %v: %d reported done or finished by recover", len(held), ids, len(known))
}

// TestComposeUpFreshClone runs scripts/compose-up in a copy of the
// repository's files without a built binary, as a fresh clone has them:
// the script builds the binary the Dockerfile copies, then the image, and
// starts the cluster, which turns healthy and answers a job's ping. (A
// plain "docker-compose up" there stops at the Dockerfile's COPY of rops.)
func TestComposeUpFreshClone(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: builds rops and an image and runs a container; run go test ./e2e/docker")
	}
	eng := requireDocker(t)
	clone := freshClone(t)
	image := "rops-e2e:" + suffix()
	// Cleanups run last first: the image goes once the project is down.
	t.Cleanup(func() { remove(t, "rmi", "-f", image) })
	p := newProject(t, eng, image, "")
	since := time.Now()
	out, errOut, code, err := execute(append(p.env, "COMPOSE_PROJECT_NAME="+p.name), filepath.Join(clone, "scripts", "compose-up"))
	if err != nil || code != 0 {
		t.Fatalf("scripts/compose-up: exit %d %v\n%s%s", code, err, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(clone, "rops")); err != nil {
		t.Errorf("scripts/compose-up built no ./rops: %v", err)
	}
	p.healthy(t, since, "cluster")
	if out, code := p.run(t, "ping"); code != 0 {
		t.Fatalf("rops ping from the job container exited %d:\n%s", code, out)
	}
}

// freshClone copies the repository's files, those git tracks and new ones
// it does not ignore, into a temporary directory: no built binary, no
// .git, as a fresh clone has them, plus the changes under test.
func freshClone(t *testing.T) string {
	t.Helper()
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	out, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dir := t.TempDir()
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		fi, err := os.Stat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rops")); err == nil {
		t.Fatal("the copy has a rops binary: git should ignore /rops")
	}
	return dir
}
