package nn

import (
	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// Linear is y = x·Wᵀ + b over the last dim.
type Linear struct {
	Node
	In, Out      int64
	Weight, Bias *bridge.Tensor // [Out, In], [Out] (nil without bias)
}

// LinearOptions tune NewLinear.
type LinearOptions struct{ NoBias bool }

// NewLinear makes a Linear layer initialised as PyTorch does (the same values after the same
// seed: weight, then bias, from U(±1/√in)).
func NewLinear(in, out int64, opts ...LinearOptions) *Linear {
	o := firstOpt(opts)
	l := &Linear{In: in, Out: out}
	l.kind = "Linear"
	l.Weight, l.Bias = weightAndBias(&l.Node, []int64{out, in}, out, o.NoBias)
	return l
}

// Forward applies the layer.
func (l *Linear) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape()
	if len(s) == 0 || s[len(s)-1] != l.In {
		l.fail("input of shape %v: expected the last dim to be %d features", s, l.In)
	}
	return l.Fire(x, bridge.Linear(x, l.Weight, l.Bias))
}

// Conv2d is a 2-D convolution over [N, C, H, W] inputs with square kernels.
type Conv2d struct {
	Node
	In, Out, Kernel              int64
	Stride, Padding, Dilation, G int64
	Weight, Bias                 *bridge.Tensor // [Out, In/G, K, K], [Out]
}

// Conv2dOptions tune NewConv2d; zero values mean stride 1, padding 0, dilation 1, groups 1.
type Conv2dOptions struct {
	Stride, Padding, Dilation, Groups int64
	NoBias                            bool
}

// NewConv2d makes a Conv2d layer initialised as PyTorch does.
func NewConv2d(in, out, kernel int64, opts ...Conv2dOptions) *Conv2d {
	o := firstOpt(opts)
	c := &Conv2d{In: in, Out: out, Kernel: kernel, Stride: max(o.Stride, 1), Padding: o.Padding,
		Dilation: max(o.Dilation, 1), G: max(o.Groups, 1)}
	c.kind = "Conv2d"
	if in%c.G != 0 || out%c.G != 0 {
		c.fail("in (%d) and out (%d) channels must be divisible by groups (%d)", in, out, c.G)
	}
	c.Weight, c.Bias = weightAndBias(&c.Node, []int64{out, in / c.G, kernel, kernel}, out, o.NoBias)
	return c
}

// Forward applies the convolution.
func (c *Conv2d) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape()
	if len(s) != 4 && len(s) != 3 {
		c.fail("input of shape %v: expected [N, C, H, W] (or [C, H, W])", s)
	}
	if ch := s[len(s)-3]; ch != c.In {
		c.fail("input of shape %v has %d channels, expected %d", s, ch, c.In)
	}
	y := bridge.Conv2d(x, c.Weight, c.Bias, bridge.Conv2dOptions{
		Stride:   [2]int64{c.Stride, c.Stride},
		Padding:  [2]int64{c.Padding, c.Padding},
		Dilation: [2]int64{c.Dilation, c.Dilation},
		Groups:   c.G,
	})
	return c.Fire(x, y)
}

// BatchNorm2d normalises each channel of [N, C, H, W] inputs.
type BatchNorm2d struct {
	Node
	Features                     int64
	Eps, Momentum                float64
	Weight, Bias                 *bridge.Tensor // nil without affine
	RunningMean, RunningVar      *bridge.Tensor // nil without running stats
	NumBatchesTracked            *bridge.Tensor // int64 scalar
	trackRunningStats, hasAffine bool
}

// BatchNormOptions tune NewBatchNorm1d, 2d and 3d; zero values mean eps 1e-5 and momentum 0.1.
type BatchNormOptions struct {
	Eps, Momentum       float64
	NoAffine            bool
	NoTrackRunningStats bool
}

