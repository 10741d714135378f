package bridge

// #include "hotcb_torch.h"
import "C"

// Elementwise, reduction, shape and indexing operations. All panic with *Error on failure.
// The simple elementwise ones and the matrix products call the generated ATen ops (ids from
// package aten/atentable); the rest are hand-written cases of hc_call.

var (
	atenNeg        = atenID("neg", "")
	atenExp        = atenID("exp", "")
	atenLog        = atenID("log", "")
	atenSqrt       = atenID("sqrt", "")
	atenAbs        = atenID("abs", "")
	atenRelu       = atenID("relu", "")
	atenSigmoid    = atenID("sigmoid", "")
	atenTanh       = atenID("tanh", "")
	atenIsnan      = atenID("isnan", "")
	atenIsinf      = atenID("isinf", "")
	atenLogicalNot = atenID("logical_not", "")
	atenSign       = atenID("sign", "")
	atenSquare     = atenID("square", "")
	atenMul        = atenID("mul", "Tensor")
	atenDiv        = atenID("div", "Tensor")
	atenPow        = atenID("pow", "Tensor_Tensor")
	atenMaximum    = atenID("maximum", "")
	atenMinimum    = atenID("minimum", "")
	atenEq         = atenID("eq", "Tensor")
	atenNe         = atenID("ne", "Tensor")
	atenGt         = atenID("gt", "Tensor")
	atenLt         = atenID("lt", "Tensor")
	atenGe         = atenID("ge", "Tensor")
	atenLe         = atenID("le", "Tensor")
	atenLogicalAnd = atenID("logical_and", "")
	atenLogicalOr  = atenID("logical_or", "")
	atenMatmul     = atenID("matmul", "")
	atenMm         = atenID("mm", "")
)

func (t *Tensor) unary(name string, op C.int) *Tensor { return call1(name, op, []*Tensor{t}, nil, nil) }
func (t *Tensor) binary(name string, op C.int, o *Tensor) *Tensor {
	return call1(name, op, []*Tensor{t, o}, nil, nil)
}
func (t *Tensor) scalar(name string, op C.int, v float64) *Tensor {
	return call1(name, op, []*Tensor{t}, nil, []float64{v})
}

// Add returns t + o (broadcasting).
func (t *Tensor) Add(o *Tensor) *Tensor { return t.binary("add", C.HC_ADD, o) }

// AddScaled returns t + alpha*o.
func (t *Tensor) AddScaled(o *Tensor, alpha float64) *Tensor {
	return call1("add", C.HC_ADD, []*Tensor{t, o}, nil, []float64{alpha})
}

// Sub returns t - o.
func (t *Tensor) Sub(o *Tensor) *Tensor { return t.binary("sub", C.HC_SUB, o) }

// Mul returns t * o elementwise.
func (t *Tensor) Mul(o *Tensor) *Tensor { return t.atenBinary("mul", atenMul, o) }

// Div returns t / o elementwise (true division).
func (t *Tensor) Div(o *Tensor) *Tensor { return t.atenBinary("div", atenDiv, o) }

// Pow returns t ** o elementwise.
func (t *Tensor) Pow(o *Tensor) *Tensor { return t.atenBinary("pow", atenPow, o) }

// Maximum returns the elementwise maximum of t and o.
func (t *Tensor) Maximum(o *Tensor) *Tensor { return t.atenBinary("maximum", atenMaximum, o) }

// Minimum returns the elementwise minimum of t and o.
func (t *Tensor) Minimum(o *Tensor) *Tensor { return t.atenBinary("minimum", atenMinimum, o) }

// AddScalar returns t + v. A whole-number v keeps an integer tensor's dtype (as in PyTorch).
func (t *Tensor) AddScalar(v float64) *Tensor { return t.scalar("add", C.HC_ADD_S, v) }

// SubScalar returns t - v.
func (t *Tensor) SubScalar(v float64) *Tensor { return t.scalar("sub", C.HC_SUB_S, v) }

