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

// readLog returns the bytes of the log at path, mapped rather than copied,
// and the extents of the file that may hold anything but zeros. The file is
// preallocated (DefaultSize) and mostly a hole that reads as zero: the
// pages of the mapping are faulted in only where scan reads, and scan
// reads past the log's end only where the file holds data, so an Open
// costs what the log holds, not DefaultSize (a populated mapping, its zero
// check and its unmapping were about 0.9 ms of every command). Reading the
// hole would also put zero pages in the page cache, which SEEK_DATA then
// reports as data, and every later Open would read them again. Nothing may
// refer to data after release.
func readLog(path string) (data []byte, ext []extent, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, nil, err
	}
	size := fi.Size()
	if size == 0 || size != int64(int(size)) {
		data, err := os.ReadFile(path)
		return data, whole(int64(len(data))), func() {}, err
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		data, err := os.ReadFile(path)
		return data, whole(int64(len(data))), func() {}, err
	}
	return data, dataExtents(int(f.Fd()), size), func() { _ = syscall.Munmap(data) }, nil
}

// Linux's lseek whences, which package syscall does not name.
const (
	seekData = 3
	seekHole = 4
)

// dataExtents returns the extents of the file fd of size bytes that hold
// data, by SEEK_DATA and SEEK_HOLE: the rest is holes, and a hole reads as
// zero whatever the disk under it holds. A filesystem that cannot tell
// calls the whole file data; so does any error, so that nothing is
// skipped that might not be zero.
func dataExtents(fd int, size int64) []extent {
	var ext []extent
	for off := int64(0); off < size; {
		start, err := syscall.Seek(fd, off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // no data from off on
		}
		if err != nil {
			return whole(size)
		}
		end, err := syscall.Seek(fd, start, seekHole)
		if err != nil || end <= start {
			return whole(size)
		}
		end = min(end, size)
		ext = append(ext, extent{start, end})
		off = end
	}
	return ext
}
