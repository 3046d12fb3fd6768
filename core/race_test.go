//go:build race

package core

// raceEnabled: the race detector slows the simulation about tenfold, so
// TestSimulation runs fewer schedules under it by default; CI runs the full
// count without it (.ci/run).
const raceEnabled = true
