// Package instr reads callgrind's counts for the benchmarks' deterministic cost figure. A process
// run under valgrind --tool=callgrind --instr-atstart=no (Args builds that command line) runs
// uninstrumented until a window opens: bridge.CallgrindBegin zeroes callgrind's counters and
// switches its instrumentation on, bridge.CallgrindEnd dumps the counts since then under a label
// and switches it off again (cpp/hotcb_callgrind.h's client requests, compiled into the bridge
// with -tags callgrind; bench/cpp/ref.cpp includes the same header and bench/python/ref.py loads
// bench/python/marks.c through ctypes). With --separate-threads=yes a dump holds the requesting
// thread only, so a window counts the instructions of the thread that ran it and nothing else.
// ReadDump and FindWindow read the dumps back; Profile attributes them per function.
package instr
