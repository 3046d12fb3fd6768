package main

import (
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
