package bridge

/*
#cgo noescape hcw_aten_boxed
#cgo nocallback hcw_aten_boxed
#cgo noescape hc_aten_lookup
#cgo nocallback hc_aten_lookup
#include <stdlib.h>
#include "hotcb_torch.h"
#include "handles.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// ATenOp is an op registered with libtorch's dispatcher, found by ATenLookup.
type ATenOp struct {
	ID     int32  // the shim's id for ATenCallBoxed
	Name   string // as looked up: "aten::add.Tensor"
	Schema string // the registered schema: "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"
}

// ATenLookup finds the op registered under name ("aten::tril" is the default overload,
// "aten::add.Tensor" a named one). An op that is not registered is not an error: found is false,
// and overloads lists the registered overloads of the same name (none when no op has it).
// Package aten (CallOp) uses this; programs use that.
func ATenLookup(name string) (op ATenOp, found bool, overloads []string, err error) {
	var id C.int32_t
	var schema, others *C.char
	b := []byte(name)
	if len(b) == 0 {
		return op, false, nil, nil
	}
	e := C.hc_aten_lookup((*C.char)(unsafe.Pointer(&b[0])), C.int32_t(len(b)), &id, &schema, &others)
	if e != nil {
		return op, false, nil, checkErr(name, e)
	}
	if others != nil {
		overloads = strings.Fields(takeString(others))
	}
	if id < 0 {
		return op, false, overloads, nil
	}
	return ATenOp{ID: int32(id), Name: name, Schema: takeString(schema)}, true, nil, nil
}

// ATenEnum is a Layout or MemoryFormat result of ATenCallBoxed (at::Layout's or
// at::MemoryFormat's number), which package aten turns into its own types.
type ATenEnum struct {
	MemoryFormat bool // else a layout
	V            int64
}

// ATenCallBoxed calls op through the dispatcher's boxed path with args, every one tagged
// (TaggedTensor, not Tensor; Named and Default as needed); the shim converts each to the type
// the schema declares and fills the arguments left out from its defaults. It returns one value
// per return of the schema: *Tensor (nil for None or an undefined tensor), []*Tensor (nil
// entries for None), int64, float64, bool, DType, Device, string, []int64, []float64, []bool,
// []string, ATenEnum, []any (a tuple) or nil (None). Every tensor is a new handle. Errors are
// returned, not panicked: a bad argument (named as the schema names it) or libtorch's own.
func ATenCallBoxed(op ATenOp, args *ATenArgs) ([]any, error) {
	ts, is, ds := args.streams()
	var inline [maxInline]C.hc_tensor
	tp, ip, dp, ok := cArgs(&inline, ts, is, ds)
	if !ok {
		return nil, freedError(op.Name)
	}
	var sp *C.char
	if len(args.s) > 0 {
		sp = (*C.char)(unsafe.Pointer(&args.s[0]))
	}
	var out C.hc_aten_values
	e := C.hcw_aten_boxed(C.int32_t(op.ID), tp, C.int32_t(len(ts)), ip, C.int32_t(len(is)), dp, C.int32_t(len(ds)),
		sp, C.int32_t(len(args.s)), &out)
	runtime.KeepAlive(args)
	runtime.KeepAlive(ts)
	if e != nil {
		return nil, checkErr(op.Name, e)
	}
	defer C.hc_aten_values_free(&out)
	d := valueDecoder{op: op.Name}
	for _, h := range unsafe.Slice(out.t, int(out.nt)) {
		d.t = append(d.t, wrap(h)) // owned before anything else can fail
	}
	d.i = unsafe.Slice((*int64)(unsafe.Pointer(out.i)), int(out.ni))
	d.d = unsafe.Slice((*float64)(unsafe.Pointer(out.d)), int(out.nd))
	d.s = C.GoStringN(out.s, out.ns)
	return d.all()
}

// valueDecoder reads hc_aten_boxed's results (cpp/aten_call.h's tags).
type valueDecoder struct {
	op             string
	t              []*Tensor
	i              []int64
	d              []float64
	s              string
	ti, ii, di, si int
	err            error
}

func (d *valueDecoder) all() ([]any, error) {
	var vals []any
	for d.err == nil && d.ii < len(d.i) {
		vals = append(vals, d.value())
	}
	if d.err == nil && (d.ti != len(d.t) || d.di != len(d.d) || d.si != len(d.s)) {
		d.fail("values left over")
	}
	if d.err != nil {
		return nil, d.err
	}
	return vals, nil
}

func (d *valueDecoder) fail(what string) {
	if d.err == nil {
		d.err = &Error{Op: d.op, Msg: "the shim's results do not decode (" + what + "): a shim built from other sources?"}
	}
}

func (d *valueDecoder) next() int64 {
	if d.ii >= len(d.i) {
		d.fail("missing a value")
		return 0
	}
	d.ii++
	return d.i[d.ii-1]
}

func (d *valueDecoder) count() int {
	n := d.next()
	if n < 0 || n > int64(len(d.i)+len(d.t)+len(d.d)+len(d.s)) {
		d.fail(fmt.Sprintf("bad length %d", n))
		return 0
	}
	return int(n)
}

func (d *valueDecoder) tensor() *Tensor {
	if d.ti >= len(d.t) {
		d.fail("missing a tensor")
		return nil
	}
	d.ti++
	return d.t[d.ti-1]
}

func (d *valueDecoder) float() float64 {
	if d.di >= len(d.d) {
		d.fail("missing a float")
		return 0
	}
	d.di++
	return d.d[d.di-1]
}

func (d *valueDecoder) str() string {
	n := d.count()
	if d.si+n > len(d.s) {
		d.fail("string past the bytes")
		return ""
	}
	d.si += n
	return d.s[d.si-n : d.si]
}

func (d *valueDecoder) value() any {
	switch tag := d.next(); tag {
	case tagNone:
		return nil
	case tagTensor:
		return d.tensor() // a nil *Tensor for an undefined one
	case tagTensors:
		v := make([]*Tensor, d.count())
		for k := range v {
			v[k] = d.tensor()
		}
		return v
	case tagInt:
		return d.next()
	case tagFloat:
		return d.float()
	case tagBool:
		return d.next() != 0
	case tagDtype:
		return DType(d.next())
	case tagDevice:
		return deviceFromCode(int(d.next()))
	case tagLayout:
		return ATenEnum{V: d.next()}
	case tagMemFmt:
		return ATenEnum{MemoryFormat: true, V: d.next()}
	case tagStr:
		return d.str()
	case tagInts:
		v := make([]int64, d.count())
		for k := range v {
			v[k] = d.next()
		}
		return v
	case tagFloats:
		v := make([]float64, d.count())
		for k := range v {
			v[k] = d.float()
		}
		return v
	case tagBools:
		v := make([]bool, d.count())
		for k := range v {
			v[k] = d.next() != 0
		}
		return v
	case tagStrs:
		v := make([]string, d.count())
		for k := range v {
			v[k] = d.str()
		}
		return v
	case tagTuple:
		v := make([]any, d.count())
		for k := range v {
			v[k] = d.value()
		}
		return v
	default:
		d.fail(fmt.Sprintf("unknown tag %d", tag))
		return nil
	}
}