// MulScalar returns t * v.
func (t *Tensor) MulScalar(v float64) *Tensor { return t.scalar("mul", C.HC_MUL_S, v) }

// DivScalar returns t / v.
func (t *Tensor) DivScalar(v float64) *Tensor { return t.scalar("div", C.HC_DIV_S, v) }

// PowScalar returns t ** v.
func (t *Tensor) PowScalar(v float64) *Tensor { return t.scalar("pow", C.HC_POW_S, v) }

// RSubScalar returns v - t.
func (t *Tensor) RSubScalar(v float64) *Tensor { return t.scalar("rsub", C.HC_RSUB_S, v) }

// Neg returns -t.
func (t *Tensor) Neg() *Tensor { return t.atenUnary("neg", atenNeg) }

// Exp returns e**t.
func (t *Tensor) Exp() *Tensor { return t.atenUnary("exp", atenExp) }

// Log returns the natural logarithm.
func (t *Tensor) Log() *Tensor { return t.atenUnary("log", atenLog) }

// Sqrt returns the square root.
func (t *Tensor) Sqrt() *Tensor { return t.atenUnary("sqrt", atenSqrt) }

// Abs returns |t|.
func (t *Tensor) Abs() *Tensor { return t.atenUnary("abs", atenAbs) }

// Sign returns -1, 0 or 1 elementwise.
func (t *Tensor) Sign() *Tensor { return t.atenUnary("sign", atenSign) }

// Square returns t*t.
func (t *Tensor) Square() *Tensor { return t.atenUnary("square", atenSquare) }

// Relu returns max(t, 0).
func (t *Tensor) Relu() *Tensor { return t.atenUnary("relu", atenRelu) }

// Gelu returns the exact (erf) GELU.
func (t *Tensor) Gelu() *Tensor { return call1("gelu", C.HC_GELU, []*Tensor{t}, []int64{0}, nil) }

// GeluTanh returns the tanh approximation of GELU.
func (t *Tensor) GeluTanh() *Tensor {
	return call1("gelu", C.HC_GELU, []*Tensor{t}, []int64{1}, nil)
}

// Sigmoid returns 1/(1+e**-t).
func (t *Tensor) Sigmoid() *Tensor { return t.atenUnary("sigmoid", atenSigmoid) }

// Tanh returns the hyperbolic tangent.
func (t *Tensor) Tanh() *Tensor { return t.atenUnary("tanh", atenTanh) }

// Clamp limits values to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor {
	return call1("clamp", C.HC_CLAMP, []*Tensor{t}, []int64{3}, []float64{lo, hi})
}

// ClampMin limits values from below.
func (t *Tensor) ClampMin(lo float64) *Tensor {
	return call1("clamp", C.HC_CLAMP, []*Tensor{t}, []int64{1}, []float64{lo, 0})
}

// ClampMax limits values from above.
func (t *Tensor) ClampMax(hi float64) *Tensor {
	return call1("clamp", C.HC_CLAMP, []*Tensor{t}, []int64{2}, []float64{0, hi})
}

// IsNaN returns a bool tensor marking NaNs.
func (t *Tensor) IsNaN() *Tensor { return t.atenUnary("isnan", atenIsnan) }

// IsInf returns a bool tensor marking infinities.
func (t *Tensor) IsInf() *Tensor { return t.atenUnary("isinf", atenIsinf) }

// LogicalNot returns !t.
func (t *Tensor) LogicalNot() *Tensor { return t.atenUnary("logical_not", atenLogicalNot) }

// LogicalAnd returns t && o.
func (t *Tensor) LogicalAnd(o *Tensor) *Tensor { return t.atenBinary("logical_and", atenLogicalAnd, o) }

// LogicalOr returns t || o.
func (t *Tensor) LogicalOr(o *Tensor) *Tensor { return t.atenBinary("logical_or", atenLogicalOr, o) }

// Eq returns t == o elementwise (bool).
func (t *Tensor) Eq(o *Tensor) *Tensor { return t.atenBinary("eq", atenEq, o) }

