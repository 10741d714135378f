package bridge

// #include "hotcb_torch.h"
import "C"

// Functional neural-network operations, the building blocks of bridge/nn's layers.

// Reduction says how a loss combines per-element values.
type Reduction int

// Loss reductions; the zero value is the mean, PyTorch's default.
const (
	ReduceMean Reduction = iota
	ReduceSum
	ReduceNone
)

func (r Reduction) code() int64 {
	switch r {
	case ReduceSum:
		return C.HC_REDUCE_SUM
	case ReduceNone:
		return C.HC_REDUCE_NONE
	}
	return C.HC_REDUCE_MEAN
}

// Linear returns x·wᵀ + b (b may be nil).
func Linear(x, w, b *Tensor) *Tensor {
	return call1("linear", C.HC_LINEAR, []*Tensor{x, w, b}, nil, nil)
}

// Conv2dOptions are the hyper-parameters of a 2-D convolution. Zero values mean stride 1,
// padding 0, dilation 1, groups 1.
type Conv2dOptions struct {
	Stride, Padding, Dilation [2]int64
	Groups                    int64
}

func orOne(v [2]int64) [2]int64 {
	for i := range v {
		if v[i] == 0 {
			v[i] = 1
		}
	}
	return v
}

// Conv2d convolves x [N,C,H,W] with w [O,C/groups,kH,kW] and adds b (may be nil).
func Conv2d(x, w, b *Tensor, o Conv2dOptions) *Tensor {
	s, d := orOne(o.Stride), orOne(o.Dilation)
	g := o.Groups
	if g == 0 {
		g = 1
	}
	is := []int64{s[0], s[1], o.Padding[0], o.Padding[1], d[0], d[1], g}
	return call1("conv2d", C.HC_CONV2D, []*Tensor{x, w, b}, is, nil)
}

// Pool2dOptions are the hyper-parameters of 2-D pooling. A zero Stride means the kernel size
// (PyTorch's default); a zero Dilation means 1.
type Pool2dOptions struct {
	Kernel, Stride, Padding, Dilation [2]int64
	CeilMode                          bool
	CountIncludePad                   bool // avg pooling only
}

func (o Pool2dOptions) stride() [2]int64 {
	if o.Stride == [2]int64{} {
		return o.Kernel
	}
	return o.Stride
}

// MaxPool2d takes the maximum over windows.
func MaxPool2d(x *Tensor, o Pool2dOptions) *Tensor {
	s, d := o.stride(), orOne(o.Dilation)
	is := []int64{o.Kernel[0], o.Kernel[1], s[0], s[1], o.Padding[0], o.Padding[1], d[0], d[1], b2i(o.CeilMode)}
	return call1("max_pool2d", C.HC_MAX_POOL2D, []*Tensor{x}, is, nil)
}

// AvgPool2d averages over windows.
func AvgPool2d(x *Tensor, o Pool2dOptions) *Tensor {
	s := o.stride()
	is := []int64{o.Kernel[0], o.Kernel[1], s[0], s[1], o.Padding[0], o.Padding[1], b2i(o.CeilMode), b2i(o.CountIncludePad)}
	return call1("avg_pool2d", C.HC_AVG_POOL2D, []*Tensor{x}, is, nil)
}

// AdaptiveAvgPool2d averages into an h×w output whatever the input size.
func AdaptiveAvgPool2d(x *Tensor, h, w int64) *Tensor {
	return call1("adaptive_avg_pool2d", C.HC_ADAPTIVE_AVG_POOL2D, []*Tensor{x}, []int64{h, w}, nil)
}

// BatchNorm normalises x over the batch (and spatial dims). In training it uses batch
// statistics and updates runningMean/runningVar in place with momentum; otherwise it uses them.
// weight, bias and the running tensors may be nil.
func BatchNorm(x, weight, bias, runningMean, runningVar *Tensor, training bool, momentum, eps float64) *Tensor {
	return BatchNormTracked(x, weight, bias, runningMean, runningVar, nil, training, momentum, eps)
}

