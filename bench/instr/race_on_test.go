//go:build race

package instr

// A binary built with the race detector does not run under valgrind (its shadow memory).
const raceEnabled = true
