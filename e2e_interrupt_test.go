package main

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestJobInterrupted interrupts a bulk create with SIGINT, as Ctrl-C does,
// while its first operations wait on nodes that answer in an hour: rops
// says it was interrupted, how far it got and how the operations it cut
// off are settled, and does not blame the nodes for them.
func TestJobInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := ropsCmd(t, ctx, "--data", t.TempDir(), "--random-behavior", "0", "--latency", "1h",
		"--concurrency", "4", "-v", "create", "--range", "1-1000")
	var stdout strings.Builder
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "msg=request") {
			break // under way: its signal handler is set
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	t.Logf("exit %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	if !regexp.MustCompile(`(?m)^rops: interrupted after [0-9]+ of 1000 ids: [0-9]+ pending (was|were) cut off mid-operation; rops recover \(or the next command, which recovers first\) settles (it|them)$`).MatchString(stderr.String()) {
		t.Errorf("stderr does not say the job was interrupted and how to settle what it cut off")
	}
	if !regexp.MustCompile(`(?m)^pending: .* \(cut off by the interrupt: rops recover settles them\)$`).MatchString(stdout.String()) {
		t.Errorf("the report does not say the pending ids were cut off by the interrupt")
	}
	if strings.Contains(stdout.String(), "nodes may disagree") {
		t.Errorf("the report blames the nodes for what the interrupt cut off")
	}
}
