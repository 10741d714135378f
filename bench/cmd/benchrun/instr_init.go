package main

import (
	"os"
	"runtime"
	"slices"
)

// init keeps the instruction-count server's main goroutine on the process's main thread from
// the start (a LockOSThread in an init function does that): every counted window then runs on
// the same thread, and its libtorch allocations come from glibc's main arena in every run. A
// lock taken later, in runInstrServe, could find the goroutine moved to another thread (another
// arena) by an earlier cgo call.
func init() {
	if slices.Contains(os.Args[1:], "-instr-serve") {
		runtime.LockOSThread()
	}
}
