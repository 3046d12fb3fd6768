package docker_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDockerTLS runs docker-compose.tls.yml over docker-compose.yml, as
// README.md's TLS section does: the certs service writes test
// certificates into the volume certs, the cluster serves HTTPS requiring
// client certificates and turns healthy (its health check, rops ping, runs
// over mutual TLS), and a job from the job container creates through it.
// The host's plain HTTP client, at the published port, is refused and
// changes nothing.
func TestDockerTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: builds an image and runs containers; run go test ./e2e/docker -run TLS")
	}
	eng := requireDocker(t)
	image := "rops-e2e:" + suffix()
	bin := buildImage(t, image)
	p := newProject(t, eng, image, bin)
	p.overrides = []string{"docker-compose.tls.yml"}

	if out, errs, code := p.compose(t, "run", "--rm", "-T", "certs"); code != 0 || !strings.Contains(out, "Wrote a new test CA") {
		t.Fatalf("run certs: exit %d\n%s%s", code, out, errs)
	}
	p.up(t, "cluster") // healthy: rops ping over mutual TLS

	out, code := p.run(t, "-o", "json", "create")
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Done != 100 {
		t.Fatalf("create over mutual TLS from the job container exited %d: %v %s", code, err, out)
	}

	// The host, in plain HTTP: refused, exit 6, nothing created.
	stdout, stderr, code, err := execute([]string{"HOME=" + t.TempDir()}, p.bin, "--data", t.TempDir(), "--remote", "http://"+p.addr(t, "cluster")+"/v1", "-t", "remote", "create", "--range", "100-199")
	if err != nil || code != 6 || !strings.Contains(stderr, "the server speaks HTTPS") {
		t.Fatalf("plain HTTP create from the host: exit %d %v\n%s%s\nwant exit 6, the server speaks HTTPS", code, err, stdout, stderr)
	}
	out, code = p.run(t, "-o", "json", "stats")
	var st statsOut
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || !st.Consistent || st.Nodes["node01"] != 100 {
		t.Fatalf("stats over mutual TLS exited %d: %v %s, want 100 records on each node", code, err, out)
	}
}
