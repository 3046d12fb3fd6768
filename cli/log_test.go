package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestLogFormatJSON checks that under --log-format json every line -v
// writes is one JSON object with slog's keys and those of its record.
func TestLogFormatJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"--data", t.TempDir(), "--seed", "3", "--random-behavior", "0.3", "-v", "--log-format", "json", "create", "--range", "0-9"}
	code := Run(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if code != ExitOK && code != ExitRolledBack {
		t.Fatalf("create exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	keys := map[string][]string{
		"seed":    {"seed"},
		"request": {"node", "op", "groupId"},
		"answer":  {"node", "op", "groupId"},
		"result":  {"op", "id", "outcome"},
	}
	seen := map[string]int{}
	for line := range strings.Lines(stderr.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		want, ok := keys[msg]
		if !ok {
			t.Fatalf("log line %q: unknown msg %q", line, msg)
		}
		for _, k := range append([]string{"time", "level"}, want...) {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %q lacks %q", line, k)
			}
		}
		if msg == "answer" && rec["level"] == "WARN" {
			for _, k := range []string{"code", "error"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("failed answer %q lacks %q", line, k)
				}
			}
		}
		seen[msg]++
	}
	if seen["seed"] != 1 || seen["result"] != 10 || seen["request"] < 30 || seen["answer"] != seen["request"] {
		t.Fatalf("records by msg: %v; want 1 seed, 10 results, as many answers as requests (30 or more)", seen)
	}
}
