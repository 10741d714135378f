// mark.h: the callgrind client requests that delimit a measured window, shared by the Go side
// (package instr, through cgo), the C++ reference (bench/cpp/ref.cpp includes it) and the Python
// reference (bench/python/ref.py loads mark.c built as a shared library, through ctypes).
// Outside valgrind every request is a few no-op instructions.
#ifndef HOTCB_BENCH_INSTR_MARK_H
#define HOTCB_BENCH_INSTR_MARK_H

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HOTCB_HAVE_CALLGRIND 1
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

// hotcb_instr_available reports whether the client requests were compiled in (valgrind's headers
// were found).
static inline int hotcb_instr_available(void) {
#ifdef HOTCB_HAVE_CALLGRIND
  return 1;
#else
  return 0;
#endif
}

// hotcb_instr_on_valgrind reports whether the process runs under valgrind.
static inline int hotcb_instr_on_valgrind(void) {
#ifdef HOTCB_HAVE_CALLGRIND
  return RUNNING_ON_VALGRIND ? 1 : 0;
#else
  return 0;
#endif
}

// hotcb_instr_begin zeroes callgrind's counters and switches instrumentation on (a process run
// with --instr-atstart=no runs uninstrumented, and several times faster, until then).
static inline void hotcb_instr_begin(void) {
#ifdef HOTCB_HAVE_CALLGRIND
  CALLGRIND_START_INSTRUMENTATION;
  CALLGRIND_ZERO_STATS;
#endif
}

// hotcb_instr_end writes the counts since hotcb_instr_begin as a dump named label and switches
// instrumentation off again.
static inline void hotcb_instr_end(const char *label) {
#ifdef HOTCB_HAVE_CALLGRIND
  CALLGRIND_DUMP_STATS_AT(label);
  CALLGRIND_STOP_INSTRUMENTATION;
#endif
}

#ifdef __cplusplus
}
#endif

#endif
