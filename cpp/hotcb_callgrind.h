// hotcb_callgrind.h: callgrind client requests that delimit a counted window, header-only (static
// inline, no libtorch). Package bridge compiles them in when built with -tags callgrind
// (bridge/callgrind.go); the benchmarks' C++ reference includes this header and their Python
// reference loads bench/python/marks.c, built from it, through ctypes. Outside valgrind every
// request is a few no-op instructions.
//
// Valgrind's own header (valgrind/callgrind.h, Debian package valgrind) supplies the requests.
// Without it the requests compile to nothing and hc_callgrind_available returns 0, unless
// HOTCB_CALLGRIND_REQUIRED is defined, which makes the missing header a compile error (the Go
// build defines it, so that a build made before valgrind was installed is never the one cached).
#ifndef HOTCB_CALLGRIND_H
#define HOTCB_CALLGRIND_H

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HOTCB_HAVE_CALLGRIND 1
#endif
#endif

#if defined(HOTCB_CALLGRIND_REQUIRED) && !defined(HOTCB_HAVE_CALLGRIND)
#error "-tags callgrind needs valgrind's headers (valgrind/callgrind.h): install valgrind (make deps-instr)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

// hc_callgrind_available reports whether the client requests were compiled in.
static inline int hc_callgrind_available(void) {
#ifdef HOTCB_HAVE_CALLGRIND
  return 1;
#else
  return 0;
#endif
}

// hc_callgrind_running reports whether the process runs under valgrind.
static inline int hc_callgrind_running(void) {
#ifdef HOTCB_HAVE_CALLGRIND
  return RUNNING_ON_VALGRIND ? 1 : 0;
#else
  return 0;
#endif
}

// hc_callgrind_begin zeroes callgrind's counters and switches instrumentation on (a process run
// with --instr-atstart=no runs uninstrumented, and several times faster, until then).
static inline void hc_callgrind_begin(void) {
#ifdef HOTCB_HAVE_CALLGRIND
  CALLGRIND_START_INSTRUMENTATION;
  CALLGRIND_ZERO_STATS;
#endif
}

// hc_callgrind_end writes the counts since hc_callgrind_begin as a dump named label and switches
// instrumentation off again.
static inline void hc_callgrind_end(const char *label) {
#ifdef HOTCB_HAVE_CALLGRIND
  CALLGRIND_DUMP_STATS_AT(label);
  CALLGRIND_STOP_INSTRUMENTATION;
#else
  (void)label;
#endif
}

#ifdef __cplusplus
}
#endif

#endif
