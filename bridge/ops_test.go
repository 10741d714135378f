package bridge_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/hotcb/hotcb/bridge"
)

func f32(v ...float32) *Tensor { return FromSlice(v) }

func TestElementwiseOps(t *testing.T) {
	a := f32(1, 4, 9)
	b := f32(2, 2, 3)
	e := math.E
	cases := []struct {
		name string
		got  *Tensor
		want []float64
	}{
		{"add", a.Add(b), []float64{3, 6, 12}},
		{"add_scaled", a.AddScaled(b, -0.5), []float64{0, 3, 7.5}},
		{"sub", a.Sub(b), []float64{-1, 2, 6}},
		{"mul", a.Mul(b), []float64{2, 8, 27}},
		{"div", a.Div(b), []float64{0.5, 2, 3}},
		{"pow", a.Pow(b), []float64{1, 16, 729}},
		{"maximum", a.Maximum(f32(3, 3, 3)), []float64{3, 4, 9}},
		{"minimum", a.Minimum(f32(3, 3, 3)), []float64{1, 3, 3}},
		{"add_s", a.AddScalar(1), []float64{2, 5, 10}},
		{"sub_s", a.SubScalar(1), []float64{0, 3, 8}},
		{"mul_s", a.MulScalar(-2), []float64{-2, -8, -18}},
		{"div_s", a.DivScalar(2), []float64{0.5, 2, 4.5}},
		{"pow_s", a.PowScalar(0.5), []float64{1, 2, 3}},
		{"rsub_s", a.RSubScalar(10), []float64{9, 6, 1}},
		{"neg", a.Neg(), []float64{-1, -4, -9}},
		{"exp", f32(0, 1, 2).Exp(), []float64{1, e, e * e}},
		{"log", f32(1, float32(e), 1).Log(), []float64{0, 1, 0}},
		{"sqrt", a.Sqrt(), []float64{1, 2, 3}},
		{"abs", f32(-1, 0, 2).Abs(), []float64{1, 0, 2}},
		{"sign", f32(-3, 0, 2).Sign(), []float64{-1, 0, 1}},
		{"square", f32(-3, 0, 2).Square(), []float64{9, 0, 4}},
		{"relu", f32(-1, 0, 2).Relu(), []float64{0, 0, 2}},
		{"sigmoid", f32(0, 100, -100).Sigmoid(), []float64{0.5, 1, 0}},
		{"tanh", f32(0, 100, -100).Tanh(), []float64{0, 1, -1}},
		{"gelu", f32(0, 1, -1).Gelu(), []float64{0, 0.8413447, -0.1586553}},
		{"gelu_tanh", f32(0, 1).GeluTanh(), []float64{0, 0.8411920}},
		{"clamp", f32(-5, 0.5, 5).Clamp(-1, 1), []float64{-1, 0.5, 1}},
		{"clamp_min", f32(-5, 0.5, 5).ClampMin(0), []float64{0, 0.5, 5}},
		{"clamp_max", f32(-5, 0.5, 5).ClampMax(0), []float64{-5, 0, 0}},
		{"softmax", f32(0, 0, 0, 0).Softmax(0), []float64{0.25, 0.25, 0.25, 0.25}},
		{"log_softmax", f32(1, 1).LogSoftmax(0), []float64{-math.Ln2, -math.Ln2}},
		{"where", Where(FromSlice([]bool{true, false, true}), a, b), []float64{1, 2, 9}},
		{"masked_fill", a.MaskedFill(FromSlice([]bool{false, true, false}), -1), []float64{1, -1, 9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.InDeltaSlice(t, c.want, c.got.Float64s(), 1e-5)
		})
	}
}

func TestIntegerScalarsKeepDType(t *testing.T) {
	x := FromSlice([]int64{1, 2, 3})
	require.Equal(t, Int64, x.AddScalar(2).DType())
	require.Equal(t, []int64{3, 4, 5}, x.AddScalar(2).Int64s())
	require.Equal(t, Float32, x.AddScalar(0.5).DType(), "a fractional scalar promotes, as in PyTorch")
	require.Equal(t, Float32, x.DivScalar(2).DType(), "true division")
}

