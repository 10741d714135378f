package nn

import (
	"math"
	"strconv"

	"github.com/hotcb/hotcb/bridge"
)

// TransformerEncoderLayerOptions tune NewTransformerEncoderLayer. Start from
// DefaultTransformerEncoderLayerOptions (PyTorch's defaults): Dropout is taken as given, so the
// zero value has no dropout, while a zero DimFeedforward, Activation or LayerNormEps means
// PyTorch's default.
type TransformerEncoderLayerOptions struct {
	DimFeedforward int64   // 0: 2048
	Dropout        float64 // PyTorch's default is 0.1
	Activation     string  // "relu" (default) or "gelu" (exact)
	// ActivationFunc, when set, replaces Activation (PyTorch's activation= callable).
	ActivationFunc func(*bridge.Tensor) *bridge.Tensor
	LayerNormEps   float64 // 0: 1e-5
	BatchFirst     bool    // [N, L, E] instead of [L, N, E]
	NormFirst      bool    // pre-norm: x + sa(norm1(x)), x + ff(norm2(x))
}

// DefaultTransformerEncoderLayerOptions are PyTorch's defaults: dim_feedforward 2048, dropout
// 0.1, relu, layer_norm_eps 1e-5, sequence first, post-norm.
func DefaultTransformerEncoderLayerOptions() TransformerEncoderLayerOptions {
	return TransformerEncoderLayerOptions{DimFeedforward: 2048, Dropout: 0.1, Activation: "relu", LayerNormEps: 1e-5}
}

// TransformerEncoderLayer is PyTorch's nn.TransformerEncoderLayer with its children and
// parameter names: self_attn (MultiheadAttention), linear1, dropout, linear2, norm1, norm2,
// dropout1, dropout2.
type TransformerEncoderLayer struct {
	Node
	NormFirst                   bool
	SelfAttn                    *MultiheadAttention
	Linear1, Linear2            *Linear
	Norm1, Norm2                *LayerNorm
	Dropout, Dropout1, Dropout2 *Dropout
	activation                  func(*bridge.Tensor) *bridge.Tensor
}

// NewTransformerEncoderLayer makes an encoder layer initialised as PyTorch does; without
// options it has PyTorch's defaults.
func NewTransformerEncoderLayer(dModel, nhead int64, opts ...TransformerEncoderLayerOptions) *TransformerEncoderLayer {
	o := DefaultTransformerEncoderLayerOptions()
	if len(opts) > 0 {
		o = opts[0]
	}
	l := &TransformerEncoderLayer{NormFirst: o.NormFirst}
	l.kind = "TransformerEncoderLayer"
	if o.DimFeedforward == 0 {
		o.DimFeedforward = 2048
	}
	if o.LayerNormEps == 0 {
		o.LayerNormEps = 1e-5
	}
	switch {
	case o.ActivationFunc != nil:
		l.activation = o.ActivationFunc
	case o.Activation == "" || o.Activation == "relu":
		l.activation = (*bridge.Tensor).Relu
	case o.Activation == "gelu":
		l.activation = (*bridge.Tensor).Gelu
	default:
		l.fail("activation should be relu or gelu, not %q", o.Activation)
	}
	if math.IsNaN(o.Dropout) || o.Dropout < 0 || o.Dropout > 1 {
		l.fail("dropout probability %v is not in [0, 1]", o.Dropout)
	}
	l.SelfAttn = NewMultiheadAttention(dModel, nhead, MultiheadAttentionOptions{Dropout: o.Dropout, BatchFirst: o.BatchFirst})
	l.Linear1 = NewLinear(dModel, o.DimFeedforward)
	l.Dropout = NewDropout(o.Dropout)
	l.Linear2 = NewLinear(o.DimFeedforward, dModel)
	l.Norm1 = NewLayerNorm(bridge.Shape{dModel}, LayerNormOptions{Eps: o.LayerNormEps})
	l.Norm2 = NewLayerNorm(bridge.Shape{dModel}, LayerNormOptions{Eps: o.LayerNormEps})
	l.Dropout1 = NewDropout(o.Dropout)
	l.Dropout2 = NewDropout(o.Dropout)
	l.Add("self_attn", l.SelfAttn)
	l.Add("linear1", l.Linear1)
	l.Add("dropout", l.Dropout)
	l.Add("linear2", l.Linear2)
	l.Add("norm1", l.Norm1)
	l.Add("norm2", l.Norm2)
	l.Add("dropout1", l.Dropout1)
	l.Add("dropout2", l.Dropout2)
	return l
}

