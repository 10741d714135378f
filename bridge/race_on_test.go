//go:build race

package bridge_test

// The race detector's shadow memory grows with Go allocations, so RSS says nothing about
// libtorch memory under -race; `make test` runs the memory test once more without it.
const raceEnabled = true
