package bridge

// #include "hotcb_torch.h"
import "C"

import "math"

// creation ops take: dtype, device, shape...
func create(name string, op C.int, def DType, shape Shape, ds []float64, opts []Option) *Tensor {
	o := makeOptions(def, opts)
	var inline [10]int64
	is := append(inline[:0], int64(o.dtype), o.device.code())
	is = append(is, shape...)
	return call1(name, op, nil, is, ds)
}

// Zeros returns a tensor of zeros (float32 on the CPU unless options say otherwise).
func Zeros(shape Shape, opts ...Option) *Tensor {
	return create("zeros", C.HC_ZEROS, Float32, shape, nil, opts)
}

// Ones returns a tensor of ones.
func Ones(shape Shape, opts ...Option) *Tensor {
	return create("ones", C.HC_ONES, Float32, shape, nil, opts)
}

// Empty returns an uninitialised tensor.
func Empty(shape Shape, opts ...Option) *Tensor {
	return create("empty", C.HC_EMPTY, Float32, shape, nil, opts)
}

// Full returns a tensor filled with v.
func Full(shape Shape, v float64, opts ...Option) *Tensor {
	return create("full", C.HC_FULL, Float32, shape, []float64{v}, opts)
}

// Rand returns uniform samples from [0, 1).
func Rand(shape Shape, opts ...Option) *Tensor {
	return create("rand", C.HC_RAND, Float32, shape, nil, opts)
}

// Randn returns standard normal samples.
func Randn(shape Shape, opts ...Option) *Tensor {
	return create("randn", C.HC_RANDN, Float32, shape, nil, opts)
}

// RandInt returns integers uniform in [low, high) (int64 unless options say otherwise).
func RandInt(low, high int64, shape Shape, opts ...Option) *Tensor {
	return create("randint", C.HC_RANDINT, Int64, shape, []float64{float64(low), float64(high)}, opts)
}

// Arange returns start, start+step, ... below end. Like PyTorch, the dtype is int64 when all
// three are whole numbers and float32 otherwise, unless an option says otherwise.
func Arange(start, end, step float64, opts ...Option) *Tensor {
	def := Float32
	if start == math.Trunc(start) && end == math.Trunc(end) && step == math.Trunc(step) {
		def = Int64
	}
	o := makeOptions(def, opts)
	return call1("arange", C.HC_ARANGE, nil, []int64{int64(o.dtype), o.device.code()}, []float64{start, end, step})
}

// Eye returns an n×m matrix with ones on the diagonal.
func Eye(n, m int64, opts ...Option) *Tensor {
	o := makeOptions(Float32, opts)
	return call1("eye", C.HC_EYE, nil, []int64{int64(o.dtype), o.device.code(), n, m}, nil)
}

// To returns the tensor on another device and/or with another dtype (t itself if nothing
// changes, as in PyTorch).
func (t *Tensor) To(opts ...Option) *Tensor {
	dev, dt := int64(C.HC_KEEP), int64(C.HC_KEEP)
	for _, op := range opts {
		switch v := op.(type) {
		case DType:
			dt = int64(v)
		case Device:
			dev = v.code()
		}
	}
	return call1("to", C.HC_TO, []*Tensor{t}, []int64{dev, dt, 0, 0}, nil)
}

// ToNonBlocking is To with non_blocking=true: a host-to-device copy from pinned memory may
// overlap with computation.
func (t *Tensor) ToNonBlocking(dev Device) *Tensor {
	return call1("to", C.HC_TO, []*Tensor{t}, []int64{dev.code(), int64(C.HC_KEEP), 1, 0}, nil)
}

// Contiguous returns a tensor with row-major memory layout (t itself if already so).
func (t *Tensor) Contiguous() *Tensor {
	return call1("contiguous", C.HC_CONTIGUOUS, []*Tensor{t}, nil, nil)
}

// Clone returns a copy with its own memory (recorded by autograd).
func (t *Tensor) Clone() *Tensor { return call1("clone", C.HC_CLONE, []*Tensor{t}, nil, nil) }