// Forward runs the layer without masks.
func (l *TransformerEncoderLayer) Forward(src *bridge.Tensor) *bridge.Tensor {
	return l.ForwardMasked(src, nil, nil)
}

// ForwardMasked is PyTorch's forward(src, src_mask, src_key_padding_mask): src [L, N, E] ([N, L,
// E] batch first, [L, E] unbatched); mask [L, S] or [N·heads, L, S] and keyPaddingMask [N, S]
// as MultiheadAttention takes them (bool true = masked out, or float added); either may be nil.
func (l *TransformerEncoderLayer) ForwardMasked(src, mask, keyPaddingMask *bridge.Tensor) *bridge.Tensor {
	sa := func(x *bridge.Tensor) *bridge.Tensor {
		y, _ := l.SelfAttn.Attend(x, x, x, AttentionOptions{AttnMask: mask, KeyPaddingMask: keyPaddingMask})
		return l.Dropout1.Forward(y)
	}
	ff := func(x *bridge.Tensor) *bridge.Tensor {
		return l.Dropout2.Forward(l.Linear2.Forward(l.Dropout.Forward(l.activation(l.Linear1.Forward(x)))))
	}
	x := src
	if l.NormFirst {
		x = x.Add(sa(l.Norm1.Forward(x)))
		x = x.Add(ff(l.Norm2.Forward(x)))
	} else {
		x = l.Norm1.Forward(x.Add(sa(x)))
		x = l.Norm2.Forward(x.Add(ff(x)))
	}
	return l.Fire(src, x)
}

// TransformerEncoder is PyTorch's nn.TransformerEncoder: a stack of encoder layers named
// layers.0, layers.1, ... and an optional final norm named norm.
type TransformerEncoder struct {
	Node
	Layers []*TransformerEncoderLayer
	Norm   *LayerNorm // nil: none
}

// encoderLayers is the "layers" container (PyTorch's ModuleList): it names the layers; its
// Forward, which nothing calls, runs them unmasked.
type encoderLayers struct {
	Node
	layers []*TransformerEncoderLayer
}

func (c *encoderLayers) Forward(x *bridge.Tensor) *bridge.Tensor {
	in := x
	for _, l := range c.layers {
		x = l.Forward(x)
	}
	return c.Fire(in, x)
}

// NewTransformerEncoder stacks numLayers layers made by newLayer and, if norm is not nil, a
// final norm. PyTorch deep-copies one layer, so its layers start with equal weights; newLayer
// draws each afresh (load a state dict to start as a PyTorch model does).
func NewTransformerEncoder(numLayers int, newLayer func() *TransformerEncoderLayer, norm *LayerNorm) *TransformerEncoder {
	e := &TransformerEncoder{Norm: norm}
	e.kind = "TransformerEncoder"
	list := &encoderLayers{}
	list.kind = "ModuleList"
	for i := range numLayers {
		l := newLayer()
		if l == nil {
			e.fail("newLayer returned nil for layer %d", i)
		}
		e.Layers = append(e.Layers, l)
		list.layers = append(list.layers, l)
		list.Add(strconv.Itoa(i), l)
	}
	e.Add("layers", list)
	if norm != nil {
		e.Add("norm", norm)
	}
	return e
}

// Forward runs the stack without masks.
func (e *TransformerEncoder) Forward(src *bridge.Tensor) *bridge.Tensor {
	return e.ForwardMasked(src, nil, nil)
}

// ForwardMasked runs every layer with the same masks (see TransformerEncoderLayer.ForwardMasked),
// then the norm.
func (e *TransformerEncoder) ForwardMasked(src, mask, keyPaddingMask *bridge.Tensor) *bridge.Tensor {
	x := src
	for _, l := range e.Layers {
		x = l.ForwardMasked(x, mask, keyPaddingMask)
	}
	if e.Norm != nil {
		x = e.Norm.Forward(x)
	}
	return e.Fire(src, x)
}
