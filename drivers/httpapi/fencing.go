package httpapi

import (
	"net/http"
	"time"

	"github.com/reliable-ops/rops/core"
)

// tombstoneHeaders returns, for each of nodes that keeps tombstones
// (core.Fences), the value of its answers' Rops-Tombstones header: the
// retention, built once so that answering allocates nothing for it.
func tombstoneHeaders(nodes []core.Node) map[string][]string {
	m := make(map[string][]string)
	for _, n := range nodes {
		if core.Fences(n) {
			m[n.Name()] = []string{tombstoneTTL(n).String()}
		}
	}
	return m
}

// tombstoneTTL returns how long n keeps a tombstone: what n, or a node or
// store it wraps (Unwrap() core.Node), says with a TombstoneTTL method, and
// else core.DefaultTombstoneTTL, the retention a Fencer keeps by default.
func tombstoneTTL(n core.Node) time.Duration {
	for {
		if t, ok := n.(core.TombstoneKeeper); ok {
			return t.TombstoneTTL()
		}
		u, ok := n.(interface{ Unwrap() core.Node })
		if !ok {
			return core.DefaultTombstoneTTL
		}
		n = u.Unwrap()
	}
}

// markFencing puts the Rops-Tombstones header on the answer to r if r is
// for a node that keeps tombstones, and Rops-Removes if it serves
// older_than deletes, whatever the route and the answer, so that a Client
// learns it from any answer. The node is the one the node
// header names, or the server's only node; a request for no known node
// gets no header.
func (s *Server) markFencing(w http.ResponseWriter, r *http.Request) {
	if len(s.tombstones) == 0 {
		return
	}
	var name string
	if v := r.Header[headerNode]; len(v) > 0 && v[0] != "" {
		name = v[0]
	} else if s.only != nil {
		name = s.only.Name()
	}
	if v, ok := s.tombstones[name]; ok {
		w.Header()[headerTombstones] = v
		if s.removes[name] {
			w.Header()[headerRemoves] = removesOn
		}
	}
}

// removers returns the names of nodes that serve Remove (core.Removes).
func removers(nodes []core.Node) map[string]bool {
	m := make(map[string]bool)
	for _, n := range nodes {
		if core.Removes(n) {
			m[n.Name()] = true
		}
	}
	return m
}
