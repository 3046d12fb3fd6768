package core

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: the
// coordinator starts one per node per operation, and each must end with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
