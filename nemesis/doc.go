// Package nemesis injects faults into a cluster while a check runs, as
// Jepsen's nemesis does: a schedule drawn from one seed of fault windows,
// one at a time, each on one node, recorded as they happen so that a
// history shows them and a run can be replayed.
//
// A window kills a node's server process and restarts it on the same
// address and data, pauses it (SIGSTOP, then SIGCONT), or switches one of
// its faults on and back off: down, late, reset or gateway. Killing and
// pausing need the processes (Spawn starts them: one rops serve per
// node); the faults need only a Switch, such as a server's admin API
// (rops serve --admin).
package nemesis