func TestComparisons(t *testing.T) {
	a, b := f32(1, 2, 3), f32(3, 2, 1)
	for _, c := range []struct {
		name string
		got  *Tensor
		want []bool
	}{
		{"eq", a.Eq(b), []bool{false, true, false}},
		{"ne", a.Ne(b), []bool{true, false, true}},
		{"gt", a.Gt(b), []bool{false, false, true}},
		{"lt", a.Lt(b), []bool{true, false, false}},
		{"ge", a.Ge(b), []bool{false, true, true}},
		{"le", a.Le(b), []bool{true, true, false}},
		{"eq_s", a.EqScalar(2), []bool{false, true, false}},
		{"ne_s", a.NeScalar(2), []bool{true, false, true}},
		{"gt_s", a.GtScalar(2), []bool{false, false, true}},
		{"lt_s", a.LtScalar(2), []bool{true, false, false}},
		{"ge_s", a.GeScalar(2), []bool{false, true, true}},
		{"le_s", a.LeScalar(2), []bool{true, true, false}},
		{"isnan", f32(1, float32(math.NaN()), 0).IsNaN(), []bool{false, true, false}},
		{"isinf", f32(float32(math.Inf(-1)), 1, float32(math.Inf(1))).IsInf(), []bool{true, false, true}},
		{"not", FromSlice([]bool{true, false}).LogicalNot(), []bool{false, true}},
		{"and", FromSlice([]bool{true, true}).LogicalAnd(FromSlice([]bool{true, false})), []bool{true, false}},
		{"or", FromSlice([]bool{false, false}).LogicalOr(FromSlice([]bool{true, false})), []bool{true, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, Bool, c.got.DType())
			require.Equal(t, c.want, c.got.Bools())
		})
	}
	require.True(t, f32(0, 1).Any().Bools()[0])
	require.False(t, f32(0, 1).All().Bools()[0])
	require.Equal(t, []bool{true, false}, FromSlice([]float32{1, 1, 0, 0}, 2, 2).AnyDim(1, false).Bools())
	require.Equal(t, []bool{true, false}, FromSlice([]float32{1, 0, 1, 0}, 2, 2).AllDim(0, false).Bools())
}

func TestLinearAlgebra(t *testing.T) {
	a := FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := FromSlice([]float32{1, 0, 0, 1, 1, 1}, 3, 2)
	require.Equal(t, []float32{4, 5, 10, 11}, a.MatMul(b).Float32s())
	require.Equal(t, []float32{4, 5, 10, 11}, a.Mm(b).Float32s())
	// batched matmul broadcasts
	batch := Stack([]*Tensor{a, a.MulScalar(2)}, 0)
	got := batch.MatMul(b)
	require.Equal(t, Shape{2, 2, 2}, got.Shape())
	require.Equal(t, []float32{4, 5, 10, 11, 8, 10, 20, 22}, got.Float32s())
	// matrix-vector
	require.Equal(t, []float32{6, 15}, a.MatMul(f32(1, 1, 1)).Float32s())
}

