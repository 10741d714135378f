//go:build race

package browser

// raceEnabled: the race detector slows Go code about tenfold, so the timing test measures
// nothing then (it checks the page on a smaller run instead).
const raceEnabled = true
