package nn

import (
	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// EmbeddingBagOptions tune NewEmbeddingBag; the zero value is PyTorch's defaults (mode mean).
type EmbeddingBagOptions struct {
	Mode              string  // "mean" (default), "sum" or "max"
	PaddingIdx        *int64  // that row starts at zero, is left out of every bag and gets no gradient
	MaxNorm           float64 // > 0: rows looked up are renormalised in place to this norm at most
	NormType          float64 // the p of MaxNorm's norm; 0 means 2
	ScaleGradByFreq   bool    // scale gradients by the inverse frequency of the indices in the batch
	IncludeLastOffset bool    // offsets has one more entry: the end of the last bag
}

// bagModes are aten::embedding_bag's mode numbers.
var bagModes = map[string]int64{"sum": 0, "mean": 1, "max": 2}

// EmbeddingBag is PyTorch's nn.EmbeddingBag: the sum, mean or max of the rows of a [Num, Dim]
// table over each bag of indices, without the per-index intermediate (aten::embedding_bag).
// Dense gradients only (PyTorch's sparse=True is not offered).
type EmbeddingBag struct {
	Node
	Num, Dim          int64
	Mode              string
	PaddingIdx        int64 // -1: none
	MaxNorm, NormType float64
	ScaleGradByFreq   bool
	IncludeLastOffset bool
	Weight            *bridge.Tensor
}

// NewEmbeddingBag makes an EmbeddingBag initialised N(0, 1) (the padding row zero), as PyTorch
// does.
func NewEmbeddingBag(num, dim int64, opts ...EmbeddingBagOptions) *EmbeddingBag {
	o := firstOpt(opts)
	e := &EmbeddingBag{Num: num, Dim: dim, Mode: o.Mode, MaxNorm: o.MaxNorm, NormType: o.NormType,
		ScaleGradByFreq: o.ScaleGradByFreq, IncludeLastOffset: o.IncludeLastOffset}
	e.kind = "EmbeddingBag"
	if e.Mode == "" {
		e.Mode = "mean"
	}
	if e.NormType == 0 {
		e.NormType = 2
	}
	switch {
	case num <= 0 || dim <= 0:
		e.fail("num_embeddings %d and embedding_dim %d must be positive", num, dim)
	case e.Mode != "sum" && e.Mode != "mean" && e.Mode != "max":
		e.fail("mode has to be one of sum, mean or max, not %q", e.Mode)
	case e.Mode == "max" && e.ScaleGradByFreq:
		e.fail("max mode does not support scaling the gradient by the frequency")
	}
	w := bridge.Randn(bridge.Shape{num, dim})
	e.PaddingIdx = paddingRow(&e.Node, w, o.PaddingIdx)
	e.Weight = e.Param("weight", w)
	return e
}

// Forward reduces each row of a 2-D [B, N] index tensor (bags of equal length) to one [B, Dim]
// row.
func (e *EmbeddingBag) Forward(input *bridge.Tensor) *bridge.Tensor {
	return e.ForwardBags(input, nil, nil)
}

// ForwardBags is PyTorch's forward(input, offsets, per_sample_weights): input is a 2-D [B, N]
// index tensor with offsets nil, or a 1-D one with offsets (int, as input's dtype) giving where
// each bag starts; perSampleWeights (shaped like input, mode sum only; nil: none) weigh each
// index. The result is [B, Dim], an empty bag giving zeros. Forward hooks see input and it.
func (e *EmbeddingBag) ForwardBags(input, offsets, perSampleWeights *bridge.Tensor) *bridge.Tensor {
	idx := input
	if dt := idx.DType(); dt != bridge.Int64 && dt != bridge.Int32 {
		e.fail("indices must be int64 or int32, got %v", dt)
	}
	if perSampleWeights != nil {
		if !perSampleWeights.Shape().Equal(idx.Shape()) {
			e.fail("per_sample_weights of shape %v must have the shape of the input %v", perSampleWeights.Shape(), idx.Shape())
		}
		if e.Mode != "sum" {
			e.fail("per_sample_weights are only supported for mode sum, not %s", e.Mode)
		}
	}
	switch idx.Dim() {
	case 2:
		if offsets != nil {
			e.fail("a 2-D input holds bags of equal length: offsets must be nil")
		}
		n := idx.Size(1)
		offsets = bridge.Arange(0, float64(idx.Numel()), float64(max(n, 1)), idx.DType(), idx.Device())
		idx = idx.Reshape(-1)
		if perSampleWeights != nil {
			perSampleWeights = perSampleWeights.Reshape(-1)
		}
	case 1:
		if offsets == nil || offsets.Dim() != 1 {
			e.fail("a 1-D input needs 1-D offsets")
		}
	default:
		e.fail("input of shape %v: expected 1-D (with offsets) or 2-D", idx.Shape())
	}
	if e.MaxNorm > 0 {
		bridge.NoGrad(func() { aten.EmbeddingRenorm_(e.Weight, idx, e.MaxNorm, e.NormType) })
	}
	mode := bagModes[e.Mode]
	var pad *int64
	if e.PaddingIdx >= 0 {
		pad = aten.I(e.PaddingIdx)
	}
	out, _, _, _ := aten.EmbeddingBagPaddingIdx(e.Weight, idx, offsets, e.ScaleGradByFreq, mode, false,
		perSampleWeights, e.IncludeLastOffset, pad)
	return e.Fire(input, out)
}
