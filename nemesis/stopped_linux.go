package nemesis

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// waitStopped waits until every thread of process pid is stopped, as
// /proc shows it: SIGSTOP is delivered asynchronously, and a thread still
// running could answer a request after Pause returned. It gives up after
// stopWait.
func waitStopped(pid int) error {
	deadline := time.Now().Add(stopWait)
	for {
		if allStopped(pid) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d: not every thread stopped within %v of SIGSTOP", pid, stopWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// stopWait bounds how long Pause waits for a process to stop.
const stopWait = 5 * time.Second

// allStopped reports whether every task of pid is in state T (stopped) or
// t (traced); a process that has gone counts as stopped.
func allStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return true
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		// The state follows the command's closing parenthesis.
		_, rest, ok := strings.Cut(string(b), ") ")
		if !ok || len(rest) == 0 || (rest[0] != 'T' && rest[0] != 't') {
			return false
		}
	}
	return true
}