// NewBatchNorm2d makes a BatchNorm2d layer (weight 1, bias 0, running mean 0, running var 1).
func NewBatchNorm2d(features int64, opts ...BatchNormOptions) *BatchNorm2d {
	o := firstOpt(opts)
	b := &BatchNorm2d{Features: features, Eps: o.Eps, Momentum: o.Momentum,
		trackRunningStats: !o.NoTrackRunningStats, hasAffine: !o.NoAffine}
	b.kind = "BatchNorm2d"
	if b.Eps == 0 {
		b.Eps = 1e-5
	}
	if b.Momentum == 0 {
		b.Momentum = 0.1
	}
	if b.hasAffine {
		b.Weight = b.Param("weight", bridge.Ones(bridge.Shape{features}))
		b.Bias = b.Param("bias", bridge.Zeros(bridge.Shape{features}))
	}
	if b.trackRunningStats {
		b.RunningMean = b.Buffer("running_mean", bridge.Zeros(bridge.Shape{features}))
		b.RunningVar = b.Buffer("running_var", bridge.Ones(bridge.Shape{features}))
		b.NumBatchesTracked = b.Buffer("num_batches_tracked", bridge.Scalar(0, bridge.Int64))
	}
	return b
}

// Forward normalises with batch statistics in training mode (updating the running ones) and
// with the running statistics in evaluation mode.
func (b *BatchNorm2d) Forward(x *bridge.Tensor) *bridge.Tensor {
	return b.Fire(x, b.normalize(x, "a 4-D [N, C, H, W] input", 4))
}

// normalize is the batch norm of every BatchNorm layer: x must have one of dims dims, with the
// channels in dim 1.
func (b *BatchNorm2d) normalize(x *bridge.Tensor, want string, dims ...int) *bridge.Tensor {
	s := x.Shape()
	ok := false
	for _, d := range dims {
		ok = ok || len(s) == d
	}
	if !ok {
		b.fail("input of shape %v: expected %s", s, want)
	}
	if s[1] != b.Features {
		b.fail("input of shape %v has %d channels, expected %d", s, s[1], b.Features)
	}
	useBatch := b.Training() || !b.trackRunningStats
	var counter *bridge.Tensor // counted in the same call into the shim
	if b.Training() && b.trackRunningStats {
		counter = b.NumBatchesTracked
	}
	return bridge.BatchNormTracked(x, b.Weight, b.Bias, b.RunningMean, b.RunningVar, counter, useBatch, b.Momentum, b.Eps)
}

// BatchNorm1d normalises each channel of [N, C] or [N, C, L] inputs — PyTorch's nn.BatchNorm1d,
// with BatchNorm2d's fields, options and state-dict names.
type BatchNorm1d BatchNorm2d

// NewBatchNorm1d makes a BatchNorm1d layer (weight 1, bias 0, running mean 0, running var 1).
func NewBatchNorm1d(features int64, opts ...BatchNormOptions) *BatchNorm1d {
	b := NewBatchNorm2d(features, opts...)
	b.kind = "BatchNorm1d"
	return (*BatchNorm1d)(b)
}

// Forward normalises as BatchNorm2d's does.
func (b *BatchNorm1d) Forward(x *bridge.Tensor) *bridge.Tensor {
	return b.Fire(x, (*BatchNorm2d)(b).normalize(x, "a 2-D [N, C] or 3-D [N, C, L] input", 2, 3))
}

// BatchNorm3d normalises each channel of [N, C, D, H, W] inputs — PyTorch's nn.BatchNorm3d, with
// BatchNorm2d's fields, options and state-dict names.
type BatchNorm3d BatchNorm2d

// NewBatchNorm3d makes a BatchNorm3d layer (weight 1, bias 0, running mean 0, running var 1).
func NewBatchNorm3d(features int64, opts ...BatchNormOptions) *BatchNorm3d {
	b := NewBatchNorm2d(features, opts...)
	b.kind = "BatchNorm3d"
	return (*BatchNorm3d)(b)
}

// Forward normalises as BatchNorm2d's does.
func (b *BatchNorm3d) Forward(x *bridge.Tensor) *bridge.Tensor {
	return b.Fire(x, (*BatchNorm2d)(b).normalize(x, "a 5-D [N, C, D, H, W] input", 5))
}

// LayerNorm normalises over the trailing dims given by Shape.
type LayerNorm struct {
	Node
	Shape        bridge.Shape
	Eps          float64
	Weight, Bias *bridge.Tensor
}

// LayerNormOptions tune NewLayerNorm; a zero Eps means 1e-5.
type LayerNormOptions struct {
	Eps      float64
	NoAffine bool
}

