package wal

import (
	"errors"
	"os"
	"syscall"
)

// datasync makes f's data durable. The log's size never changes once it is
// preallocated, so its data sync does not wait for metadata.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// preallocate gives f size bytes of disk, reading as zero, so that appends
// never run out of space and never change the file's size.
func preallocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return f.Truncate(size)
	}
	return err
}
