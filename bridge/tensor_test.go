package bridge_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/hotcb/hotcb/bridge"
)

// requireTorchError asserts that f panics with a *Error whose message contains every part.
func requireTorchError(t *testing.T, f func(), parts ...string) *Error {
	t.Helper()
	err := Try(f)
	require.Error(t, err, "expected a libtorch error")
	var te *Error
	require.True(t, errors.As(err, &te), "error %T is not *bridge.Error", err)
	for _, p := range parts {
		require.Contains(t, err.Error(), p)
	}
	return te
}

func TestFromSliceRoundTripsEveryDType(t *testing.T) {
	f32 := FromSlice([]float32{1.5, -2, 3, 4, 5, 6}, 2, 3)
	require.Equal(t, Float32, f32.DType())
	require.Equal(t, Shape{2, 3}, f32.Shape())
	require.Equal(t, []float32{1.5, -2, 3, 4, 5, 6}, f32.Float32s())

	f64 := FromSlice([]float64{0.1, 0.2})
	require.Equal(t, Float64, f64.DType())
	require.Equal(t, []float64{0.1, 0.2}, f64.Float64s())

	i64 := FromSlice([]int64{1 << 40, -3}, 2, 1)
	require.Equal(t, Int64, i64.DType())
	require.Equal(t, []int64{1 << 40, -3}, i64.Int64s())

	i32 := FromSlice([]int32{7, 8, 9})
	require.Equal(t, Int32, i32.DType())
	require.Equal(t, []int32{7, 8, 9}, Data[int32](i32))

	u8 := FromSlice([]uint8{0, 255})
	require.Equal(t, Uint8, u8.DType())
	require.Equal(t, []uint8{0, 255}, Data[uint8](u8))

	b := FromSlice([]bool{true, false, true})
	require.Equal(t, Bool, b.DType())
	require.Equal(t, []bool{true, false, true}, b.Bools())

	i8 := FromSlice([]int8{-128, 127})
	require.Equal(t, []int8{-128, 127}, Data[int8](i8))
	i16 := FromSlice([]int16{-300, 300})
	require.Equal(t, []int16{-300, 300}, Data[int16](i16))
}

func TestDTypeConversions(t *testing.T) {
	x := FromSlice([]float32{1.25, -2.75, 3})
	for _, dt := range []DType{Float64, Float16, BFloat16, Int64, Int32, Int16, Int8} {
		y := x.To(dt)
		require.Equal(t, dt, y.DType(), dt.String())
		back := y.To(Float32).Float32s()
		if dt.IsFloat() {
			require.InDeltaSlice(t, []float32{1.25, -2.75, 3}, back, 0.02, dt.String())
		} else {
			require.Equal(t, []float32{1, -2, 3}, back, dt.String()) // truncation toward zero
		}
	}
	// Data converts on the way out.
	require.Equal(t, []int64{1, -2, 3}, x.Int64s())
	require.Equal(t, []bool{true, true, true}, x.Bools())
	// To with nothing to change returns a tensor that shares memory (PyTorch semantics).
	same := x.To(Float32, CPU)
	same.FillInPlace(0)
	require.Equal(t, []float32{0, 0, 0}, x.Float32s())
}

func TestCreation(t *testing.T) {
	require.Equal(t, []float32{0, 0, 0, 0}, Zeros(Shape{2, 2}).Float32s())
	require.Equal(t, []float64{1, 1}, Ones(Shape{2}, Float64).Float64s())
	require.Equal(t, Float64, Ones(Shape{2}, Float64).DType())
	require.Equal(t, []float32{2.5, 2.5, 2.5}, Full(Shape{3}, 2.5).Float32s())
	require.Equal(t, []int64{0, 2, 4}, Arange(0, 6, 2).Int64s())
	require.Equal(t, Float32, Arange(0, 1, 0.25).DType())
	require.Equal(t, []float32{0, 0.25, 0.5, 0.75}, Arange(0, 1, 0.25).Float32s())
	require.Equal(t, []float32{1, 0, 0, 0, 1, 0}, Eye(2, 3).Float32s())
	require.Equal(t, Shape{}, Scalar(3).Shape())
	require.Equal(t, 3.0, Scalar(3).Item())
	require.Equal(t, int64(7), Scalar(7, Int64).ItemInt())

	ManualSeed(1)
	r := Rand(Shape{1000}).Float32s()
	for _, v := range r {
		require.True(t, v >= 0 && v < 1)
	}
	ManualSeed(1)
	require.Equal(t, r, Rand(Shape{1000}).Float32s(), "same seed, same numbers")

	n := Randn(Shape{20000}, Float64)
	require.InDelta(t, 0, n.Mean().Item(), 0.05)
	require.InDelta(t, 1, n.Std(true).Item(), 0.05)

	ri := RandInt(3, 7, Shape{500})
	require.Equal(t, Int64, ri.DType())
	for _, v := range ri.Int64s() {
		require.True(t, v >= 3 && v < 7)
	}
	require.Equal(t, Shape{0, 3}, Zeros(Shape{0, 3}).Shape())
	require.Empty(t, Zeros(Shape{0, 3}).Float32s())
}

func TestShapeInfo(t *testing.T) {
	x := Zeros(Shape{2, 3, 4})
	require.Equal(t, 3, x.Dim())
	require.Equal(t, int64(24), x.Numel())
	require.Equal(t, int64(4), x.Size(-1))
	require.Equal(t, int64(2), x.Size(0))
	require.Equal(t, CPU, x.Device())
	requireTorchError(t, func() { x.Size(3) }, "size", "dimension 3 out of range for shape [2, 3, 4]")
	require.Equal(t, "[2, 3, 4]", x.Shape().String())
}

