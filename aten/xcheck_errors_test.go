package aten_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// TestWrongCallsAreErrors: a wrong call panics with a *bridge.Error, which bridge.Try returns;
// its Op is the qualified op ("aten::NAME" or "aten::NAME.OVERLOAD") and its message is
// libtorch's, or for a value the shim cannot encode for libtorch, one that names the argument
// ("argument N (name): ...").
//
// What Go's types rule out needs no case here: wrong arity (each function takes exactly its
// schema's arguments), and an argument of the wrong kind (a float where an int is due, a list
// of ints where tensors are due, a string for a dtype, a list of tensors of the wrong kind):
// every schema type has its own Go type. The shim's decoder still checks every tag, which only
// hand-made bridge.ATenArgs could trip. What Go's types do not rule out is below: nil where a
// tensor is required, ints outside SymInt's range, a []bool for a fixed-size bool[N], enum
// values out of range, a nil inside a Tensor[] (only Tensor?[] takes nil), and everything
// libtorch itself rejects.
func TestWrongCallsAreErrors(t *testing.T) {
	x := bridge.Ones(bridge.Shape{2, 3})
	x64 := bridge.Ones(bridge.Shape{3, 2}, bridge.Float64)
	const huge = -(int64(1) << 62) - 5 // below SymInt's range (larger magnitudes mark symbolic ints)
	freed := bridge.Ones(bridge.Shape{2})
	require.NoError(t, freed.Free())
	leaf := bridge.Ones(bridge.Shape{2, 3}).SetRequiresGrad(true)

	for _, c := range []struct {
		name string
		call func()
		op   string   // the error's Op
		msgs []string // what its message contains
	}{
		// libtorch's own checks
		{"shape mismatch", func() { aten.Mm(x, x) }, "aten::mm", []string{"cannot be multiplied"}},
		{"dtype mismatch", func() { aten.Mm(x, x64) }, "aten::mm", []string{"expected scalar type"}},
		{"dim out of range", func() { aten.SumDimIntList(x, []int64{5}, false, nil) }, "aten::sum.dim_IntList", []string{"Dimension out of range"}},
		{"index out of range", func() { aten.IndexSelect(x, 1, bridge.FromSlice([]int64{7})) }, "aten::index_select", nil},
		{"bad string value", func() { aten.Gelu(x, "bogus") }, "aten::gelu", []string{"approximate"}},
		{"bad mode", func() { aten.LinalgQr(x64, "bogus") }, "aten::linalg_qr", []string{"bogus"}},
		{"bad pad mode", func() { aten.Pad(x, []int64{1, 1}, "bogus", nil) }, "aten::pad", []string{"bogus"}},
		{"not positive-definite", func() { aten.LinalgCholesky(bridge.Zeros(bridge.Shape{2, 2}), false) }, "aten::linalg_cholesky", []string{"positive-definite"}},
		{"negative probabilities", func() { aten.Multinomial(bridge.FromSlice([]float32{-1, 2}), 1, false) }, "aten::multinomial", []string{"probability"}},
		{"in-place on a leaf that requires grad", func() { aten.Add_(leaf, x, aten.IntScalar(1)) }, "aten::add_.Tensor", []string{"leaf Variable that requires grad"}},
		{"out= of a narrower dtype", func() { aten.AddOut(x, x, aten.FloatScalar(0.5), bridge.Zeros(bridge.Shape{2, 3}, bridge.Int64)) }, "aten::add.out", []string{"can't be cast"}},
		{"integer input to a float op", func() { aten.LinalgInv(bridge.FromSlice([]int64{1, 0, 0, 1}, 2, 2)) }, "aten::linalg_inv", nil},
		// nil where a tensor is required (nil is None or an undefined tensor)
		{"nil tensor", func() { aten.Tril(nil, 0) }, "aten::tril", []string{"Expected a proper Tensor but got None", "'self'"}},
		{"nil second tensor", func() { aten.Mm(x, nil) }, "aten::mm", []string{"'mat2'"}},
		{"freed tensor", func() { aten.Sin(freed) }, "aten::sin", []string{"use of a freed tensor"}},
		// encoding: the shim names the argument
		{"SymInt[] out of range", func() { aten.Repeat(x, []int64{huge, 1}) }, "aten::repeat", []string{"argument 2 (repeats)", "out of range"}},
		{"SymInt out of range", func() { aten.NarrowCopy(x, 1, huge, 1) }, "aten::narrow_copy", []string{"argument 3 (start)", "out of range"}},
		{"SymInt? out of range", func() { aten.Slice(x, 0, aten.I(huge), nil, 1) }, "aten::slice.Tensor", []string{"argument 3 (start)", "out of range"}},
		{"SymInt[] factory size out of range", func() { aten.Zeros([]int64{huge}, aten.Options{}) }, "aten::zeros", []string{"argument 1 (size)", "out of range"}},
		// (a bool[3] is a [3]bool: its length is checked when the program compiles)
		{"nil inside a Tensor[]", func() { aten.Cat([]*bridge.Tensor{x, nil}, 0) }, "aten::cat", []string{"argument 1 (tensors)", "element 1 is nil"}},
		// enum values out of range
		{"dtype out of range", func() { aten.Zeros([]int64{2}, aten.Options{DType: aten.D(bridge.DType(99))}) }, "aten::zeros", []string{"argument 2 (dtype)", "dtype code 99"}},
		{"layout out of range", func() {
			l := aten.Layout(77)
			aten.Zeros([]int64{2}, aten.Options{Layout: &l})
		}, "aten::zeros", []string{"argument 3 (layout)", "unknown layout 77"}},
		{"memory format out of range", func() { aten.Contiguous(x, aten.MemoryFormat(5)) }, "aten::contiguous", []string{"argument 2 (memory_format)", "unknown memory format 5"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := bridge.Try(c.call)
			require.Error(t, err, "the call succeeded")
			var be *bridge.Error
			require.ErrorAs(t, err, &be)
			require.Equal(t, c.op, be.Op)
			require.ErrorContains(t, err, "torch: "+c.op+": ")
			for _, m := range c.msgs {
				require.Contains(t, be.Msg, m)
			}
		})
	}
	require.ErrorIs(t, bridge.Try(func() { aten.Sin(freed) }), bridge.ErrFreed)
}
