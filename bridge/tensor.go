package bridge

// #include "hotcb_torch.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// Tensor is a handle to a libtorch tensor. Tensors made by operations may simply be dropped:
// the garbage collector releases them, or the Scope they were made in when it ends. Free
// releases one at once. A Tensor is safe for concurrent reads, but not for a Free (or the end of
// its Scope) concurrent with other uses.
type Tensor struct {
	h       C.hc_tensor
	cleanup runtime.Cleanup // zero while a Scope owns the tensor
	scope   *scope          // the Scope that frees it, if any
	// Padding: the runtime keeps cleanups in a per-span list that AddCleanup and Stop walk, so
	// fewer objects per span makes both ≈2x cheaper (measured with Go 1.26).
	_ [96]byte
}

// wrap takes ownership of a C handle (nil for an undefined tensor).
func wrap(h C.hc_tensor) *Tensor {
	if h == nil {
		return nil
	}
	t := &Tensor{h: h}
	if activeScopes.Load() == 0 || !adopt(t) {
		t.cleanup = runtime.AddCleanup(t, releaseHandle, h)
	}
	notePressure()
	return t
}

// Free releases the tensor's libtorch memory now (other tensors that share its storage, such as
// views, keep it alive). Using the tensor afterwards panics; a second Free returns an error
// wrapping ErrFreed. Free of a nil tensor is a no-op.
func (t *Tensor) Free() error {
	if t == nil {
		return nil
	}
	if t.h == nil {
		return freedError("free")
	}
	if t.scope != nil {
		t.scope = nil // its scope skips it
	} else {
		t.cleanup.Stop()
	}
	C.hc_tensor_free(t.h, 1)
	t.h = nil
	return nil
}

// IsFreed reports whether Free was called or the tensor's Scope has ended.
func (t *Tensor) IsFreed() bool { return t.h == nil }

func (t *Tensor) handle(op string) C.hc_tensor {
	if t == nil {
		panic(argError(op, "nil tensor"))
	}
	if t.h == nil {
		panic(freedError(op))
	}
	return t.h
}

type info struct {
	dtype        DType
	device       Device
	shape        Shape
	requiresGrad bool
}

func (t *Tensor) info(op string, wantShape bool) info {
	h := t.handle(op)
	var dt, dev, nd, rg C.int
	var buf [16]C.int64_t
	var sp *C.int64_t
	if wantShape {
		sp = &buf[0]
	}
	e := C.hc_tensor_info(h, &dt, &dev, &nd, sp, &rg)
	runtime.KeepAlive(t)
	check(op, e)
	in := info{dtype: DType(dt), device: deviceFromCode(int(dev)), requiresGrad: rg != 0}
	if wantShape {
		if nd > 16 {
			panic(argError(op, "tensor has %d dimensions; the bridge reports at most 16", nd))
		}
		in.shape = make(Shape, nd)
		for i := range in.shape {
			in.shape[i] = int64(buf[i])
		}
	}
	return in
}

// Shape returns the sizes of the dimensions.
func (t *Tensor) Shape() Shape { return t.info("shape", true).shape }

// Dim is the number of dimensions.
func (t *Tensor) Dim() int { return len(t.Shape()) }

// Size returns the size of one dimension; negative dims count from the end.
func (t *Tensor) Size(dim int) int64 {
	s := t.Shape()
	d := dim
	if d < 0 {
		d += len(s)
	}
	if d < 0 || d >= len(s) {
		panic(argError("size", "dimension %d out of range for shape %v", dim, s))
	}
	return s[d]
}

// Numel is the number of elements.
func (t *Tensor) Numel() int64 { return t.Shape().Numel() }

// DType is the element type.
func (t *Tensor) DType() DType { return t.info("dtype", false).dtype }

// Device is where the tensor's data lives.
func (t *Tensor) Device() Device { return t.info("device", false).device }

// RequiresGrad reports whether autograd records operations on t.
func (t *Tensor) RequiresGrad() bool { return t.info("requires_grad", false).requiresGrad }

// String renders the tensor as libtorch prints it.
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	if t.h == nil {
		return "<freed tensor>"
	}
	var s *C.char
	e := C.hc_to_string(t.h, &s)
	runtime.KeepAlive(t)
	check("string", e)
	return takeString(s)
}

// Element is a Go type that maps to a tensor dtype.
type Element interface {
	float32 | float64 | int64 | int32 | int16 | int8 | uint8 | bool
}

func dtypeOf[T Element]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case int64:
		return Int64
	case int32:
		return Int32
	case int16:
		return Int16
	case int8:
		return Int8
	case uint8:
		return Uint8
	default:
		return Bool
	}
}

// FromSlice copies data into a new CPU tensor with the given shape (a 1-D tensor when shape is
// omitted). It panics if the shape does not hold len(data) elements.
func FromSlice[T Element](data []T, shape ...int64) *Tensor {
	s := Shape(shape)
	if len(shape) == 0 {
		s = Shape{int64(len(data))}
	}
	if s.Numel() != int64(len(data)) {
		panic(argError("from_slice", "shape %v holds %d elements, data has %d", s, s.Numel(), len(data)))
	}
	return fromData("from_slice", unsafe.Pointer(unsafe.SliceData(data)), dtypeOf[T](), s, CPU, data)
}

func fromData(op string, p unsafe.Pointer, dt DType, s Shape, dev Device, keep any) *Tensor {
	var out C.hc_tensor
	var sp *C.int64_t
	if len(s) > 0 {
		sp = (*C.int64_t)(unsafe.Pointer(&s[0]))
	}
	e := C.hc_from_data(p, C.int(dt), sp, C.int(len(s)), C.int(dev.code()), &out)
	runtime.KeepAlive(keep)
	check(op, e)
	return wrap(out)
}

// Scalar returns a 0-d tensor holding v (float32 unless a DType option says otherwise).
func Scalar(v float64, opts ...Option) *Tensor {
	o := makeOptions(Float32, opts)
	return Full(Shape{}, v, o.dtype, o.device)
}

// Data copies the tensor's elements (converted to T, moved to the CPU) into a new slice in
// row-major order.
func Data[T Element](t *Tensor) []T {
	h := t.handle("data")
	n := t.Numel()
	out := make([]T, n)
	var p unsafe.Pointer
	if n > 0 {
		p = unsafe.Pointer(&out[0])
	}
	e := C.hc_copy_out(h, C.int(dtypeOf[T]()), p, C.int64_t(n))
	runtime.KeepAlive(t)
	check("data", e)
	return out
}

// Float32s copies the elements out as float32.
func (t *Tensor) Float32s() []float32 { return Data[float32](t) }

// Float64s copies the elements out as float64.
func (t *Tensor) Float64s() []float64 { return Data[float64](t) }

// Int64s copies the elements out as int64.
func (t *Tensor) Int64s() []int64 { return Data[int64](t) }

// Bools copies the elements out as bool.
func (t *Tensor) Bools() []bool { return Data[bool](t) }

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() float64 {
	var d C.double
	e := C.hc_item(t.handle("item"), &d, nil)
	runtime.KeepAlive(t)
	check("item", e)
	return float64(d)
}

// ItemInt returns the value of a one-element tensor as an int64 (exact for integer tensors).
func (t *Tensor) ItemInt() int64 {
	var i C.int64_t
	e := C.hc_item(t.handle("item"), nil, &i)
	runtime.KeepAlive(t)
	check("item", e)
	return int64(i)
}