func TestItemAndString(t *testing.T) {
	require.Equal(t, 6.0, FromSlice([]float32{1, 2, 3}).Sum().Item())
	requireTorchError(t, func() { FromSlice([]float32{1, 2}).Item() }, "item", "2 elements")
	s := FromSlice([]float32{1, 2}).String()
	require.Contains(t, s, "CPUFloatType{2}")
	var nilT *Tensor
	require.Equal(t, "<nil tensor>", nilT.String())
}

func TestDevices(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Device
		err  string
	}{
		{"cpu", CPU, ""}, {"CUDA", CUDA(0), ""}, {"cuda:3", CUDA(3), ""},
		{"cuda:x", CPU, "bad CUDA ordinal"}, {"tpu", CPU, "unknown device \"tpu\""},
	} {
		d, err := ParseDevice(c.in)
		if c.err != "" {
			require.ErrorContains(t, err, c.err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, c.want, d)
	}
	require.Equal(t, "cuda:1", CUDA(1).String())
	require.Equal(t, "cpu", CPU.String())
	var zero Device
	require.Equal(t, CPU, zero, "the zero Device is the CPU, so options structs can leave it unset")
	require.Equal(t, 0, CUDA(0).Index())
	dt, err := ParseDType("torch.long")
	require.NoError(t, err)
	require.Equal(t, Int64, dt)
	_, err = ParseDType("complex32")
	require.ErrorContains(t, err, "unknown dtype \"complex32\"")
}

func TestBadDeviceIsAnError(t *testing.T) {
	if CUDAIsAvailable() {
		t.Skip("this machine has CUDA: a CUDA tensor is not an error here")
	}
	// libtorch names the problem (no CUDA in this build / no device); the process goes on.
	requireTorchError(t, func() { Zeros(Shape{2}, CUDA(0)) }, "zeros")
	requireTorchError(t, func() { FromSlice([]float32{1}).To(CUDA(0)) }, "to")
	requireTorchError(t, func() { Zeros(Shape{2}, Device(-7)) }, "unknown device code -8")
	require.NoError(t, Synchronize(CPU))
	a, r, err := CUDAMemory(CPU)
	require.NoError(t, err)
	require.Zero(t, a+r)
	if !BuiltWithCUDA() {
		_, err := NewEvent()
		require.ErrorContains(t, err, "built without CUDA")
	}
}

func TestFreeAndUseAfterFree(t *testing.T) {
	x := Ones(Shape{3})
	v := x.View(3) // shares storage
	require.NoError(t, x.Free())
	require.True(t, x.IsFreed())
	require.Equal(t, []float32{1, 1, 1}, v.Float32s(), "a view keeps the storage alive")

	err := x.Free()
	require.ErrorIs(t, err, ErrFreed)
	require.Contains(t, err.Error(), "free: use of a freed tensor")

	te := requireTorchError(t, func() { x.Add(v) }, "add: use of a freed tensor")
	require.ErrorIs(t, te, ErrFreed)
	requireTorchError(t, func() { v.Add(x) }, "add", "freed")
	requireTorchError(t, func() { x.Shape() }, "shape", "freed")
	requireTorchError(t, func() { x.Float32s() }, "data", "freed")
	require.Equal(t, "<freed tensor>", x.String())
	var nilT *Tensor
	require.NoError(t, nilT.Free())
	requireTorchError(t, func() { nilT.Shape() }, "nil tensor")
}

func TestFromSliceShapeMismatch(t *testing.T) {
	requireTorchError(t, func() { FromSlice([]float32{1, 2, 3}, 2, 2) },
		"from_slice", "shape [2, 2] holds 4 elements, data has 3")
	requireTorchError(t, func() { Zeros(Shape{-1, 2}) }, "zeros")
}

func TestTryPassesForeignPanicsThrough(t *testing.T) {
	require.PanicsWithValue(t, "not ours", func() {
		_ = Try(func() { panic("not ours") })
	})
	require.NoError(t, Try(func() {}))
}

func TestErrorsNameTheProblem(t *testing.T) {
	a, b := Ones(Shape{2, 3}), Ones(Shape{4, 5})
	requireTorchError(t, func() { a.MatMul(b) }, "torch: matmul:", "2x3", "4x5")
	requireTorchError(t, func() { a.Add(Ones(Shape{4})) }, "add", "size of tensor a (3) must match the size of tensor b (4)")
	requireTorchError(t, func() { a.View(7) }, "view", "[7]", "invalid for input of size 6")
	requireTorchError(t, func() { CrossEntropy(a, Ones(Shape{2})) }, "cross_entropy")
	requireTorchError(t, func() { Linear(a, Ones(Shape{2, 3}, Int64), nil) }, "linear")
	requireTorchError(t, func() { Cat(nil, 0) }, "cat", "no tensors")
	requireTorchError(t, func() { a.IndexSelect(0, FromSlice([]int64{5})) }, "index_select", "out of range")
	// The process is still fine afterwards.
	require.Equal(t, 6.0, a.Sum().Item())
	require.False(t, strings.Contains(Try(func() { a.MatMul(b) }).Error(), "Exception raised from"),
		"no C++ backtrace in messages")
}
