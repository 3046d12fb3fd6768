package cli

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Commands start workers, node fan-outs, a journal committer and HTTP
// connections: all must be gone when a command returns. The tests' rops
// reads its default config from an empty directory, never the user's.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rops-cli-test-config-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	goleak.VerifyTestMain(removeAfter{m, dir})
}

// removeAfter runs the tests, then removes dir.
type removeAfter struct {
	m   *testing.M
	dir string
}

func (r removeAfter) Run() int {
	defer os.RemoveAll(r.dir)
	return r.m.Run()
}