// Ne returns t != o.
func (t *Tensor) Ne(o *Tensor) *Tensor { return t.atenBinary("ne", atenNe, o) }

// Gt returns t > o.
func (t *Tensor) Gt(o *Tensor) *Tensor { return t.atenBinary("gt", atenGt, o) }

// Lt returns t < o.
func (t *Tensor) Lt(o *Tensor) *Tensor { return t.atenBinary("lt", atenLt, o) }

// Ge returns t >= o.
func (t *Tensor) Ge(o *Tensor) *Tensor { return t.atenBinary("ge", atenGe, o) }

// Le returns t <= o.
func (t *Tensor) Le(o *Tensor) *Tensor { return t.atenBinary("le", atenLe, o) }

// EqScalar returns t == v.
func (t *Tensor) EqScalar(v float64) *Tensor { return t.scalar("eq", C.HC_EQ_S, v) }

// NeScalar returns t != v.
func (t *Tensor) NeScalar(v float64) *Tensor { return t.scalar("ne", C.HC_NE_S, v) }

// GtScalar returns t > v.
func (t *Tensor) GtScalar(v float64) *Tensor { return t.scalar("gt", C.HC_GT_S, v) }

// LtScalar returns t < v.
func (t *Tensor) LtScalar(v float64) *Tensor { return t.scalar("lt", C.HC_LT_S, v) }

// GeScalar returns t >= v.
func (t *Tensor) GeScalar(v float64) *Tensor { return t.scalar("ge", C.HC_GE_S, v) }

// LeScalar returns t <= v.
func (t *Tensor) LeScalar(v float64) *Tensor { return t.scalar("le", C.HC_LE_S, v) }

// MatMul is the matrix product with numpy-style broadcasting of batch dims.
func (t *Tensor) MatMul(o *Tensor) *Tensor { return t.atenBinary("matmul", atenMatmul, o) }

// Mm is the product of two 2-D matrices.
func (t *Tensor) Mm(o *Tensor) *Tensor { return t.atenBinary("mm", atenMm, o) }

// Sum of all elements (0-d).
func (t *Tensor) Sum() *Tensor { return t.unary("sum", C.HC_SUM) }

// Mean of all elements (0-d).
func (t *Tensor) Mean() *Tensor { return t.unary("mean", C.HC_MEAN) }

// Max of all elements (0-d).
func (t *Tensor) Max() *Tensor { return t.unary("max", C.HC_MAX) }

// Min of all elements (0-d).
func (t *Tensor) Min() *Tensor { return t.unary("min", C.HC_MIN) }

// Any reports (as a 0-d bool tensor) whether any element is non-zero.
func (t *Tensor) Any() *Tensor { return t.unary("any", C.HC_ANY) }

// All reports whether every element is non-zero.
func (t *Tensor) All() *Tensor { return t.unary("all", C.HC_ALL) }

func dimsArgs(lead []int64, dims []int64) []int64 {
	return append(lead, dims...)
}

// SumDims sums over dims.
func (t *Tensor) SumDims(dims []int64, keepdim bool) *Tensor {
	return call1("sum", C.HC_SUM_DIM, []*Tensor{t}, dimsArgs([]int64{b2i(keepdim)}, dims), nil)
}

// MeanDims averages over dims.
func (t *Tensor) MeanDims(dims []int64, keepdim bool) *Tensor {
	return call1("mean", C.HC_MEAN_DIM, []*Tensor{t}, dimsArgs([]int64{b2i(keepdim)}, dims), nil)
}

// AnyDim reduces one dim with logical or.
func (t *Tensor) AnyDim(dim int64, keepdim bool) *Tensor {
	return call1("any", C.HC_ANY_DIM, []*Tensor{t}, []int64{b2i(keepdim), dim}, nil)
}

// AllDim reduces one dim with logical and.
func (t *Tensor) AllDim(dim int64, keepdim bool) *Tensor {
	return call1("all", C.HC_ALL_DIM, []*Tensor{t}, []int64{b2i(keepdim), dim}, nil)
}

