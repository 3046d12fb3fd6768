package main

import (
	"strings"

	"github.com/reliable-ops/rops/core"
)

// resultLine parses a -v "result" record in slog's text format, such as
// "time=... level=INFO msg=result op=create id=5 outcome=done", into the
// id and its outcome.
func resultLine(line string) (core.GroupID, core.Outcome, bool) {
	if !strings.Contains(line, " msg=result ") {
		return "", "", false
	}
	var id, outcome string
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "id="); ok {
			id = v
		} else if v, ok := strings.CutPrefix(f, "outcome="); ok {
			outcome = v
		}
	}
	return core.GroupID(id), core.Outcome(outcome), id != "" && outcome != ""
}

// isRequestLog reports whether line is a record of the -v request log (a
// request to a node or its answer).
func isRequestLog(line string) bool {
	return strings.Contains(line, " msg=request ") || strings.Contains(line, " msg=answer ")
}
