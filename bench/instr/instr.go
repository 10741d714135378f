// Package instr counts instructions with callgrind, for the benchmarks' deterministic cost
// figure. A process run under valgrind --tool=callgrind --instr-atstart=no runs uninstrumented
// until Begin; Begin zeroes callgrind's counters and switches its instrumentation on, End dumps
// the counts since Begin under a label and switches it off again (mark.h's client requests:
// bench/cpp/ref.cpp includes the same header and bench/python/ref.py calls mark.c through
// ctypes). With --separate-threads=yes a client request dumps the calling thread only, so a
// window counts the instructions of the thread that ran it and nothing else. ReadDump and
// FindWindow read the dumps back; Args builds valgrind's command line. Outside valgrind Begin and
// End cost a cgo call and a few no-op instructions.
package instr

// #include "mark.h"
import "C"

import "unsafe"

// Available reports whether the client requests were compiled in (valgrind's headers were
// found when this package was built).
func Available() bool { return C.hotcb_instr_available() != 0 }

// OnValgrind reports whether the process runs under valgrind.
func OnValgrind() bool { return C.hotcb_instr_on_valgrind() != 0 }

// Begin zeroes callgrind's counters and switches instrumentation on.
func Begin() { C.hotcb_instr_begin() }

// End dumps the counts since Begin under label and switches instrumentation off.
func End(label string) {
	b := append([]byte(label), 0)
	C.hotcb_instr_end((*C.char)(unsafe.Pointer(&b[0])))
}
