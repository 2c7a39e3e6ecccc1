//go:build race

package integration

// A test binary built with -race builds the broker with -race too (see TestMain).
func init() { raceEnabled = true }
