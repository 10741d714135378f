package bridge

/*
#cgo CFLAGS: -I${SRCDIR}/../cpp
#cgo LDFLAGS: -L${SRCDIR}/../build -Wl,-rpath,${SRCDIR}/../build -Wl,--enable-new-dtags -lhotcb_torch
#cgo noescape hcw_call
#cgo nocallback hcw_call
#cgo noescape hc_tensor_info
#cgo nocallback hc_tensor_info
#cgo noescape hc_from_data
#cgo nocallback hc_from_data
#cgo noescape hc_copy_out
#cgo nocallback hc_copy_out
#cgo nocallback hc_tensor_free
#cgo noescape hcw_tensor_free_many
#cgo nocallback hcw_tensor_free_many
#cgo nocallback hc_scope_current
#cgo nocallback hc_scope_set
#include <stdlib.h>
#include "hotcb_torch.h"
#include "handles.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// maxInline is how many tensor arguments a call passes without a heap allocation.
const maxInline = 6

// cArgs gives the C view of an operation's argument streams: the tensors' handles (nil for an
// absent tensor), the ints and the floats, as pointers to their first elements — nil for an empty
// stream. Up to maxInline handles go in inline, the caller's stack array, so a call allocates
// nothing. A freed tensor makes ok false. The handles go as words (see words).
func cArgs(inline *[maxInline]C.hc_tensor, ts []*Tensor, is []int64, ds []float64) (tp *C.uintptr_t, ip *C.int64_t, dp *C.double, ok bool) {
	hs := inline[:0]
	if len(ts) > maxInline {
		hs = make([]C.hc_tensor, 0, len(ts))
	}
	for _, t := range ts {
		if t == nil {
			hs = append(hs, nil)
			continue
		}
		if t.h == nil {
			return nil, nil, nil, false
		}
		hs = append(hs, t.h)
	}
	if len(hs) > 0 {
		tp = words(&hs[0])
	}
	if len(is) > 0 {
		ip = (*C.int64_t)(unsafe.Pointer(&is[0]))
	}
	if len(ds) > 0 {
		dp = (*C.double)(unsafe.Pointer(&ds[0]))
	}
	return tp, ip, dp, true
}

// words views an array of handles as the uintptr_t array handles.h's calls take: handles are C
// pointers, so cgo need not check the array for Go pointers at every call, as it does for an
// argument typed as pointing at pointers.
func words(h *C.hc_tensor) *C.uintptr_t { return (*C.uintptr_t)(unsafe.Pointer(h)) }

// call runs one C ABI operation. A nil tensor in ts is passed as an undefined (absent) tensor;
// a freed one panics. It returns up to two results (nil where libtorch returned undefined).
func call(name string, op C.int, ts []*Tensor, is []int64, ds []float64, nout int) (r [2]*Tensor) {
	var inline [maxInline]C.hc_tensor
	tp, ip, dp, ok := cArgs(&inline, ts, is, ds)
	if !ok {
		panic(freedError(name))
	}
	var out [2]C.hc_tensor
	e := C.hcw_call(op, tp, C.int(len(ts)), ip, C.int(len(is)), dp, C.int(len(ds)), words(&out[0]), C.int(nout))
	for _, t := range ts {
		runtime.KeepAlive(t)
	}
	check(name, e)
	for k := 0; k < nout && k < 2; k++ {
		r[k] = wrap(out[k])
	}
	return r
}

// call1 is call for the common case of one result.
func call1(name string, op C.int, ts []*Tensor, is []int64, ds []float64) *Tensor {
	return call(name, op, ts, is, ds, 1)[0]
}

// call0 is call for in-place and autograd ops without a result.
func call0(name string, op C.int, ts []*Tensor, is []int64, ds []float64) {
	call(name, op, ts, is, ds, 0)
}

// check turns a C error into a panic with a *Error.
func check(name string, e C.hc_err) {
	if e != nil {
		panic(&Error{Op: name, Msg: takeString(e)})
	}
}

// checkErr turns a C error into a returned error.
func checkErr(name string, e C.hc_err) error {
	if e != nil {
		return &Error{Op: name, Msg: takeString(e)}
	}
	return nil
}

// takeString copies a C string and frees it.
func takeString(s *C.char) string {
	g := C.GoString(s)
	C.hc_free(unsafe.Pointer(s))
	return g
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
