package faults

// MaxTrackedCalls is maxTrackedCalls, for the test that fills a generation.
const MaxTrackedCalls = maxTrackedCalls
