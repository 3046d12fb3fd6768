//go:build race

package nemesis

// raceEnabled: the tests run under -race, and so does the rops they build,
// which then shares the build cache with the root package's end-to-end
// tests (built -race in CI).
const raceEnabled = true