func TestReductions(t *testing.T) {
	x := FromSlice([]float64{1, 5, 3, 4, 2, 6}, 2, 3)
	require.Equal(t, 21.0, x.Sum().Item())
	require.Equal(t, 3.5, x.Mean().Item())
	require.Equal(t, 6.0, x.Max().Item())
	require.Equal(t, 1.0, x.Min().Item())
	require.Equal(t, []float64{9, 12}, x.SumDims([]int64{1}, false).Float64s())
	require.Equal(t, Shape{2, 1}, x.SumDims([]int64{1}, true).Shape())
	require.Equal(t, 21.0, x.SumDims([]int64{0, 1}, false).Item())
	require.Equal(t, []float64{2.5, 3.5, 4.5}, x.MeanDims([]int64{0}, false).Float64s())
	require.InDelta(t, 1.8708287, x.Std(true).Item(), 1e-6)
	require.InDelta(t, 1.7078251, x.Std(false).Item(), 1e-6)
	require.InDelta(t, 3.5, x.Var(true).Item(), 1e-9)
	require.InDeltaSlice(t, []float64{2, 2}, x.StdDims([]int64{1}, true, false).Float64s(), 1e-9)
	require.InDeltaSlice(t, []float64{4.5, 4.5, 4.5}, x.VarDims([]int64{0}, true, false).Float64s(), 1e-9)
	require.InDelta(t, math.Sqrt(91), x.Norm(2).Item(), 1e-9)
	require.InDelta(t, 21.0, x.Norm(1).Item(), 1e-9)
	require.InDeltaSlice(t, []float64{math.Sqrt(35), math.Sqrt(56)}, x.NormDims(2, []int64{1}, false).Float64s(), 1e-9)

	v, i := x.MaxDim(1, false)
	require.Equal(t, []float64{5, 6}, v.Float64s())
	require.Equal(t, []int64{1, 2}, i.Int64s())
	v, i = x.MinDim(0, true)
	require.Equal(t, Shape{1, 3}, v.Shape())
	require.Equal(t, []float64{1, 2, 3}, v.Float64s())
	require.Equal(t, []int64{0, 1, 0}, i.Int64s())
	require.Equal(t, []int64{1, 2}, x.Argmax(1, false).Int64s())
	require.Equal(t, []int64{0, 1, 0}, x.Argmin(0, false).Int64s())
	require.Equal(t, int64(5), x.ArgmaxAll().ItemInt())
}

func TestShapeOps(t *testing.T) {
	x := Arange(0, 6, 1).Reshape(2, 3)
	require.Equal(t, Shape{2, 3}, x.Shape())
	require.Equal(t, Shape{3, 2}, x.View(3, -1).Shape())
	require.Equal(t, []int64{0, 3, 1, 4, 2, 5}, x.Transpose(0, 1).Contiguous().Int64s())
	require.Equal(t, []int64{0, 3, 1, 4, 2, 5}, x.Permute(1, 0).Int64s())
	requireTorchError(t, func() { x.Transpose(0, 1).View(6) }, "view", "reshape")
	require.Equal(t, Shape{1, 2, 3}, x.Unsqueeze(0).Shape())
	require.Equal(t, Shape{2, 3}, x.Unsqueeze(0).Unsqueeze(3).Squeeze().Shape())
	require.Equal(t, Shape{2, 3, 1}, x.Unsqueeze(0).Unsqueeze(3).SqueezeDim(0).Shape())
	require.Equal(t, Shape{6}, x.Flatten(0, -1).Shape())
	require.Equal(t, Shape{2, 3, 4}, Zeros(Shape{2, 3, 4}).Flatten(1, 1).Shape())
	require.Equal(t, []int64{1, 2, 4, 5}, x.Narrow(1, 1, 2).Int64s())
	require.Equal(t, []int64{0, 2, 3, 5}, x.Slice(1, 0, 100, 2).Int64s())
	require.Equal(t, Shape{4, 2, 3}, x.Unsqueeze(0).Expand(4, -1, -1).Shape())

	c := Cat([]*Tensor{x, x}, 0)
	require.Equal(t, Shape{4, 3}, c.Shape())
	require.Equal(t, Shape{2, 6}, Cat([]*Tensor{x, x}, 1).Shape())
	s := Stack([]*Tensor{x, x, x}, 1)
	require.Equal(t, Shape{2, 3, 3}, s.Shape())
	// more tensors than the inline argument buffer
	many := make([]*Tensor, 20)
	for i := range many {
		many[i] = Full(Shape{1}, float64(i))
	}
	require.Equal(t, 190.0, Cat(many, 0).Sum().Item())

	require.Equal(t, []int64{3, 4, 5, 0, 1, 2}, x.IndexSelect(0, FromSlice([]int64{1, 0})).Int64s())
	require.Equal(t, []int64{2, 0, 4, 4}, x.Gather(1, FromSlice([]int64{2, 0, 1, 1}, 2, 2)).Int64s())
	require.Equal(t, []int64{0, 1, 0, 0, 0, 1}, FromSlice([]int64{1, 2}).OneHot(3).Int64s())
}

