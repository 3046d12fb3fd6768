//go:build linux || darwin

package cli

import "syscall"

// diskFree returns the bytes that an unprivileged process may still write
// on the file system of dir (or of its nearest existing ancestor).
func diskFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(existing(dir), &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
