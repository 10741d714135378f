package aten_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/aten/atentable"
	"github.com/hotcb/hotcb/bridge"
)

// call is CallOp that fails the test on an error.
func call(t *testing.T, name string, args ...any) aten.Results {
	t.Helper()
	v, err := aten.CallOp(name, args...)
	require.NoError(t, err, name)
	return v
}

func x33() *bridge.Tensor {
	return bridge.FromSlice([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3)
}

// TestCallOpMatchesGenerated: ops that have a generated function give the same result through
// the dispatcher, with arguments by position, by name and from the schema's defaults.
func TestCallOpMatchesGenerated(t *testing.T) {
	x := x33()
	want := aten.Tril(x, 0).Float32s()
	for _, v := range []aten.Results{
		call(t, "aten::tril", x, 0),
		call(t, "aten::tril", x),         // diagonal=0 from the schema
		call(t, "tril", x, aten.Default), // aten:: is the default namespace
		call(t, "aten::tril", x, aten.Arg("diagonal", 0)),
		call(t, "aten::tril", aten.Arg("self", x)),
	} {
		require.Len(t, v, 1)
		require.Equal(t, want, v.Tensor(0).Float32s())
	}
	require.Equal(t, aten.Tril(x, -1).Float32s(), call(t, "aten::tril", x, int32(-1)).Tensor(0).Float32s())

	// Scalars: an int, a float or a Scalar; the default alpha=1.
	y := bridge.FromSlice([]float32{1, 1, 1, 1, 1, 1, 1, 1, 1}, 3, 3)
	require.Equal(t, aten.Add(x, y, aten.IntScalar(1)).Float32s(), call(t, "aten::add.Tensor", x, y).Tensor(0).Float32s())
	require.Equal(t, aten.Add(x, y, aten.FloatScalar(0.5)).Float32s(),
		call(t, "aten::add.Tensor", x, y, aten.FloatScalar(0.5)).Tensor(0).Float32s())
	require.Equal(t, aten.Add(x, y, aten.FloatScalar(0.5)).Float32s(),
		call(t, "aten::add.Tensor", x, y, aten.Arg("alpha", 0.5)).Tensor(0).Float32s())
	require.Equal(t, aten.AddScalar(x, aten.IntScalar(2), aten.IntScalar(3)).Float32s(),
		call(t, "aten::add.Scalar", x, 2, 3).Tensor(0).Float32s())

	// Two results; bools; Default in the middle.
	v9 := x.Reshape(9)
	wv, wi := aten.Topk(v9, 2, -1, false, true)
	got := call(t, "aten::topk", v9, 2, aten.Default, false)
	require.Len(t, got, 2)
	require.Equal(t, wv.Float32s(), got.Tensor(0).Float32s())
	require.Equal(t, wi.Int64s(), got.Tensor(1).Int64s())
	got = call(t, "aten::topk", v9, 2, aten.Arg("largest", false))
	require.Equal(t, wv.Float32s(), got.Tensor(0).Float32s())
	require.Len(t, got.Tensors(), 2)

	// A list result.
	parts := call(t, "aten::chunk", x, 3, 1)
	require.Len(t, parts, 1)
	ts := parts[0].([]*bridge.Tensor)
	require.Len(t, ts, 3)
	for k, p := range aten.Chunk(x, 3, 1) {
		require.Equal(t, p.Float32s(), ts[k].Float32s())
	}
	require.Len(t, parts.Tensors(), 3)

	// Numbers, bools and a dtype back.
	require.Equal(t, aten.Results{int64(3)}, call(t, "aten::size.int", x, 1))
	require.Equal(t, aten.Results{true}, call(t, "aten::is_floating_point", x))
	require.Equal(t, aten.Results{float64(45)}, call(t, "aten::item", aten.Sum(x, nil)))
	require.Equal(t, aten.Results{int64(7)}, call(t, "aten::item", bridge.FromSlice([]int64{7}, 1)))
	require.Equal(t, aten.Results{bridge.Float64},
		call(t, "aten::result_type.Tensor", x, bridge.FromSlice([]float64{1}, 1)))

	// A factory: SymInt[] from []int64, []int or bridge.Shape; dtype, layout, device, pin_memory.
	for _, size := range []any{[]int64{2, 3}, []int{2, 3}, bridge.Shape{2, 3}} {
		z := call(t, "aten::zeros", size, aten.Arg("dtype", bridge.Int64), aten.Arg("layout", aten.Strided),
			aten.Arg("device", bridge.CPU), aten.Arg("pin_memory", false)).Tensor(0)
		require.Equal(t, bridge.Int64, z.DType())
		require.Equal(t, bridge.Shape{2, 3}, z.Shape())
	}
	z := call(t, "aten::zeros", []int64{2}, aten.D(bridge.Float64), (*aten.Layout)(nil), aten.Dev(bridge.CPU)).Tensor(0)
	require.Equal(t, bridge.Float64, z.DType())

	// Tensor?[] with a None entry; int[2] filled from one int; float[]? and SymInt[]? None.
	idx := bridge.FromSlice([]int64{2, 0}, 2)
	require.Equal(t, aten.Index(x, []*bridge.Tensor{nil, idx}).Float32s(),
		call(t, "aten::index.Tensor", x, []*bridge.Tensor{nil, idx}).Tensor(0).Float32s())
	img := bridge.Randn(bridge.Shape{1, 1, 4, 4})
	require.Equal(t, aten.MaxPool2d(img, []int64{2, 2}, nil, []int64{0, 0}, []int64{1, 1}, false).Float32s(),
		call(t, "aten::max_pool2d", img, 2).Tensor(0).Float32s())
	require.Equal(t, aten.UpsampleNearest2dVec(img, nil, []float64{2, 2}).Float32s(),
		call(t, "aten::upsample_nearest2d.vec", img, nil, []float64{2, 2}).Tensor(0).Float32s())

	// A tuple of three, bool[3]-free; Tensor? None.
	w1, w2, w3 := aten.NativeLayerNorm(x, []int64{3}, nil, nil, 1e-5)
	ln := call(t, "aten::native_layer_norm", x, []int64{3}, nil, nil, 1e-5)
	require.Len(t, ln, 3)
	for k, w := range []*bridge.Tensor{w1, w2, w3} {
		require.Equal(t, w.Float32s(), ln.Tensor(k).Float32s())
	}

	// Device and ScalarType, MemoryFormat.
	d := call(t, "aten::to.device", x, bridge.CPU, bridge.Float64).Tensor(0)
	require.Equal(t, bridge.Float64, d.DType())
	require.Equal(t, x.Float32s(), call(t, "aten::contiguous", x, aten.Arg("memory_format", aten.ContiguousFormat)).Tensor(0).Float32s())
}

// TestCallOpInPlaceAndOut: the returned tensor is a new handle sharing the argument's storage.
func TestCallOpInPlaceAndOut(t *testing.T) {
	z := bridge.Zeros(bridge.Shape{3})
	one := bridge.Ones(bridge.Shape{3})
	r := call(t, "aten::add_.Tensor", z, one, 2)
	require.Equal(t, []float32{2, 2, 2}, z.Float32s())
	require.Equal(t, []float32{2, 2, 2}, r.Tensor(0).Float32s())
	r.Free()
	require.False(t, z.IsFreed())
	require.Equal(t, []float32{2, 2, 2}, z.Float32s())

	out := bridge.Zeros(bridge.Shape{3})
	r = call(t, "aten::add.out", one, one, aten.Arg("out", out))
	require.Equal(t, []float32{2, 2, 2}, out.Float32s())
	require.Equal(t, []float32{2, 2, 2}, r.Tensor(0).Float32s())
}

// TestCallOpNotGenerated: ops cmd/atengen skipped run through the dispatcher.
func TestCallOpNotGenerated(t *testing.T) {
	for _, name := range []string{"_cast_Float", "rename", "align_to", "refine_names", "histogramdd"} {
		for _, o := range atentable.Ops {
			require.NotEqual(t, name, o.Name, "%s was generated: pick another op for this test", name)
		}
	}
	// A private op.
	i := bridge.FromSlice([]int64{1, 2, 3}, 3)
	f := call(t, "aten::_cast_Float", i).Tensor(0)
	require.Equal(t, bridge.Float32, f.DType())
	require.Equal(t, []float32{1, 2, 3}, f.Float32s())
	f = call(t, "aten::_cast_Float", i, aten.Arg("non_blocking", false)).Tensor(0)
	require.Equal(t, []float32{1, 2, 3}, f.Float32s())

	// Named tensors (Dimname is a string): rename, then a reduction and align_to by name.
	x := x33()
	named := call(t, "aten::rename", x, []aten.Dimname{"N", "C"}).Tensor(0)
	require.Equal(t, aten.SumDimIntList(x, []int64{1}, false, nil).Float32s(),
		call(t, "aten::sum.dim_DimnameList", named, []aten.Dimname{"C"}).Tensor(0).Float32s())
	require.Equal(t, aten.SumDimIntList(x, []int64{0}, false, nil).Float32s(),
		call(t, "aten::sum.dim_DimnameList", named, aten.Dimname("N")).Tensor(0).Float32s()) // Dimname[1] from one name
	require.Equal(t, x.Transpose(0, 1).Contiguous().Float32s(),
		call(t, "aten::align_to", named, []aten.Dimname{"C", "N"}).Tensor(0).Contiguous().Float32s())
	refined := call(t, "aten::refine_names", x, []aten.Dimname{"A", "B"}).Tensor(0)
	require.Equal(t, x.Float32s(), call(t, "aten::rename", refined, nil).Tensor(0).Float32s())
	_, err := aten.CallOp("aten::rename", x, []string{"N", "C"})
	require.ErrorContains(t, err, `pass a dimension's name as aten.Dimname("N")`)

	// A tensor and a list among the results (histogramdd: a tuple would be flattened the same).
	pts := bridge.FromSlice([]float32{0, 0, 1, 1, 1, 0}, 3, 2)
	h := call(t, "aten::histogramdd", pts, []int64{2, 2})
	require.Len(t, h, 2)
	require.Equal(t, []float32{1, 0, 1, 1}, h.Tensor(0).Float32s()) // (0,0), (1,0), (1,1): [[1 0] [1 1]]
	edges := h[1].([]*bridge.Tensor)
	require.Len(t, edges, 2)
	require.Equal(t, []float32{0, 0.5, 1}, edges[0].Float32s())
	require.Len(t, h.Tensors(), 3)

	// A generator that has no default: nil is the default generator.
	bridge.ManualSeed(1)
	b := call(t, "aten::bernoulli.p", bridge.Zeros(bridge.Shape{4}), 1.0, aten.Arg("generator", nil)).Tensor(0)
	require.Equal(t, []float32{1, 1, 1, 1}, b.Float32s())
}

func TestCallOpSchema(t *testing.T) {
	s, err := aten.Schema("aten::tril")
	require.NoError(t, err)
	require.Equal(t, "aten::tril(Tensor self, int diagonal=0) -> Tensor", s)
	s, err = aten.Schema("add.Tensor")
	require.NoError(t, err)
	require.Contains(t, s, "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor")
	_, err = aten.Schema("aten::trill")
	require.ErrorContains(t, err, "did you mean aten::tril")
}

// TestCallOpErrors: every mistake is an error naming the op (and the argument, as the schema
// names it), never a crash.
func TestCallOpErrors(t *testing.T) {
	x := x33()
	freed := bridge.Ones(bridge.Shape{2})
	freed.Free()
	for _, tc := range []struct {
		name string
		args []any
		want string
	}{
		{"aten::trill", []any{x}, "torch: aten::trill: no such op is registered with libtorch (did you mean aten::tril"},
		{"aten::zzzzzzzz", []any{x}, "torch: aten::zzzzzzzz: no such op is registered with libtorch"},
		{"aten::tril.foo", []any{x}, `aten::tril has no overload "foo"; it has aten::tril, aten::tril.out`},
		{"aten::add", []any{x, x}, "aten::add has no default overload: name one of aten::add.Scalar, "},
		{"", nil, `torch: aten: "" names no op`},
		{"aten::", nil, `names no op`},
		{"aten::tril", []any{x, 0, 1}, "torch: aten::tril: takes at most 2 arguments, got 3: aten::tril(Tensor self, int diagonal=0) -> Tensor"},
		{"aten::tril", nil, "torch: aten::tril: argument 1 (Tensor self) is missing (aten::tril(Tensor self, int diagonal=0) -> Tensor)"},
		{"aten::tril", []any{aten.Default}, "argument 1 (Tensor self) has no default"},
		{"aten::tril", []any{x, 0.5}, "torch: aten::tril: argument 2 (int diagonal=0) cannot take a float"},
		{"aten::tril", []any{x, "0"}, "argument 2 (int diagonal=0) cannot take a string"},
		{"aten::tril", []any{0}, "argument 1 (Tensor self) cannot take an int"},
		{"aten::tril", []any{nil}, "argument 1 (Tensor self) cannot take None (it is not optional)"},
		{"aten::tril", []any{(*bridge.Tensor)(nil)}, "argument 1 (Tensor self) cannot take None"},
		{"aten::tril", []any{x, aten.Arg("diag", 1)}, `has no argument named "diag" (it has: self, diagonal)`},
		{"aten::tril", []any{x, 0, aten.Arg("diagonal", 1)}, "argument 2 (int diagonal=0) is given twice"},
		{"aten::tril", []any{aten.Arg("self", x), 0}, "a positional argument follows a named one"},
		{"aten::tril", []any{x, map[string]int{}}, "torch: aten::tril: argument 2: CallOp cannot pass a map[string]int"},
		{"aten::tril", []any{x, aten.Arg("diagonal", aten.Arg("x", 1))}, `argument 2: Arg("diagonal"): Arg("x", ...) holds another Arg`},
		{"aten::tril", []any{x, uint64(1 << 63)}, "does not fit an int64"},
		{"aten::zeros", []any{[]int64{2}, aten.Arg("dtype", 4)}, "argument 2 (ScalarType? dtype=None) cannot take an int"},
		{"aten::zeros", []any{[]float64{2}}, "argument 1 (SymInt[] size) cannot take a list of floats"},
		{"aten::cat", []any{[]*bridge.Tensor{x, nil}}, "argument 1 (Tensor[] tensors) cannot take None at index 1 of its list"},
		{"aten::bernoulli", []any{x, aten.Arg("generator", 1)}, "is a generator, which CallOp cannot pass"},
		{"aten::set_.source_Storage", []any{x, x}, "argument 2 (Storage source) has a type CallOp cannot pass (Storage)"},
		{"aten::mm", []any{x, bridge.Ones(bridge.Shape{2, 2})}, "torch: aten::mm: mat1 and mat2 shapes cannot be multiplied"},
		{"aten::tril", []any{freed}, "torch: aten::tril: use of a freed tensor"},
	} {
		v, err := aten.CallOp(tc.name, tc.args...)
		require.Error(t, err, "%s %v", tc.name, tc.args)
		require.Nil(t, v)
		require.Contains(t, err.Error(), tc.want, "%s %v", tc.name, tc.args)
		var be *bridge.Error
		require.ErrorAs(t, err, &be)
	}
	_, err := aten.CallOp("aten::tril", freed)
	require.True(t, errors.Is(err, bridge.ErrFreed))
}

func TestValues(t *testing.T) {
	a, b := bridge.Ones(bridge.Shape{1}), bridge.Ones(bridge.Shape{1})
	v := aten.Results{a, int64(3), []*bridge.Tensor{b, nil}, []any{a}, (*bridge.Tensor)(nil)}
	require.Equal(t, a, v.Tensor(0))
	require.Nil(t, v.Tensor(1))
	require.Nil(t, v.Tensor(4))
	require.Nil(t, v.Tensor(9))
	require.Equal(t, []*bridge.Tensor{a, b, a}, v.Tensors())
	aten.Results{b}.Free()
	require.True(t, b.IsFreed())
}

// TestCallOpBigArguments: more tensors and ints than ATenArgs holds inline, and an op that
// returns nothing.
func TestCallOpBigArguments(t *testing.T) {
	parts := make([]*bridge.Tensor, 12)
	var want []float32
	for k := range parts {
		parts[k] = bridge.FromSlice([]float32{float32(k)}, 1)
		want = append(want, float32(k))
	}
	require.Equal(t, want, call(t, "aten::cat", parts).Tensor(0).Float32s())
	require.Equal(t, aten.Cat(parts, 0).Float32s(), call(t, "aten::cat", parts, 0).Tensor(0).Float32s())

	sizes := make([]int64, 60)
	for k := range sizes {
		sizes[k] = 1
	}
	split := call(t, "aten::split_with_sizes", bridge.Arange(0, 60, 1), sizes)[0].([]*bridge.Tensor)
	require.Len(t, split, 60)
	require.Equal(t, []float32{59}, split[59].Float32s())

	a, b := bridge.Zeros(bridge.Shape{2}), bridge.Zeros(bridge.Shape{2})
	r := call(t, "aten::_foreach_add_.Scalar", []*bridge.Tensor{a, b}, 3)
	require.Empty(t, r)
	require.Equal(t, []float32{3, 3}, a.Float32s())
	require.Equal(t, []float32{3, 3}, b.Float32s())
}

// TestCallOpScope: results made inside bridge.Scope are the scope's, like any op's.
func TestCallOpScope(t *testing.T) {
	x := x33()
	var inner *bridge.Tensor
	bridge.Scope(func() {
		inner = call(t, "aten::tril", x).Tensor(0)
		require.False(t, inner.IsFreed())
	})
	require.True(t, inner.IsFreed())
	require.False(t, x.IsFreed())
}

// TestCallOpConcurrent: lookups and calls from many goroutines (run with -race).
func TestCallOpConcurrent(t *testing.T) {
	x := x33()
	want := aten.Tril(x, 1).Float32s()
	names := []string{"aten::tril", "tril", "aten::triu", "aten::relu", "aten::neg"}
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			var err error
			for k := 0; k < 40 && err == nil; k++ {
				var r aten.Results
				name := names[(g+k)%len(names)]
				if name == "aten::tril" || name == "tril" {
					r, err = aten.CallOp(name, x, 1)
					if err == nil && !equal(r.Tensor(0).Float32s(), want) {
						err = errors.New("wrong result")
					}
				} else {
					r, err = aten.CallOp(name, x)
				}
				r.Free()
			}
			errs <- err
		}(g)
	}
	for g := 0; g < 8; g++ {
		require.NoError(t, <-errs)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}
