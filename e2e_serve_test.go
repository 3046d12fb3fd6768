package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

// TestServeOwnData checks that `rops serve` keeps its stores apart from the
// local target's under the same --data: local commands run while it
// serves (a shared badger store would be locked by the server), the server
// does not serve the local records, and --store-dir serves them on purpose.
func TestServeOwnData(t *testing.T) {
	data := t.TempDir()
	local := []string{"--data", data, "--random-behavior", "0"}
	if rep := runJSON[struct{ Done int }](t, append(local, "create", "--range", "0-2")...); rep.Done != 3 {
		t.Fatalf("local create: %d done, want 3", rep.Done)
	}
	s := startServer(t, "", nil, "--data", data, "--random-behavior", "0")
	if st := runJSON[statsOut](t, append(local, "stats")...); st.Nodes["node01"] != 3 || !st.Consistent {
		t.Errorf("local stats while serve runs: %+v, want 3 records a node", st)
	}
	remote := func(addr string) statsOut {
		cfg := writeConfig(t, "lab", remoteSpecs(addr, addr, addr)...)
		return runJSON[statsOut](t, "--config", cfg, "--target", "lab", "--data", t.TempDir(), "stats")
	}
	if st := remote(s.addr); st.Nodes["node01"] != 0 {
		t.Errorf("serve's own stores: %+v, want none of the local records", st)
	}
	shared := startServer(t, "", nil, "--data", t.TempDir(), "--store-dir", data, "--random-behavior", "0")
	if st := remote(shared.addr); st.Nodes["node01"] != 3 || st.Nodes["node03"] != 3 {
		t.Errorf("serve --store-dir DATA: %+v, want the 3 local records a node", st)
	}
}

// TestServeLogsJSON checks that everything `rops serve` logs goes through
// log/slog in --log-format: with json, its start (with the address it
// listens on), each request and its shutdown on SIGTERM are JSON objects.
func TestServeLogsJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := ropsCmd(t, ctx, "--log-format", "json", "--random-behavior", "0", "serve", "--addr", "127.0.0.1:0", "--store", "memory")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type line struct {
		Msg    string `json:"msg"`
		URL    string `json:"url"`
		Status int    `json:"status"`
	}
	sc := bufio.NewScanner(stderr)
	next := func() line {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("serve's log ended early: %v", sc.Err())
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("serve logged %q, not a JSON object: %v", sc.Text(), err)
		}
		return l
	}
	start := next()
	if start.Msg != "listening" || !strings.HasPrefix(start.URL, "http://127.0.0.1:") {
		t.Fatalf("first line %+v, want msg listening with the url", start)
	}
	resp, err := http.Get(start.URL + "/v1/group/5?node=node01")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := next(); !strings.HasPrefix(l.Msg, "GET /v1/group/5") || l.Status != resp.StatusCode {
		t.Errorf("access log %+v, want the GET and its %d", l, resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if l := next(); l.Msg != "shutdown" {
		t.Errorf("last line %+v, want msg shutdown", l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v, want exit 0", err)
	}
}

// TestServeNoAccessLog: with --no-access-log, serve's log holds its own
// lines and none for the requests it answered.
func TestServeNoAccessLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := ropsCmd(t, ctx, "--log-format", "json", "--random-behavior", "0", "serve", "--addr", "127.0.0.1:0", "--store", "memory", "--no-access-log")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		var l struct{ Msg, URL string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("serve logged %q, not a JSON object: %v", sc.Text(), err)
		}
		if l.Msg != "listening" {
			continue
		}
		for _, path := range []string{"/v1/group/5?node=node01", "/v1/groups?node=node01"} {
			resp, err := http.Get(l.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v, want exit 0", err)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], `"msg":"listening"`) || !strings.Contains(lines[1], `"msg":"shutdown"`) {
		t.Errorf("serve --no-access-log logged %q, want its listening and shutdown lines and nothing of the two requests", lines)
	}
}