// Std is the standard deviation of all elements (unbiased: divide by n-1).
func (t *Tensor) Std(unbiased bool) *Tensor {
	return call1("std", C.HC_STD, []*Tensor{t}, []int64{0, b2i(unbiased)}, nil)
}

// StdDims is the standard deviation over dims.
func (t *Tensor) StdDims(dims []int64, unbiased, keepdim bool) *Tensor {
	return call1("std", C.HC_STD, []*Tensor{t}, dimsArgs([]int64{b2i(keepdim), b2i(unbiased)}, dims), nil)
}

// Var is the variance of all elements.
func (t *Tensor) Var(unbiased bool) *Tensor {
	return call1("var", C.HC_VAR, []*Tensor{t}, []int64{0, b2i(unbiased)}, nil)
}

// VarDims is the variance over dims.
func (t *Tensor) VarDims(dims []int64, unbiased, keepdim bool) *Tensor {
	return call1("var", C.HC_VAR, []*Tensor{t}, dimsArgs([]int64{b2i(keepdim), b2i(unbiased)}, dims), nil)
}

// Norm is the p-norm of all elements (p=2: Euclidean).
func (t *Tensor) Norm(p float64) *Tensor {
	return call1("norm", C.HC_NORM, []*Tensor{t}, []int64{0}, []float64{p})
}

// NormDims is the p-norm over dims.
func (t *Tensor) NormDims(p float64, dims []int64, keepdim bool) *Tensor {
	return call1("norm", C.HC_NORM, []*Tensor{t}, dimsArgs([]int64{b2i(keepdim)}, dims), []float64{p})
}

// MaxDim returns the maximum values along dim and their indices.
func (t *Tensor) MaxDim(dim int64, keepdim bool) (values, indices *Tensor) {
	r := call("max", C.HC_MAX_DIM, []*Tensor{t}, []int64{dim, b2i(keepdim)}, nil, 2)
	return r[0], r[1]
}

// MinDim returns the minimum values along dim and their indices.
func (t *Tensor) MinDim(dim int64, keepdim bool) (values, indices *Tensor) {
	r := call("min", C.HC_MIN_DIM, []*Tensor{t}, []int64{dim, b2i(keepdim)}, nil, 2)
	return r[0], r[1]
}

// Argmax returns the indices of the maxima along dim.
func (t *Tensor) Argmax(dim int64, keepdim bool) *Tensor {
	return call1("argmax", C.HC_ARGMAX, []*Tensor{t}, []int64{dim, b2i(keepdim)}, nil)
}

// ArgmaxAll returns the index of the maximum of the flattened tensor.
func (t *Tensor) ArgmaxAll() *Tensor { return t.unary("argmax", C.HC_ARGMAX) }

// Argmin returns the indices of the minima along dim.
func (t *Tensor) Argmin(dim int64, keepdim bool) *Tensor {
	return call1("argmin", C.HC_ARGMIN, []*Tensor{t}, []int64{dim, b2i(keepdim)}, nil)
}

// Softmax along dim.
func (t *Tensor) Softmax(dim int64) *Tensor {
	return call1("softmax", C.HC_SOFTMAX, []*Tensor{t}, []int64{dim}, nil)
}

// LogSoftmax along dim.
func (t *Tensor) LogSoftmax(dim int64) *Tensor {
	return call1("log_softmax", C.HC_LOG_SOFTMAX, []*Tensor{t}, []int64{dim}, nil)
}

// Reshape returns a tensor with the same data and a new shape (-1 infers one size); it copies
// only when a view is impossible.
func (t *Tensor) Reshape(shape ...int64) *Tensor {
	return call1("reshape", C.HC_RESHAPE, []*Tensor{t}, shape, nil)
}

// View is Reshape that never copies: it fails when the memory layout does not allow a view.
func (t *Tensor) View(shape ...int64) *Tensor {
	return call1("view", C.HC_VIEW, []*Tensor{t}, shape, nil)
}

// Expand broadcasts size-1 dims to the given sizes without copying (-1 keeps a size).
func (t *Tensor) Expand(shape ...int64) *Tensor {
	return call1("expand", C.HC_EXPAND, []*Tensor{t}, shape, nil)
}

