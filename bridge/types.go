package bridge

// #include "hotcb_torch.h"
import "C"

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is a tensor element type.
type DType int

// Element types; the values are the C ABI's.
const (
	Float32  DType = C.HC_FLOAT32
	Float64  DType = C.HC_FLOAT64
	Float16  DType = C.HC_FLOAT16
	BFloat16 DType = C.HC_BFLOAT16
	Int64    DType = C.HC_INT64
	Int32    DType = C.HC_INT32
	Uint8    DType = C.HC_UINT8
	Bool     DType = C.HC_BOOL
	Int8     DType = C.HC_INT8
	Int16    DType = C.HC_INT16
)

var dtypeNames = map[DType]string{
	Float32: "float32", Float64: "float64", Float16: "float16", BFloat16: "bfloat16",
	Int64: "int64", Int32: "int32", Uint8: "uint8", Bool: "bool", Int8: "int8", Int16: "int16",
}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == Float32 || d == Float64 || d == Float16 || d == BFloat16 }

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Float64, Int64:
		return 8
	case Float32, Int32:
		return 4
	case Float16, BFloat16, Int16:
		return 2
	default:
		return 1
	}
}

// ParseDType accepts the names String returns and PyTorch's ("float", "long", "half", ...).
func ParseDType(s string) (DType, error) {
	switch strings.TrimPrefix(strings.ToLower(s), "torch.") {
	case "float32", "float":
		return Float32, nil
	case "float64", "double":
		return Float64, nil
	case "float16", "half":
		return Float16, nil
	case "bfloat16":
		return BFloat16, nil
	case "int64", "long":
		return Int64, nil
	case "int32", "int":
		return Int32, nil
	case "uint8":
		return Uint8, nil
	case "bool":
		return Bool, nil
	case "int8":
		return Int8, nil
	case "int16", "short":
		return Int16, nil
	}
	return 0, fmt.Errorf("unknown dtype %q (want float32, float64, float16, bfloat16, int64, int32, uint8, bool, int8 or int16)", s)
}

// Device is where a tensor lives: CPU (the zero value), or a CUDA device made with CUDA(n).
type Device int

// CPU is the host device.
const CPU Device = 0

// CUDA returns the n-th CUDA device.
func CUDA(n int) Device { return Device(n + 1) }

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d > 0 }

// Index is the CUDA ordinal (-1 for CPU).
func (d Device) Index() int { return int(d) - 1 }

// code is the C ABI's number for d: HC_CPU or the CUDA ordinal.
func (d Device) code() int64 {
	if d == CPU {
		return C.HC_CPU
	}
	return int64(d) - 1
}

func deviceFromCode(c int) Device {
	if c == C.HC_CPU {
		return CPU
	}
	if c < 0 {
		return Device(-1000 + c) // a device kind the ABI does not name
	}
	return CUDA(c)
}

func (d Device) String() string {
	switch {
	case d == CPU:
		return "cpu"
	case d > 0:
		return "cuda:" + strconv.Itoa(d.Index())
	}
	return "device(" + strconv.Itoa(int(d)) + ")"
}

// ParseDevice accepts "cpu", "cuda" (device 0) and "cuda:N".
func ParseDevice(s string) (Device, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || n < 0 {
			return CPU, fmt.Errorf("bad CUDA ordinal in device %q", s)
		}
		return CUDA(n), nil
	}
	return CPU, fmt.Errorf("unknown device %q (want cpu, cuda or cuda:N)", s)
}

// Option sets the dtype or device of a new tensor: pass a DType, a Device, or both.
type Option interface{ apply(*options) }

type options struct {
	dtype  DType
	device Device
	set    bool // dtype given explicitly
}

func (d DType) apply(o *options)  { o.dtype, o.set = d, true }
func (d Device) apply(o *options) { o.device = d }

func makeOptions(def DType, opts []Option) options {
	o := options{dtype: def, device: CPU}
	for _, op := range opts {
		if op != nil {
			op.apply(&o)
		}
	}
	return o
}

// Shape is a list of dimension sizes.
type Shape []int64

// Numel is the product of the sizes (1 for a scalar's empty shape).
func (s Shape) Numel() int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}
