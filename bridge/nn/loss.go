package nn

import (
	"fmt"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// Losses, as torch.nn.functional computes them in PyTorch 1.13: the same ATen kernels (package
// aten), the same argument checks and broadcasting done in Python before them, and the same
// reductions. Each takes its reduction as a bridge.Reduction (the zero value, bridge.ReduceMean,
// is PyTorch's default; bridge.ReduceSum; bridge.ReduceNone keeps one value per element or
// sample) and is differentiable in its inputs like any other op. The classic ones — CrossEntropy,
// NLLLoss, MSELoss, L1Loss, BCEWithLogits — are in package bridge.
//
// A bad argument panics with a *bridge.Error, as tensor operations do: Op names the loss
// ("nn.BCELoss") for the checks made here, or the ATen op for libtorch's own.

// atenReduction maps a bridge.Reduction to at::Reduction's numbering.
func atenReduction(loss string, r []bridge.Reduction) int64 {
	if len(r) == 0 {
		return aten.ReductionMean
	}
	if len(r) > 1 {
		lossFail(loss, "one reduction at most, got %d", len(r))
	}
	return reductionCode(loss, r[0])
}

func reductionCode(loss string, r bridge.Reduction) int64 {
	switch r {
	case bridge.ReduceMean:
		return aten.ReductionMean
	case bridge.ReduceSum:
		return aten.ReductionSum
	case bridge.ReduceNone:
		return aten.ReductionNone
	}
	lossFail(loss, "unknown reduction %d (want bridge.ReduceMean, ReduceSum or ReduceNone)", int(r))
	return 0
}

func lossFail(loss, format string, args ...any) {
	panic(&bridge.Error{Op: "nn." + loss, Msg: fmt.Sprintf(format, args...)})
}

func needTensors(loss string, names []string, ts ...*bridge.Tensor) {
	for i, t := range ts {
		if t == nil {
			lossFail(loss, "%s is nil", names[i])
		}
	}
}

// broadcastShape is the shape a and b broadcast to (torch's _infer_size), or ok false.
func broadcastShape(a, b bridge.Shape) (bridge.Shape, bool) {
	n := max(len(a), len(b))
	out := make(bridge.Shape, n)
	for i := range n {
		da, db := int64(1), int64(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, false
		}
	}
	return out, true
}

// broadcastLoss is F.smooth_l1_loss's and F.huber_loss's common part: it checks input, target
// and the reduction, expands input and target to their common shape (torch.broadcast_tensors;
// tensors already of that shape are used as they are) and applies kernel to them.
func broadcastLoss(loss string, input, target *bridge.Tensor, reduction []bridge.Reduction,
	kernel func(x, y *bridge.Tensor, red int64) *bridge.Tensor) *bridge.Tensor {
	needTensors(loss, []string{"input", "target"}, input, target)
	red := atenReduction(loss, reduction)
	si, st := input.Shape(), target.Shape()
	if si.Equal(st) {
		return kernel(input, target, red)
	}
	s, ok := broadcastShape(si, st)
	if !ok {
		lossFail(loss, "the input's shape %v and the target's shape %v do not broadcast", si, st)
	}
	x, y := input.Expand(s...), target.Expand(s...)
	defer x.Free()
	defer y.Free()
	return kernel(x, y, red)
}

// BCEOptions are F.binary_cross_entropy's options; the zero value is its default (no weight,
// mean).
type BCEOptions struct {
	// Weight rescales each element's loss; it is broadcast to the target's shape.
	Weight    *bridge.Tensor
	Reduction bridge.Reduction
}

// BCELoss is the binary cross-entropy between probabilities input (in [0, 1]) and target of the
// same shape: -w·(y·log x + (1-y)·log(1-x)), each log clamped to >= -100 (torch.nn.BCELoss,
// F.binary_cross_entropy). For logits, bridge.BCEWithLogits is the numerically stable form.
func BCELoss(input, target *bridge.Tensor, opts ...BCEOptions) *bridge.Tensor {
	const name = "BCELoss"
	needTensors(name, []string{"input", "target"}, input, target)
	o := optsOf(name, opts)
	red := reductionCode(name, o.Reduction)
	si, st := input.Shape(), target.Shape()
	if !si.Equal(st) {
		lossFail(name, "the target's shape %v differs from the input's shape %v (they must be equal)", st, si)
	}
	w := o.Weight
	if w != nil {
		s, ok := broadcastShape(st, w.Shape())
		if !ok {
			lossFail(name, "the weight's shape %v does not broadcast to the target's shape %v", w.Shape(), st)
		}
		if !s.Equal(w.Shape()) {
			w = w.Expand(s...)
			defer w.Free()
		}
	}
	return aten.BinaryCrossEntropy(input, target, w, red)
}

// KLDivOptions are F.kl_div's options; the zero value is its default (mean over every element,
// target given as probabilities).
type KLDivOptions struct {
	Reduction bridge.Reduction
	// BatchMean divides the sum by the batch size (input's first dim) — reduction='batchmean',
	// the Kullback-Leibler divergence per sample; Reduction must then be left at its zero value.
	BatchMean bool
	// LogTarget says the target holds log-probabilities (log_target=True).
	LogTarget bool
}

// KLDivLoss is the Kullback-Leibler divergence loss of log-probabilities input against target:
// target·(log target - input) per element, or exp(target)·(target - input) with LogTarget
// (torch.nn.KLDivLoss, F.kl_div).
func KLDivLoss(input, target *bridge.Tensor, opts ...KLDivOptions) *bridge.Tensor {
	const name = "KLDivLoss"
	needTensors(name, []string{"input", "target"}, input, target)
	o := optsOf(name, opts)
	red := reductionCode(name, o.Reduction)
	if o.BatchMean {
		if o.Reduction != bridge.ReduceMean {
			lossFail(name, "BatchMean is a reduction of its own: leave Reduction at its zero value, got %d", int(o.Reduction))
		}
		red = aten.ReductionSum
	}
	out := aten.KlDiv(input, target, red, o.LogTarget)
	if o.BatchMean && input.Dim() != 0 {
		sum := out
		out = sum.DivScalar(float64(input.Size(0)))
		sum.Free()
	}
	return out
}

// SmoothL1Loss is the smooth L1 loss: 0.5·d²/beta where |d| < beta, |d| - 0.5·beta elsewhere,
// d = input - target (broadcast together); beta 0 is the L1 loss. PyTorch's default beta is 1
// (torch.nn.SmoothL1Loss, F.smooth_l1_loss).
func SmoothL1Loss(input, target *bridge.Tensor, beta float64, reduction ...bridge.Reduction) *bridge.Tensor {
	return broadcastLoss("SmoothL1Loss", input, target, reduction, func(x, y *bridge.Tensor, red int64) *bridge.Tensor {
		return aten.SmoothL1Loss(x, y, red, beta)
	})
}

// HuberLoss is the Huber loss: 0.5·d² where |d| < delta, delta·(|d| - 0.5·delta) elsewhere,
// d = input - target (broadcast together); SmoothL1Loss times beta. PyTorch's default delta is
// 1 (torch.nn.HuberLoss, F.huber_loss).
func HuberLoss(input, target *bridge.Tensor, delta float64, reduction ...bridge.Reduction) *bridge.Tensor {
	return broadcastLoss("HuberLoss", input, target, reduction, func(x, y *bridge.Tensor, red int64) *bridge.Tensor {
		return aten.HuberLoss(x, y, red, delta)
	})
}

// CosineEmbeddingLoss compares rows of x1 and x2 [N,D] (or vectors [D]) by their cosine
// similarity: 1 - cos where target is 1, max(0, cos - margin) where it is -1; margin in [-1, 1],
// PyTorch's default 0 (torch.nn.CosineEmbeddingLoss, F.cosine_embedding_loss).
func CosineEmbeddingLoss(x1, x2, target *bridge.Tensor, margin float64, reduction ...bridge.Reduction) *bridge.Tensor {
	const name = "CosineEmbeddingLoss"
	needTensors(name, []string{"x1", "x2", "target"}, x1, x2, target)
	return aten.CosineEmbeddingLoss(x1, x2, target, margin, atenReduction(name, reduction))
}

// MarginRankingLoss is max(0, -target·(x1 - x2) + margin) per element, target holding 1 (x1
// should rank higher) or -1; the three tensors must have as many dims. PyTorch's default margin
// is 0 (torch.nn.MarginRankingLoss, F.margin_ranking_loss).
func MarginRankingLoss(x1, x2, target *bridge.Tensor, margin float64, reduction ...bridge.Reduction) *bridge.Tensor {
	const name = "MarginRankingLoss"
	needTensors(name, []string{"x1", "x2", "target"}, x1, x2, target)
	red := atenReduction(name, reduction)
	if d := x1.Dim(); d != x2.Dim() || d != target.Dim() {
		lossFail(name, "x1, x2 and target must have as many dims, got shapes %v, %v and %v", x1.Shape(), x2.Shape(), target.Shape())
	}
	return aten.MarginRankingLoss(x1, x2, target, margin, red)
}

// TripletOptions are F.triplet_margin_loss's options; start from DefaultTriplet (a zero P is a
// value, not "unset").
type TripletOptions struct {
	Margin float64 // must be > 0
	P      float64 // the norm of the pairwise distance
	Eps    float64 // added to the difference before the norm
	// Swap uses the distance of positive to negative when smaller than anchor to negative (the
	// "distance swap" of Balntas et al.).
	Swap      bool
	Reduction bridge.Reduction
}

// DefaultTriplet returns PyTorch's defaults: margin 1, p 2, eps 1e-6, no swap, mean.
func DefaultTriplet() TripletOptions { return TripletOptions{Margin: 1, P: 2, Eps: 1e-6} }

// TripletMarginLoss is max(d(a, p) - d(a, n) + margin, 0) per sample, d the p-norm distance
// of rows (torch.nn.TripletMarginLoss, F.triplet_margin_loss). Without options it uses
// DefaultTriplet.
func TripletMarginLoss(anchor, positive, negative *bridge.Tensor, opts ...TripletOptions) *bridge.Tensor {
	const name = "TripletMarginLoss"
	needTensors(name, []string{"anchor", "positive", "negative"}, anchor, positive, negative)
	o := DefaultTriplet()
	if len(opts) > 0 {
		o = optsOf(name, opts)
	}
	red := reductionCode(name, o.Reduction)
	return aten.TripletMarginLoss(anchor, positive, negative, o.Margin, o.P, o.Eps, o.Swap, red)
}

// CTCOptions are F.ctc_loss's options; the zero value is its default (blank 0, mean, no
// zeroing).
type CTCOptions struct {
	Blank     int64
	Reduction bridge.Reduction // mean: each sample's loss divided by its target length, then averaged
	// ZeroInfinity replaces infinite losses (an input too short for its target) and their
	// gradients with zeros.
	ZeroInfinity bool
}

// CTCLoss is the connectionist temporal classification loss of log-probabilities logProbs
// [T,N,C] (or [T,C] unbatched; log_softmax over C) against targets — [N,S] padded, or all
// targets concatenated in 1-D — with int64 tensors of each sample's input and target lengths
// (torch.nn.CTCLoss, F.ctc_loss). CTCLossLengths takes the lengths as Go slices.
func CTCLoss(logProbs, targets, inputLengths, targetLengths *bridge.Tensor, opts ...CTCOptions) *bridge.Tensor {
	const name = "CTCLoss"
	needTensors(name, []string{"logProbs", "targets", "inputLengths", "targetLengths"}, logProbs, targets, inputLengths, targetLengths)
	o := optsOf(name, opts)
	return aten.CtcLoss(logProbs, targets, inputLengths, targetLengths, o.Blank, reductionCode(name, o.Reduction), o.ZeroInfinity)
}

// CTCLossLengths is CTCLoss with the input and target lengths as slices.
func CTCLossLengths(logProbs, targets *bridge.Tensor, inputLengths, targetLengths []int64, opts ...CTCOptions) *bridge.Tensor {
	const name = "CTCLoss"
	needTensors(name, []string{"logProbs", "targets"}, logProbs, targets)
	o := optsOf(name, opts)
	return aten.CtcLossIntList(logProbs, targets, inputLengths, targetLengths, o.Blank, reductionCode(name, o.Reduction), o.ZeroInfinity)
}

// PoissonNLLOptions are F.poisson_nll_loss's options; start from DefaultPoissonNLL (LogInput's
// default is true).
type PoissonNLLOptions struct {
	// LogInput says input is the log of the rate: the loss is exp(input) - target·input;
	// otherwise input - target·log(input + Eps).
	LogInput bool
	// Full adds Stirling's approximation of log(target!), target·log(target) - target +
	// 0.5·log(2π·target), where target > 1.
	Full      bool
	Eps       float64
	Reduction bridge.Reduction
}

// DefaultPoissonNLL returns PyTorch's defaults: log_input, not full, eps 1e-8, mean.
func DefaultPoissonNLL() PoissonNLLOptions { return PoissonNLLOptions{LogInput: true, Eps: 1e-8} }

// PoissonNLLLoss is the negative log-likelihood of target under a Poisson distribution of rate
// input (torch.nn.PoissonNLLLoss, F.poisson_nll_loss). Without options it uses
// DefaultPoissonNLL.
func PoissonNLLLoss(input, target *bridge.Tensor, opts ...PoissonNLLOptions) *bridge.Tensor {
	const name = "PoissonNLLLoss"
	needTensors(name, []string{"input", "target"}, input, target)
	o := DefaultPoissonNLL()
	if len(opts) > 0 {
		o = optsOf(name, opts)
	}
	red := reductionCode(name, o.Reduction)
	return aten.PoissonNllLoss(input, target, o.LogInput, o.Full, o.Eps, red)
}

// optsOf returns the single options value given, or the zero value.
func optsOf[T any](loss string, opts []T) T {
	var o T
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		lossFail(loss, "one options value at most, got %d", len(opts))
	}
	return o
}
