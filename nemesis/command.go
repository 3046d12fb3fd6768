package nemesis

import (
	"context"
	"os"
	"os/exec"
)

// Command returns the command of a process that the nemesis may strike,
// set up as Spawn sets up its servers: in a process group of its own, so
// that the terminal's Ctrl-C reaches only the command that started it, and
// (on Linux) killed by the kernel if that command dies first.
func Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = sysProcAttr()
	return cmd
}

// Stop stops p with SIGSTOP; it fails where there is no such signal.
func Stop(p *os.Process) error { return p.Signal(sigStop) }

// Continue continues p with SIGCONT; it fails where there is no such
// signal.
func Continue(p *os.Process) error { return p.Signal(sigCont) }
