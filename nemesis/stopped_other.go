//go:build !linux

package nemesis

// waitStopped returns at once where /proc cannot say that a process has
// stopped: SIGSTOP takes effect soon after it is sent.
func waitStopped(int) error { return nil }
