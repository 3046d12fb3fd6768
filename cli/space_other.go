//go:build !linux && !darwin

package cli

import "errors"

// diskFree cannot measure free space here: the guard lets every command
// write.
func diskFree(string) (uint64, error) { return 0, errors.ErrUnsupported }
