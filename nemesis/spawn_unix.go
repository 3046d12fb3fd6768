//go:build unix && !linux

package nemesis

import (
	"os"
	"syscall"
)

var sigStop, sigCont os.Signal = syscall.SIGSTOP, syscall.SIGCONT

// sysProcAttr puts a server in a process group of its own, so that the
// terminal's Ctrl-C reaches the command, which stops it, and not the
// server directly.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
