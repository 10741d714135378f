// mark.c: mark.h's requests as exported functions, built into a shared library for
// bench/python/ref.py (ctypes) and compiled into package instr by cgo.
#include "mark.h"

int hotcb_mark_available(void) { return hotcb_instr_available(); }
int hotcb_mark_on_valgrind(void) { return hotcb_instr_on_valgrind(); }
void hotcb_mark_begin(void) { hotcb_instr_begin(); }
void hotcb_mark_end(const char *label) { hotcb_instr_end(label); }
