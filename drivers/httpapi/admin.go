package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/reliable-ops/rops/decorators/faults"
)

// faultsExample shows a client what PUT /admin/faults takes.
const faultsExample = `{"node01": {"error_rate": 0.5, "down": false}}`

// faultyNodes returns the nodes whose faults can be read and changed, by
// name, and their names in the server's order.
func (s *Server) faultyNodes() (map[string]*faults.Node, []string) {
	m := make(map[string]*faults.Node, len(s.nodes))
	var names []string
	for _, n := range s.nodes {
		if f, ok := faults.Faulty(n); ok {
			m[n.Name()] = f
			names = append(names, n.Name())
		}
	}
	return m, names
}

// handleGetFaults answers GET /admin/faults: every faulty node's faults.
func (s *Server) handleGetFaults(w http.ResponseWriter) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	s.writeFaults(w)
}

// writeFaults writes every faulty node's faults; the caller holds adminMu.
func (s *Server) writeFaults(w http.ResponseWriter) {
	faulty, _ := s.faultyNodes()
	all := make(map[string]faults.Faults, len(faulty))
	for name, n := range faulty {
		all[name] = n.Faults()
	}
	b, err := json.Marshal(all)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the faults: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, append(b, '\n'))
}

// handlePutFaults answers PUT /admin/faults: a JSON object of node name to
// faults. Each node named gets the settings given, over its current ones;
// nodes not named keep theirs. Every change is checked before any is made,
// so a request changes all it names or nothing. It answers with the faults
// of every node.
func (s *Server) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	buf, herr := readBody(r, s.maxBody)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	defer buf.release()
	var req map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &req); err != nil || req == nil {
		msg := "the body must be a JSON object of node name to faults, such as " + faultsExample
		if err != nil {
			msg += ": " + jsonProblem(err)
		}
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	faulty, names := s.faultyNodes()
	next := make(map[string]faults.Faults, len(req))
	// Sorted, so that of several mistakes the same one is reported.
	for _, name := range slices.Sorted(maps.Keys(req)) {
		n, ok := faulty[name]
		if !ok {
			writeError(w, http.StatusNotAcceptable,
				fmt.Sprintf("unknown node %q: the nodes with faults are %s", name, strings.Join(names, ", ")))
			return
		}
		f := n.Faults()
		dec := json.NewDecoder(bytes.NewReader(req[name]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest,
				fmt.Sprintf("cannot read the faults of %s (%v): give an object such as %s", name, err, faultsExample))
			return
		}
		if err := f.Validate(); err != nil {
			writeError(w, http.StatusNotAcceptable, name+": "+err.Error())
			return
		}
		next[name] = f
	}
	for name, f := range next {
		// Validated above, and adminMu keeps other PUTs out.
		if err := faulty[name].SetFaults(f); err != nil {
			writeError(w, http.StatusInternalServerError, name+": "+err.Error())
			return
		}
	}
	s.writeFaults(w)
}
