package main

import (
	"strings"
	"testing"
)

// TestPingDownNode: a node that rops serve --admin took down answers
// /ping for its server, but refuses a write; ping reports it down and
// exits 6, which the image's health check sees, and writes nothing.
func TestPingDownNode(t *testing.T) {
	s := startServer(t, "", nil, "--store", "memory", "--admin", "--random-behavior", "0")
	target := []string{"--target", "remote", "--remote", "http://" + s.addr + "/v1", "--data", t.TempDir()}

	if code, out, stderr := runStderr(t, append(target, "ping")...); code != 0 {
		t.Fatalf("ping of a healthy server: exit %d, want 0\n%s%s", code, out, stderr)
	}

	setFaults(t, s.addr, `{"node02": {"down": true}}`)
	code, out, stderr := runStderr(t, append(target, "ping")...)
	if code != 6 {
		t.Fatalf("ping with node02 down: exit %d, want 6 (ExitUnreachable)\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"node01   ok (", "node02   down: node02 is down\n", "node03   ok ("} {
		if !strings.Contains(out, want) {
			t.Errorf("ping's output lacks %q:\n%s", want, out)
		}
	}
	if got, want := stderr, "rops: 1 of 3 nodes are down or did not answer (node02): every create and delete rolls back until all of them answer\n"; got != want {
		t.Errorf("ping's stderr=%q, want %q", got, want)
	}
	code, out, _ = runStderr(t, append(target, "-o", "json", "ping")...)
	if code != 6 || !strings.Contains(out, `{"node":"node02","ok":false,"down":true,`) {
		t.Errorf("ping -o json with node02 down: exit %d, want 6, and node02 down:\n%s", code, out)
	}

	// Ping wrote nothing: every node, node02 back up, holds no record.
	setFaults(t, s.addr, `{"node02": {"down": false}}`)
	if code, out := run(t, append(target, "stats")...); code != 0 || !strings.Contains(out, "node02   0\n") {
		t.Errorf("stats after ping: exit %d, want 0 and no records:\n%s", code, out)
	}
}