// BatchNormTracked is BatchNorm that, when training, first adds 1 to numBatchesTracked (an int64
// scalar; autograd off), in the same call — what nn.BatchNorm2d does at each training forward.
func BatchNormTracked(x, weight, bias, runningMean, runningVar, numBatchesTracked *Tensor, training bool,
	momentum, eps float64) *Tensor {
	return call1("batch_norm", C.HC_BATCH_NORM, []*Tensor{x, weight, bias, runningMean, runningVar, numBatchesTracked},
		[]int64{b2i(training)}, []float64{momentum, eps})
}

// LayerNorm normalises over the trailing dims given by normalizedShape.
func LayerNorm(x *Tensor, normalizedShape Shape, weight, bias *Tensor, eps float64) *Tensor {
	return call1("layer_norm", C.HC_LAYER_NORM, []*Tensor{x, weight, bias}, normalizedShape, []float64{eps})
}

// Dropout zeroes elements with probability p and rescales the rest, when train is true.
func Dropout(x *Tensor, p float64, train bool) *Tensor {
	return call1("dropout", C.HC_DROPOUT, []*Tensor{x}, []int64{b2i(train)}, []float64{p})
}

// Embedding looks up rows of weight at int64 indices; paddingIdx < 0 means none.
func Embedding(weight, indices *Tensor, paddingIdx int64) *Tensor {
	return call1("embedding", C.HC_EMBEDDING, []*Tensor{weight, indices}, []int64{paddingIdx}, nil)
}

// LossOptions are shared by the classification losses. The zero value is PyTorch's default:
// mean reduction, ignore index -100, no class weights, no label smoothing.
type LossOptions struct {
	Reduction      Reduction
	IgnoreIndex    *int64  // nil: -100
	Weight         *Tensor // per-class weights, or nil
	LabelSmoothing float64 // cross-entropy only
}

func (o LossOptions) ints() []int64 {
	ig := int64(-100)
	if o.IgnoreIndex != nil {
		ig = *o.IgnoreIndex
	}
	return []int64{o.Reduction.code(), ig}
}

// reductionOf reads an optional reduction argument (mean when absent).
func reductionOf(r []Reduction) int64 {
	if len(r) == 0 {
		return ReduceMean.code()
	}
	return r[0].code()
}

// CrossEntropy of logits [N,C,...] against int64 class targets [N,...] (or class
// probabilities of the logits' shape).
func CrossEntropy(logits, target *Tensor, opts ...LossOptions) *Tensor {
	var o LossOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	return call1("cross_entropy", C.HC_CROSS_ENTROPY, []*Tensor{logits, target, o.Weight}, o.ints(), []float64{o.LabelSmoothing})
}

// NLLLoss of log-probabilities against int64 class targets.
func NLLLoss(logProbs, target *Tensor, opts ...LossOptions) *Tensor {
	var o LossOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	return call1("nll_loss", C.HC_NLL_LOSS, []*Tensor{logProbs, target, o.Weight}, o.ints(), nil)
}

// MSELoss is the mean (or sum, or per-element) squared error.
func MSELoss(input, target *Tensor, reduction ...Reduction) *Tensor {
	return call1("mse_loss", C.HC_MSE_LOSS, []*Tensor{input, target}, []int64{reductionOf(reduction)}, nil)
}

// L1Loss is the mean (or sum, or per-element) absolute error.
func L1Loss(input, target *Tensor, reduction ...Reduction) *Tensor {
	return call1("l1_loss", C.HC_L1_LOSS, []*Tensor{input, target}, []int64{reductionOf(reduction)}, nil)
}

// BCEWithLogits is binary cross-entropy on logits. weight and posWeight may be nil.
func BCEWithLogits(logits, target, weight, posWeight *Tensor, reduction ...Reduction) *Tensor {
	return call1("binary_cross_entropy_with_logits", C.HC_BCE_WITH_LOGITS,
		[]*Tensor{logits, target, weight, posWeight}, []int64{reductionOf(reduction)}, nil)
}
