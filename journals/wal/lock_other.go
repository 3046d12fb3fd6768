//go:build !unix

package wal

import "os"

// lockDir does not lock on this system: only one rops command at a time
// may use a journal, and nothing enforces it here.
func lockDir(string) (*os.File, error) { return nil, nil }

func unlock(f *os.File) {}
