//go:build !unix

package nemesis

import (
	"os"
	"syscall"
)

// No SIGSTOP here: Pause and Resume fail with the error of signalling it.
var sigStop, sigCont os.Signal = unsupported{}, unsupported{}

type unsupported struct{}

func (unsupported) Signal()        {}
func (unsupported) String() string { return "SIGSTOP/SIGCONT (not on this system)" }

func sysProcAttr() *syscall.SysProcAttr { return nil }
