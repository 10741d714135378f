// handles.h: the shim's calls that take arrays of tensor handles, declared here with uintptr_t
// elements instead of hc_tensor. A handle is a C pointer, so these arrays never hold a Go
// pointer; but cgo checks at run time every argument that points at pointers (cgoCheckPointer,
// ≈240 instructions a check, three per call: bench/README.md, Instruction counts). Typed as
// integers they are not checked. Each function only converts and calls the shim's own.
#ifndef HOTCB_BRIDGE_HANDLES_H
#define HOTCB_BRIDGE_HANDLES_H

#include <stdint.h>
#include "hotcb_torch.h"

static inline hc_err hcw_call(int op, const uintptr_t *t, int nt, const int64_t *i, int ni,
                              const double *d, int nd, uintptr_t *out, int nout) {
  return hc_call(op, (const hc_tensor *)t, nt, i, ni, d, nd, (hc_tensor *)out, nout);
}

static inline hc_err hcw_aten(int32_t op, const uintptr_t *t, int32_t nt, const int64_t *i,
                              int32_t ni, const double *d, int32_t nd, const char *s, int32_t ns,
                              uintptr_t *out, int32_t nout, uintptr_t *list, int64_t *nlist,
                              int64_t *iout, double *dout) {
  return hc_aten(op, (const hc_tensor *)t, nt, i, ni, d, nd, s, ns, (hc_tensor *)out, nout,
                 (hc_tensor **)list, nlist, iout, dout);
}

static inline hc_err hcw_aten_boxed(int32_t id, const uintptr_t *t, int32_t nt, const int64_t *i,
                                    int32_t ni, const double *d, int32_t nd, const char *s,
                                    int32_t ns, hc_aten_values *out) {
  return hc_aten_boxed(id, (const hc_tensor *)t, nt, i, ni, d, nd, s, ns, out);
}

static inline void hcw_tensor_free_many(const uintptr_t *t, int n) {
  hc_tensor_free_many((const hc_tensor *)t, n);
}

#endif
