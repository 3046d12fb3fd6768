//go:build !linux

package badger

// releaseTables does nothing here: only Linux says where badger's tables
// are mapped (mmap_linux.go).
func releaseTables(string) {}
