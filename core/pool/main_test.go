package pool

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: every worker
// ForEach starts must end with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