// NewLayerNorm makes a LayerNorm over the given trailing shape (weight 1, bias 0).
func NewLayerNorm(shape bridge.Shape, opts ...LayerNormOptions) *LayerNorm {
	o := firstOpt(opts)
	l := &LayerNorm{Shape: shape, Eps: o.Eps}
	l.kind = "LayerNorm"
	if l.Eps == 0 {
		l.Eps = 1e-5
	}
	if !o.NoAffine {
		l.Weight = l.Param("weight", bridge.Ones(shape))
		l.Bias = l.Param("bias", bridge.Zeros(shape))
	}
	return l
}

// Forward applies the normalisation.
func (l *LayerNorm) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape()
	if len(s) < len(l.Shape) || !s[len(s)-len(l.Shape):].Equal(l.Shape) {
		l.fail("input of shape %v does not end with the normalized shape %v", s, l.Shape)
	}
	return l.Fire(x, bridge.LayerNorm(x, l.Shape, l.Weight, l.Bias, l.Eps))
}

// Embedding maps int64 indices to rows of a [Num, Dim] table.
type Embedding struct {
	Node
	Num, Dim   int64
	PaddingIdx int64 // -1: none
	Weight     *bridge.Tensor
}

// EmbeddingOptions tune NewEmbedding.
type EmbeddingOptions struct {
	PaddingIdx *int64 // its row starts at zero and gets no gradient
}

// NewEmbedding makes an Embedding initialised N(0, 1), as PyTorch does.
func NewEmbedding(num, dim int64, opts ...EmbeddingOptions) *Embedding {
	e := &Embedding{Num: num, Dim: dim}
	e.kind = "Embedding"
	w := bridge.Randn(bridge.Shape{num, dim})
	e.PaddingIdx = paddingRow(&e.Node, w, firstOpt(opts).PaddingIdx)
	e.Weight = e.Param("weight", w)
	return e
}

// paddingRow resolves an Embedding's or EmbeddingBag's padding index (a negative one counts from
// the end of the table w) and zeroes that row of w; it returns -1 when idx is nil.
func paddingRow(n *Node, w *bridge.Tensor, idx *int64) int64 {
	if idx == nil {
		return -1
	}
	num := w.Size(0)
	p := *idx
	if p < 0 {
		p += num
	}
	if p < 0 || p >= num {
		n.fail("padding index %d out of range for %d embeddings", *idx, num)
	}
	w.Narrow(0, p, 1).ZeroInPlace()
	return p
}

// Forward looks up the rows.
func (e *Embedding) Forward(idx *bridge.Tensor) *bridge.Tensor {
	if dt := idx.DType(); dt != bridge.Int64 && dt != bridge.Int32 {
		e.fail("indices must be int64 or int32, got %v", dt)
	}
	return e.Fire(idx, bridge.Embedding(e.Weight, idx, e.PaddingIdx))
}

// Dropout zeroes elements with probability P in training mode.
type Dropout struct {
	Node
	P float64
}

// NewDropout makes a Dropout layer.
func NewDropout(p float64) *Dropout {
	d := &Dropout{P: p}
	d.kind = "Dropout"
	if p < 0 || p > 1 {
		d.fail("dropout probability %v is not in [0, 1]", p)
	}
	return d
}

// Forward applies dropout (the identity in evaluation mode).
func (d *Dropout) Forward(x *bridge.Tensor) *bridge.Tensor {
	return d.Fire(x, bridge.Dropout(x, d.P, d.Training()))
}

// Dropout2d zeroes whole channels of [N, C, H, W] inputs with probability P in training mode,
// scaling the rest by 1/(1-P) — PyTorch's nn.Dropout2d (which, like PyTorch 1.13, treats a 3-D
// input as [N, C, L]).
type Dropout2d struct {
	Node
	P float64
}

// NewDropout2d makes a Dropout2d layer.
func NewDropout2d(p float64) *Dropout2d {
	d := &Dropout2d{P: p}
	d.kind = "Dropout2d"
	if p < 0 || p > 1 {
		d.fail("dropout probability %v is not in [0, 1]", p)
	}
	return d
}

// Forward applies channel dropout (the identity in evaluation mode).
func (d *Dropout2d) Forward(x *bridge.Tensor) *bridge.Tensor {
	if s := x.Shape(); len(s) != 4 && len(s) != 3 {
		d.fail("input of shape %v: expected [N, C, H, W] (or [N, C, L])", s)
	}
	return d.Fire(x, aten.FeatureDropout(x, d.P, d.Training()))
}
