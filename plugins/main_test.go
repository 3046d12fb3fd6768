package plugins_test

import (
	"testing"

	"go.uber.org/goleak"

	// The tests open specs of the drivers rops ships, with its faults.
	// Only the tests import them: the package itself imports no driver
	// and no decorator (see TestImportsNoDriver).
	_ "github.com/reliable-ops/rops/decorators/faults"
	_ "github.com/reliable-ops/rops/drivers/badger"
	_ "github.com/reliable-ops/rops/drivers/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
