package cli

import (
	"testing"

	"go.uber.org/goleak"
)

// Commands start workers, node fan-outs, a journal committer and HTTP
// connections: all must be gone when a command returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
