package main

import (
	"os/exec"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestCompletion runs the scripts in testdata/completion: the scripts rops
// completion prints, compared with cmpenv against golden files that name
// the binary as $ROPS_BIN, and the answers the binary gives the shell.
func TestCompletion(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/completion",
		RequireExplicitExec: true,
		UpdateScripts:       *update,
		Setup: func(env *testscript.Env) error {
			// The rops that scripts run: testscript's copy of this test
			// binary, first on PATH.
			bin, err := exec.LookPath("rops")
			if err != nil {
				return err
			}
			env.Setenv("ROPS_BIN", bin)
			env.Setenv("ROPS_DATA", env.Getenv("WORK")+"/data")
			env.Setenv("HOME", isolated.home)
			env.Setenv("XDG_DATA_HOME", isolated.data)
			env.Setenv("XDG_CONFIG_HOME", isolated.config)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"exits": exits},
	})
}
