//go:build unix

package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/reliable-ops/rops/core"
)

// lockDir takes the lock of dir (an flock on its LOCK file, released when
// the process ends however it ends) and writes the process's pid in it.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, core.Errorf(core.EInternal, "cannot open the journal's lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, core.Errorf(core.EInternal, "cannot lock the journal %s: %w", dir, err)
		}
		who := "another process (another rops command?)"
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
			who = fmt.Sprintf("another process (pid %d: another rops command?)", pid)
			if pid == os.Getpid() {
				who = "this process, which has it open already"
			}
		}
		return nil, &core.Error{Code: core.EInvalid, Err: ErrLocked, Message: fmt.Sprintf(
			"journal %s is in use by %s: one rops command at a time may change a cluster; wait for it to finish", dir, who)}
	}
	// Truncate only what the last holder's longer pid left: a truncate is
	// a metadata change the file system journals, and cost commands a
	// millisecond or more when every one did it.
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if _, err := f.WriteAt(pid, 0); err == nil {
		if fi, err := f.Stat(); err == nil && fi.Size() > int64(len(pid)) {
			_ = f.Truncate(int64(len(pid)))
		}
	}
	return f, nil
}

// unlock releases the lock lockDir took.
func unlock(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}