// Permute reorders the dims.
func (t *Tensor) Permute(dims ...int64) *Tensor {
	return call1("permute", C.HC_PERMUTE, []*Tensor{t}, dims, nil)
}

// Transpose swaps two dims.
func (t *Tensor) Transpose(d0, d1 int64) *Tensor {
	return call1("transpose", C.HC_TRANSPOSE, []*Tensor{t}, []int64{d0, d1}, nil)
}

// Unsqueeze inserts a size-1 dim at dim.
func (t *Tensor) Unsqueeze(dim int64) *Tensor {
	return call1("unsqueeze", C.HC_UNSQUEEZE, []*Tensor{t}, []int64{dim}, nil)
}

// Squeeze removes all size-1 dims.
func (t *Tensor) Squeeze() *Tensor { return t.unary("squeeze", C.HC_SQUEEZE) }

// SqueezeDim removes dim if its size is 1.
func (t *Tensor) SqueezeDim(dim int64) *Tensor {
	return call1("squeeze", C.HC_SQUEEZE, []*Tensor{t}, []int64{dim}, nil)
}

// Flatten merges dims start..end (inclusive; -1 is the last).
func (t *Tensor) Flatten(start, end int64) *Tensor {
	return call1("flatten", C.HC_FLATTEN, []*Tensor{t}, []int64{start, end}, nil)
}

// Narrow returns the view of length elements from start along dim.
func (t *Tensor) Narrow(dim, start, length int64) *Tensor {
	return call1("narrow", C.HC_NARROW, []*Tensor{t}, []int64{dim, start, length}, nil)
}

// Slice returns the view start:end:step along dim (end is clamped to the size).
func (t *Tensor) Slice(dim, start, end, step int64) *Tensor {
	return call1("slice", C.HC_SLICE, []*Tensor{t}, []int64{dim, start, end, step}, nil)
}

// IndexSelect picks entries along dim at the given int64 indices.
func (t *Tensor) IndexSelect(dim int64, index *Tensor) *Tensor {
	return call1("index_select", C.HC_INDEX_SELECT, []*Tensor{t, index}, []int64{dim}, nil)
}

// Gather picks, along dim, the elements at index (same number of dims as t).
func (t *Tensor) Gather(dim int64, index *Tensor) *Tensor {
	return call1("gather", C.HC_GATHER, []*Tensor{t, index}, []int64{dim}, nil)
}

// MaskedFill returns t with v where mask (bool, broadcastable) is true.
func (t *Tensor) MaskedFill(mask *Tensor, v float64) *Tensor {
	return call1("masked_fill", C.HC_MASKED_FILL, []*Tensor{t, mask}, nil, []float64{v})
}

// Detach returns a tensor sharing t's data that autograd does not track.
func (t *Tensor) Detach() *Tensor { return t.unary("detach", C.HC_DETACH) }

// OneHot encodes int64 class indices as a one-hot int64 tensor with numClasses columns (-1 infers).
func (t *Tensor) OneHot(numClasses int64) *Tensor {
	return call1("one_hot", C.HC_ONE_HOT, []*Tensor{t}, []int64{numClasses}, nil)
}

// Cat concatenates tensors along dim.
func Cat(ts []*Tensor, dim int64) *Tensor {
	if len(ts) == 0 {
		panic(argError("cat", "no tensors to concatenate"))
	}
	return call1("cat", C.HC_CAT, ts, []int64{dim}, nil)
}

// Stack joins tensors of equal shape along a new dim.
func Stack(ts []*Tensor, dim int64) *Tensor {
	if len(ts) == 0 {
		panic(argError("stack", "no tensors to stack"))
	}
	return call1("stack", C.HC_STACK, ts, []int64{dim}, nil)
}

// Where picks a where cond is true and b elsewhere.
func Where(cond, a, b *Tensor) *Tensor {
	return call1("where", C.HC_WHERE, []*Tensor{cond, a, b}, nil, nil)
}
