package nemesis

import (
	"os"
	"syscall"
)

var sigStop, sigCont os.Signal = syscall.SIGSTOP, syscall.SIGCONT

// sysProcAttr puts a server in a process group of its own, so that the
// terminal's Ctrl-C reaches the command, which stops it, and not the
// server directly; and has the kernel kill it if the command dies without
// stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
