// Package history writes, reads and judges histories of operations on
// group ids: JSON Lines, one line for each create, delete or read of an id
// and for each fault window of a nemesis, in the format that README
// ("Histories and rops verify") documents and keeps stable.
//
// Verify is a judge from outside rops: it checks a history for
// linearizability with anishathalye/porcupine, against a model of one id
// as a set-membership register (absent or present), one partition per id.
// It reads nothing of rops but the history, so any program that writes
// this format can be judged by it, and rops' own judges by comparison.
package history
