package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ReadyTimeout bounds the call GET /readyz makes to each node.
const ReadyTimeout = 2 * time.Second

// handleHealthz answers GET /healthz: 200 while the process serves, without
// touching the nodes (a liveness probe).
func handleHealthz(w http.ResponseWriter, r *http.Request) {
	if allowed(w, r, allowGet) {
		writeText(w, http.StatusOK, "ok\n")
	}
}

// handleReadyz answers GET /readyz: 200 if every node answers a one-record
// List within ReadyTimeout (its store is open and reads), else 503 with a
// line per node that did not. A List sees a faulty node's Down and latency,
// not its random faults, so a node that is down is not ready.
func (s *Server) handleReadyz(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r, allowGet) {
		return
	}
	errs := make([]error, len(s.nodes))
	var wg sync.WaitGroup
	for i, n := range s.nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
			defer cancel()
			_, errs[i] = n.List(ctx, "", 1)
		})
	}
	wg.Wait()
	var b strings.Builder
	for i, err := range errs {
		if err != nil {
			b.WriteString(s.nodes[i].Name() + ": not ready: " + err.Error() + "\n")
		}
	}
	if b.Len() > 0 {
		writeText(w, http.StatusServiceUnavailable, b.String())
		return
	}
	writeText(w, http.StatusOK, "ready\n")
}