func TestInPlaceOps(t *testing.T) {
	x := f32(1, 2, 3)
	x.AddInPlace(f32(1, 1, 1), 2)
	require.Equal(t, []float32{3, 4, 5}, x.Float32s())
	x.AddScalarInPlace(1)
	x.MulScalarInPlace(2)
	x.DivScalarInPlace(4)
	require.Equal(t, []float32{2, 2.5, 3}, x.Float32s())
	x.MulInPlace(f32(2, 2, 2))
	x.DivInPlace(f32(1, 5, 2))
	require.Equal(t, []float32{4, 1, 3}, x.Float32s())
	x.AddcmulInPlace(f32(1, 1, 1), f32(2, 3, 4), 0.5)
	require.Equal(t, []float32{5, 2.5, 5}, x.Float32s())
	x.AddcdivInPlace(f32(1, 1, 1), f32(2, 4, 5), 2)
	require.Equal(t, []float32{6, 3, 5.4}, x.Float32s())
	x.ClampInPlace(3.5, 5.5)
	require.Equal(t, []float32{5.5, 3.5, 5.4}, x.Float32s())
	x.FillInPlace(4)
	x.SqrtInPlace()
	require.Equal(t, []float32{2, 2, 2}, x.Float32s())
	x.LerpInPlace(f32(4, 6, 2), 0.5)
	require.Equal(t, []float32{3, 4, 2}, x.Float32s())
	x.CopyFrom(FromSlice([]float64{7, 8, 9}))
	require.Equal(t, []float32{7, 8, 9}, x.Float32s())
	x.ZeroInPlace()
	require.Equal(t, []float32{0, 0, 0}, x.Float32s())

	w := f32(1, 2).SetRequiresGrad(true)
	requireTorchError(t, func() { w.AddScalarInPlace(1) }, "add_", "leaf Variable that requires grad")
	NoGrad(func() { w.AddScalarInPlace(1) })
	require.Equal(t, []float32{2, 3}, w.Float32s())
}

func TestNNFunctions(t *testing.T) {
	x := FromSlice([]float32{1, 2, 3, 4}, 1, 1, 2, 2)
	// conv with a 1x1 kernel of 2 plus bias 1
	y := Conv2d(x, Full(Shape{1, 1, 1, 1}, 2), f32(1), Conv2dOptions{})
	require.Equal(t, []float32{3, 5, 7, 9}, y.Float32s())
	// 2x2 kernel of ones with padding 1 -> 3x3 output
	y = Conv2d(x, Ones(Shape{1, 1, 2, 2}), nil, Conv2dOptions{Padding: [2]int64{1, 1}})
	require.Equal(t, Shape{1, 1, 3, 3}, y.Shape())
	require.Equal(t, []float32{1, 3, 2, 4, 10, 6, 3, 7, 4}, y.Float32s())
	require.Equal(t, []float32{4}, MaxPool2d(x, Pool2dOptions{Kernel: [2]int64{2, 2}}).Float32s())
	require.Equal(t, []float32{2.5}, AvgPool2d(x, Pool2dOptions{Kernel: [2]int64{2, 2}}).Float32s())
	require.Equal(t, []float32{2.5}, AdaptiveAvgPool2d(x, 1, 1).Float32s())
	require.Equal(t, Shape{1, 1, 4, 4}, AdaptiveAvgPool2d(x, 4, 4).Shape())

	lin := Linear(FromSlice([]float32{1, 2}, 1, 2), FromSlice([]float32{1, 1, 0, 1}, 2, 2), f32(10, 20))
	require.Equal(t, []float32{13, 22}, lin.Float32s())

	// batch norm in training mode normalises and updates running stats in place
	bx := FromSlice([]float32{1, 3}, 2, 1)
	rm, rv := Zeros(Shape{1}), Ones(Shape{1})
	bn := BatchNorm(bx, nil, nil, rm, rv, true, 0.1, 1e-5)
	require.InDeltaSlice(t, []float32{-1, 1}, bn.Float32s(), 1e-4)
	require.InDeltaSlice(t, []float32{0.2}, rm.Float32s(), 1e-6)         // 0.9*0 + 0.1*2
	require.InDeltaSlice(t, []float32{0.9 + 0.1*2}, rv.Float32s(), 1e-6) // unbiased var 2
	ev := BatchNorm(bx, nil, nil, rm, rv, false, 0.1, 0)
	require.InDeltaSlice(t, []float32{(1 - 0.2) / float32(math.Sqrt(1.1)), (3 - 0.2) / float32(math.Sqrt(1.1))}, ev.Float32s(), 1e-5)

	ln := LayerNorm(FromSlice([]float32{1, 3, 2, 2}, 2, 2), Shape{2}, nil, nil, 1e-5)
	require.InDeltaSlice(t, []float32{-1, 1, 0, 0}, ln.Float32s(), 1e-3)

	require.Equal(t, []float32{1, 2, 3}, Dropout(f32(1, 2, 3), 0.5, false).Float32s())
	d := Dropout(Ones(Shape{10000}), 0.5, true).Float32s()
	zeros := 0
	for _, v := range d {
		require.True(t, v == 0 || v == 2)
		if v == 0 {
			zeros++
		}
	}
	require.InDelta(t, 5000, zeros, 300)

	emb := Embedding(FromSlice([]float32{0, 0, 1, 1, 2, 2}, 3, 2), FromSlice([]int64{2, 0}), -1)
	require.Equal(t, []float32{2, 2, 0, 0}, emb.Float32s())
}

