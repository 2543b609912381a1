//go:build race

package smtp

// raceEnabled skips tests too slow under the race detector.
const raceEnabled = true
