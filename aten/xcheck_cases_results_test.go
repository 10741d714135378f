package aten_test

import (
	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// Results that are not tensors (int, float, bool, Scalar, ScalarType) come back as 0-d tensors
// on both sides: Python's int as int64, float as float64 and bool as bool (xcheck.py), a
// dtype as an empty tensor of that dtype.

func intT(v int64) *bridge.Tensor     { return bridge.FromSlice([]int64{v}).Reshape() }
func floatT(v float64) *bridge.Tensor { return bridge.FromSlice([]float64{v}).Reshape() }
func boolT(v bool) *bridge.Tensor     { return bridge.FromSlice([]bool{v}).Reshape() }
func dtypeT(d bridge.DType) *bridge.Tensor {
	return bridge.Empty(bridge.Shape{0}, d)
}

// scalarT is a Scalar result as Python's item() gives it (a bool Scalar cannot be told from an
// int one: Scalar has no accessor for that, see the report).
func scalarT(s aten.Scalar) *bridge.Tensor {
	if s.IsFloat() {
		return floatT(s.Float())
	}
	return intT(s.Int())
}

func casesResults() []xcase {
	return []xcase{
		{name: "item_float64", in: M{"x": bridge.FromSlice([]float64{0.1}).Reshape()}, py: "x.item()", run: func(v M) L { return L{scalarT(aten.Item(v["x"]))} }},
		{name: "item_float32", in: M{"x": bridge.FromSlice([]float32{0.1}).Reshape()}, py: "x.item()", run: func(v M) L { return L{scalarT(aten.Item(v["x"]))} }},
		{name: "item_int", in: M{"x": i64([]int64{-7}, 1)}, py: "x.item()", run: func(v M) L { return L{scalarT(aten.Item(v["x"]))} }},
		{name: "size", in: M{"x": rn(2, 3, 4)}, py: "x.size(-1)", run: func(v M) L { return L{intT(aten.Size(v["x"], -1))} }},
		{name: "stride", in: M{"x": rn(2, 3, 4)}, py: "x.transpose(0, 2).stride(0)", run: func(v M) L { return L{intT(aten.Stride(aten.Transpose(v["x"], 0, 2), 0))} }},
		{name: "is_floating_point", in: M{"x": ri(0, 3, 2)}, py: "x.is_floating_point()", run: func(v M) L { return L{boolT(aten.IsFloatingPoint(v["x"]))} }},
		{name: "is_signed", in: M{"x": ri(0, 3, 2).To(bridge.Uint8)}, py: "x.is_signed()", run: func(v M) L { return L{boolT(aten.IsSigned(v["x"]))} }},
		{name: "is_nonzero", in: M{"x": f32([]float32{0.5}, 1)}, py: "x.is_nonzero()", run: func(v M) L { return L{boolT(aten.IsNonzero(v["x"]))} }},
		{name: "allclose", in: M{"x": f32([]float32{1, 2}), "y": f32([]float32{1, 2.001})}, py: "torch.allclose(x, y, rtol=1e-2)",
			run: func(v M) L { return L{boolT(aten.Allclose(v["x"], v["y"], 1e-2, 1e-8, false))} }},
		{name: "equal", in: M{"x": f32([]float32{1, 2}), "y": f32([]float32{1, 2.001})}, py: "torch.equal(x, y)",
			run: func(v M) L { return L{boolT(aten.Equal(v["x"], v["y"]))} }},
		{name: "is_same_size", in: M{"x": rn(2, 3), "y": rn(2, 3)}, py: "x.is_same_size(y)", run: func(v M) L { return L{boolT(aten.IsSameSize(v["x"], v["y"]))} }},
		{name: "can_cast", py: "torch.can_cast(torch.float32, torch.int32)", run: func(v M) L { return L{boolT(aten.CanCast(bridge.Float32, bridge.Int32))} }},
		{name: "promote_types", py: "torch.empty(0, dtype=torch.promote_types(torch.int64, torch.float16))",
			run: func(v M) L { return L{dtypeT(aten.PromoteTypes(bridge.Int64, bridge.Float16))} }},
		{name: "result_type", in: M{"x": ri(0, 3, 2), "y": rn64(2)}, py: "torch.empty(0, dtype=torch.result_type(x, y))",
			run: func(v M) L { return L{dtypeT(aten.ResultType(v["x"], v["y"]))} }},
		{name: "result_type_scalar", in: M{"x": ri(0, 3, 2).To(bridge.Int32)}, py: "torch.empty(0, dtype=torch.result_type(x, 1.5))",
			run: func(v M) L { return L{dtypeT(aten.ResultTypeScalar(v["x"], fs(1.5)))} }},
	}
}