func TestLosses(t *testing.T) {
	logits := FromSlice([]float64{2, 1, 0.1, 0.5, 2.5, 0.3}, 2, 3)
	target := FromSlice([]int64{0, 1})
	// by hand: -log softmax at the target, averaged
	ls := logits.LogSoftmax(1).Float64s()
	want := -(ls[0] + ls[4]) / 2
	require.InDelta(t, want, CrossEntropy(logits, target).Item(), 1e-12)
	require.InDelta(t, want, NLLLoss(logits.LogSoftmax(1), target).Item(), 1e-12)
	require.InDelta(t, -(ls[0] + ls[4]), CrossEntropy(logits, target, LossOptions{Reduction: ReduceSum}).Item(), 1e-12)
	require.Equal(t, Shape{2}, CrossEntropy(logits, target, LossOptions{Reduction: ReduceNone}).Shape())
	// label smoothing eps: (1-eps)*nll + eps*mean(-log p)
	eps := 0.1
	smooth := 0.0
	for r := 0; r < 2; r++ {
		tgt := []int{0, 1}[r]
		mean := 0.0
		for c := 0; c < 3; c++ {
			mean += -ls[r*3+c] / 3
		}
		smooth += ((1-eps)*-ls[r*3+tgt] + eps*mean) / 2
	}
	require.InDelta(t, smooth, CrossEntropy(logits, target, LossOptions{LabelSmoothing: eps}).Item(), 1e-12)
	ignore := int64(1)
	require.InDelta(t, -ls[0], CrossEntropy(logits, target, LossOptions{IgnoreIndex: &ignore}).Item(), 1e-12)

	a, b := FromSlice([]float64{1, 2, 3}), FromSlice([]float64{1, 4, 0})
	require.InDelta(t, (0+4+9)/3.0, MSELoss(a, b).Item(), 1e-12)
	require.InDelta(t, 13.0, MSELoss(a, b, ReduceSum).Item(), 1e-12)
	require.InDelta(t, 5/3.0, L1Loss(a, b).Item(), 1e-12)
	require.Equal(t, []float64{0, 2, 3}, L1Loss(a, b, ReduceNone).Float64s())

	z, y := FromSlice([]float64{0, 2}), FromSlice([]float64{1, 0})
	bce := math.Log(2)/2 + (2+math.Log1p(math.Exp(-2)))/2
	require.InDelta(t, bce, BCEWithLogits(z, y, nil, nil).Item(), 1e-12)
	pos := FromSlice([]float64{3, 3})
	bcePos := (3*math.Log(2) + (2 + math.Log1p(math.Exp(-2)))) / 2
	require.InDelta(t, bcePos, BCEWithLogits(z, y, nil, pos).Item(), 1e-12)
}
