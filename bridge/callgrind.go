//go:build callgrind

package bridge

/*
#cgo CFLAGS: -DHOTCB_CALLGRIND_REQUIRED
#include "hotcb_callgrind.h"
*/
import "C"

import "unsafe"

// CallgrindAvailable reports whether the callgrind client requests are compiled in: true in a
// build with -tags callgrind (which needs valgrind's headers), false otherwise.
func CallgrindAvailable() bool { return C.hc_callgrind_available() != 0 }

// OnValgrind reports whether the process runs under valgrind (false without -tags callgrind).
func OnValgrind() bool { return C.hc_callgrind_running() != 0 }

// CallgrindBegin zeroes callgrind's counters and switches its instrumentation on, for a process
// started with valgrind --tool=callgrind --instr-atstart=no. Outside valgrind it does nothing.
// The window counts the calling thread (with --separate-threads=yes): lock it
// (runtime.LockOSThread) until CallgrindEnd.
func CallgrindBegin() { C.hc_callgrind_begin() }

// CallgrindEnd writes the counts since CallgrindBegin as a dump named label and switches the
// instrumentation off again. Outside valgrind it does nothing.
func CallgrindEnd(label string) {
	b := append([]byte(label), 0)
	C.hc_callgrind_end((*C.char)(unsafe.Pointer(&b[0])))
}
