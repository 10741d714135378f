// marks.c: cpp/hotcb_callgrind.h's requests as exported functions, built into a shared library
// (build/bench/libhotcb_callgrind_marks.so) that bench/python/ref.py loads through ctypes.
#include "../../cpp/hotcb_callgrind.h"

int hotcb_marks_available(void) { return hc_callgrind_available(); }
int hotcb_marks_running(void) { return hc_callgrind_running(); }
void hotcb_marks_begin(void) { hc_callgrind_begin(); }
void hotcb_marks_end(const char *label) { hc_callgrind_end(label); }
