package nn

import (
	"fmt"
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// SDPAOptions tune ScaledDotProductAttention; the zero value is no mask, no dropout, not
// causal and the scale 1/√E.
type SDPAOptions struct {
	// AttnMask broadcasts to [..., L, S]. A bool mask is true where a query MAY attend (PyTorch
	// 2's F.scaled_dot_product_attention convention — the opposite of MultiheadAttention's
	// attn_mask); a float mask is added to the scores.
	AttnMask *bridge.Tensor
	DropoutP float64 // dropout on the attention weights; applied whenever > 0 (pass 0 in eval)
	IsCausal bool    // query i attends keys 0..i (top-left aligned); excludes AttnMask
	Scale    float64 // 0: 1/√E
}

// ScaledDotProductAttention is PyTorch 2's F.scaled_dot_product_attention: softmax(q·kᵀ·scale +
// mask)·v over query [..., L, E], key [..., S, E] and value [..., S, Ev], giving [..., L, Ev]. It
// is the math of PyTorch's reference implementation written with generated ATen ops (q and k
// each scaled by √scale, as PyTorch's math backend does), so it runs and differentiates on any
// device and libtorch. A query row whose keys are all masked out gives NaN, as the reference
// does.
//
// libtorch 1.13's aten::_scaled_dot_product_attention has the same mask convention and causal
// mask and agrees with this to float rounding, but has no scale argument and is not in libtorch
// 2 (the tests check the two agree).
func ScaledDotProductAttention(query, key, value *bridge.Tensor, opts ...SDPAOptions) *bridge.Tensor {
	o := firstOpt(opts)
	fail := func(format string, args ...any) {
		panic(&bridge.Error{Op: "nn.ScaledDotProductAttention", Msg: fmt.Sprintf(format, args...)})
	}
	if query.Dim() < 2 || key.Dim() < 2 || value.Dim() < 2 {
		fail("query %v, key %v and value %v must have at least 2 dims", query.Shape(), key.Shape(), value.Shape())
	}
	e := query.Size(-1)
	if key.Size(-1) != e {
		fail("query %v and key %v must have the same last dim", query.Shape(), key.Shape())
	}
	if key.Size(-2) != value.Size(-2) {
		fail("key %v and value %v must have the same sequence length (dim -2)", key.Shape(), value.Shape())
	}
	if o.IsCausal && o.AttnMask != nil {
		fail("give is_causal or an attn_mask, not both")
	}
	if o.DropoutP < 0 || o.DropoutP > 1 || math.IsNaN(o.DropoutP) {
		fail("dropout probability %v is not in [0, 1]", o.DropoutP)
	}
	scale := o.Scale
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(e))
	}
	var bias *bridge.Tensor
	l, s := query.Size(-2), key.Size(-2)
	switch {
	case o.IsCausal:
		bias = causalBias(l, s, query)
	case o.AttnMask != nil && o.AttnMask.DType() == bridge.Bool:
		bias = additiveMask(o.AttnMask.LogicalNot(), query.DType())
	case o.AttnMask != nil:
		bias = o.AttnMask
	}
	sq := math.Sqrt(scale)
	att := aten.Matmul(query.MulScalar(sq), aten.Transpose(key.MulScalar(sq), -2, -1))
	if bias != nil {
		att = att.Add(bias)
	}
	att = aten.Softmax(att, -1, nil)
	if o.DropoutP > 0 {
		att = aten.Dropout(att, o.DropoutP, true)
	}
	return aten.Matmul(att, value)
}

// additiveMask is 0 where mask is false and -inf where it is true, in dtype dt.
func additiveMask(mask *bridge.Tensor, dt bridge.DType) *bridge.Tensor {
	return aten.MaskedFillScalar(bridge.Zeros(mask.Shape(), dt, mask.Device()), mask, aten.FloatScalar(math.Inf(-1)))
}

// causalBias is the [l, s] additive causal mask: -inf above the diagonal, like x.
func causalBias(l, s int64, x *bridge.Tensor) *bridge.Tensor {
	ones := bridge.Ones(bridge.Shape{l, s}, bridge.Bool, x.Device())
	return additiveMask(aten.Triu(ones, 1), x.DType())
}

// SquareSubsequentMask is PyTorch's nn.Transformer.generate_square_subsequent_mask: an [n, n]
// float mask, -inf above the diagonal and 0 elsewhere, for MultiheadAttention's and
// TransformerEncoderLayer's attn masks (float32 unless opts give a dtype).
func SquareSubsequentMask(n int64, opts ...bridge.Option) *bridge.Tensor {
	ones := bridge.Ones(bridge.Shape{n, n}, bridge.Bool)
	m := aten.MaskedFillScalar(bridge.Zeros(bridge.Shape{n, n}), aten.Triu(ones, 1), aten.FloatScalar(math.Inf(-1)))
	if len(opts) > 0 {
		m = m.To(opts...)
	}
	return m
}

// MultiheadAttentionOptions tune NewMultiheadAttention; the zero value is PyTorch's defaults.
type MultiheadAttentionOptions struct {
	Dropout     float64 // on the attention weights, in training mode
	NoBias      bool    // bias=False: no in_proj_bias, no out_proj.bias
	AddBiasKV   bool    // add_bias_kv: learnt bias_k, bias_v appended to the keys and values
	AddZeroAttn bool    // add_zero_attn: a zero key and value appended
	KDim, VDim  int64   // key and value feature sizes; 0: embed_dim
	BatchFirst  bool    // inputs and output [N, L, E] instead of [L, N, E]
}

// MultiheadAttention is PyTorch's nn.MultiheadAttention with its parameter names:
// in_proj_weight [3E, E] (or q_proj_weight, k_proj_weight, v_proj_weight when kdim or vdim
// differ from embed_dim), in_proj_bias [3E], bias_k, bias_v [1, 1, E], out_proj.weight,
// out_proj.bias.
type MultiheadAttention struct {
	Node
	EmbedDim, NumHeads, HeadDim, KDim, VDim int64
	Dropout                                 float64
	BatchFirst, AddZeroAttn                 bool

	InProjWeight                          *bridge.Tensor // nil when kdim/vdim differ
	QProjWeight, KProjWeight, VProjWeight *bridge.Tensor // nil unless kdim/vdim differ
	InProjBias                            *bridge.Tensor // nil without bias
	BiasK, BiasV                          *bridge.Tensor // nil without add_bias_kv
	OutProj                               *Linear
}

// NewMultiheadAttention makes a MultiheadAttention initialised as PyTorch does: Xavier-uniform
// input projections, zero biases, out_proj.weight as a Linear's, bias_k and bias_v
// Xavier-normal.
func NewMultiheadAttention(embedDim, numHeads int64, opts ...MultiheadAttentionOptions) *MultiheadAttention {
	o := firstOpt(opts)
	m := &MultiheadAttention{EmbedDim: embedDim, NumHeads: numHeads, KDim: o.KDim, VDim: o.VDim,
		Dropout: o.Dropout, BatchFirst: o.BatchFirst, AddZeroAttn: o.AddZeroAttn}
	m.kind = "MultiheadAttention"
	if m.KDim == 0 {
		m.KDim = embedDim
	}
	if m.VDim == 0 {
		m.VDim = embedDim
	}
	switch {
	case embedDim <= 0 || numHeads <= 0 || m.KDim < 0 || m.VDim < 0:
		m.fail("embed_dim %d, num_heads %d, kdim %d and vdim %d must be positive", embedDim, numHeads, m.KDim, m.VDim)
	case embedDim%numHeads != 0:
		m.fail("embed_dim %d must be divisible by num_heads %d", embedDim, numHeads)
	case math.IsNaN(o.Dropout) || o.Dropout < 0 || o.Dropout > 1:
		m.fail("dropout probability %v is not in [0, 1]", o.Dropout)
	}
	m.HeadDim = embedDim / numHeads
	xavier := func(out, in int64) *bridge.Tensor {
		return uniformSeq([]int64{out, in}, math.Sqrt(6/float64(in+out)))
	}
	if m.sameDims() {
		m.InProjWeight = m.Param("in_proj_weight", xavier(3*embedDim, embedDim))
	} else {
		m.QProjWeight = m.Param("q_proj_weight", xavier(embedDim, embedDim))
		m.KProjWeight = m.Param("k_proj_weight", xavier(embedDim, m.KDim))
		m.VProjWeight = m.Param("v_proj_weight", xavier(embedDim, m.VDim))
	}
	if !o.NoBias {
		m.InProjBias = m.Param("in_proj_bias", bridge.Zeros(bridge.Shape{3 * embedDim}))
	}
	if o.AddBiasKV {
		// xavier_normal_ of [1, 1, E]: fan_in = fan_out = E
		std := 1 / math.Sqrt(float64(embedDim))
		m.BiasK = m.Param("bias_k", bridge.Randn(bridge.Shape{1, 1, embedDim}).MulScalar(std))
		m.BiasV = m.Param("bias_v", bridge.Randn(bridge.Shape{1, 1, embedDim}).MulScalar(std))
	}
	m.OutProj = NewLinear(embedDim, embedDim, LinearOptions{NoBias: o.NoBias})
	if m.OutProj.Bias != nil {
		bridge.NoGrad(func() { m.OutProj.Bias.ZeroInPlace() })
	}
	m.Add("out_proj", m.OutProj)
	return m
}

func (m *MultiheadAttention) sameDims() bool { return m.KDim == m.EmbedDim && m.VDim == m.EmbedDim }

// AttentionOptions are MultiheadAttention.Attend's optional arguments. Unlike PyTorch's
// forward, whose need_weights defaults to true, the zero value computes no weights.
type AttentionOptions struct {
	// KeyPaddingMask [N, S] ([S] unbatched): bool true where a key is padding and ignored, or
	// float added to the scores.
	KeyPaddingMask *bridge.Tensor
	// AttnMask [L, S] or [N·heads, L, S]: bool true where a query may NOT attend a key
	// (PyTorch's MultiheadAttention convention), or float added to the scores. With
	// KeyPaddingMask both apply (as float masks they add, as in PyTorch 2).
	AttnMask *bridge.Tensor
	// IsCausal masks with the causal mask when AttnMask is nil (PyTorch 2's is_causal); with an
	// AttnMask it is a hint and AttnMask is used.
	IsCausal bool
	// NeedWeights returns the attention weights (after dropout, as PyTorch's), averaged over
	// heads [N, L, S] unless PerHeadWeights ([N, heads, L, S]; average_attn_weights=False).
	NeedWeights, PerHeadWeights bool
}

// Forward is self-attention, Attend(x, x, x) without masks.
func (m *MultiheadAttention) Forward(x *bridge.Tensor) *bridge.Tensor {
	out, _ := m.Attend(x, x, x, AttentionOptions{})
	return out
}

// Attend is PyTorch's MultiheadAttention.forward: query [L, N, E] ([N, L, E] batch first, [L, E]
// unbatched), key [S, N, kdim], value [S, N, vdim] give the output shaped like query and, with
// NeedWeights, the attention weights (else nil). Forward hooks see query and the output.
func (m *MultiheadAttention) Attend(query, key, value *bridge.Tensor, o AttentionOptions) (out, weights *bridge.Tensor) {
	q0 := query
	selfAttn := query == key && key == value
	batched := query.Dim() == 3
	switch {
	case query.Dim() != 2 && query.Dim() != 3:
		m.fail("query of shape %v: expected 3-D (batched) or 2-D (unbatched)", query.Shape())
	case key.Dim() != query.Dim() || value.Dim() != query.Dim():
		m.fail("query %v, key %v and value %v must all be 3-D or all 2-D", query.Shape(), key.Shape(), value.Shape())
	}
	kpm := o.KeyPaddingMask
	if kpm != nil {
		if want := query.Dim() - 1; kpm.Dim() != want {
			m.fail("key_padding_mask of shape %v: expected %d-D", kpm.Shape(), want)
		}
		if dt := kpm.DType(); dt != bridge.Bool && !dt.IsFloat() {
			m.fail("key_padding_mask must be bool or floating point, got %v", dt)
		}
	}
	if o.AttnMask != nil {
		if dt := o.AttnMask.DType(); dt != bridge.Bool && !dt.IsFloat() {
			m.fail("attn_mask must be bool or floating point, got %v", dt)
		}
	}
	switch {
	case !batched:
		query, key, value = query.Unsqueeze(1), key.Unsqueeze(1), value.Unsqueeze(1)
		if kpm != nil {
			kpm = kpm.Unsqueeze(0)
		}
	case m.BatchFirst:
		query, key, value = query.Transpose(0, 1), key.Transpose(0, 1), value.Transpose(0, 1)
	}
	tgt, bsz, e := query.Size(0), query.Size(1), query.Size(2)
	src := key.Size(0)
	if e != m.EmbedDim {
		m.fail("query of shape %v: expected embed_dim %d features", q0.Shape(), m.EmbedDim)
	}
	if key.Size(2) != m.KDim || value.Size(2) != m.VDim {
		m.fail("key %v and value %v: expected %d and %d features", key.Shape(), value.Shape(), m.KDim, m.VDim)
	}
	if key.Size(0) != value.Size(0) || key.Size(1) != value.Size(1) || key.Size(1) != bsz {
		m.fail("key %v and value %v must match query %v in batch and each other in length", key.Shape(), value.Shape(), q0.Shape())
	}
	h, hd := m.NumHeads, m.HeadDim

	// in-projection
	var q, k, v *bridge.Tensor
	var bq, bk, bv *bridge.Tensor
	if m.InProjBias != nil {
		bq, bk, bv = m.InProjBias.Narrow(0, 0, e), m.InProjBias.Narrow(0, e, e), m.InProjBias.Narrow(0, 2*e, e)
	}
	if m.InProjWeight != nil {
		if selfAttn { // self-attention: one matmul, as PyTorch does
			qkv := aten.Linear(query, m.InProjWeight, m.InProjBias)
			q, k, v = qkv.Narrow(2, 0, e), qkv.Narrow(2, e, e), qkv.Narrow(2, 2*e, e)
		} else {
			w := m.InProjWeight
			q = aten.Linear(query, w.Narrow(0, 0, e), bq)
			k = aten.Linear(key, w.Narrow(0, e, e), bk)
			v = aten.Linear(value, w.Narrow(0, 2*e, e), bv)
		}
	} else {
		q = aten.Linear(query, m.QProjWeight, bq)
		k = aten.Linear(key, m.KProjWeight, bk)
		v = aten.Linear(value, m.VProjWeight, bv)
	}

	// masks, as float [1 or N·heads, L, S] and [N, S]
	mask := o.AttnMask
	if mask == nil && o.IsCausal {
		mask = causalBias(tgt, src, q)
	}
	if mask != nil {
		if mask.DType() == bridge.Bool {
			mask = additiveMask(mask, q.DType())
		}
		switch {
		case mask.Dim() == 2 && mask.Size(0) == tgt && mask.Size(1) == src:
			mask = mask.Unsqueeze(0)
		case mask.Dim() == 3 && mask.Size(0) == bsz*h && mask.Size(1) == tgt && mask.Size(2) == src:
		default:
			m.fail("attn_mask of shape %v: expected [%d, %d] or [%d, %d, %d]", o.AttnMask.Shape(), tgt, src, bsz*h, tgt, src)
		}
	}
	if kpm != nil {
		if kpm.Size(0) != bsz || kpm.Size(1) != src {
			m.fail("key_padding_mask of shape %v: expected [%d, %d]", o.KeyPaddingMask.Shape(), bsz, src)
		}
		if kpm.DType() == bridge.Bool {
			kpm = additiveMask(kpm, q.DType())
		}
	}
	pad := func(t *bridge.Tensor) *bridge.Tensor { // one more key, not masked
		if t == nil {
			return nil
		}
		return aten.ConstantPadNd(t, []int64{0, 1}, aten.IntScalar(0))
	}
	if m.BiasK != nil {
		k = aten.Cat([]*bridge.Tensor{k, m.BiasK.Expand(1, bsz, e)}, 0)
		v = aten.Cat([]*bridge.Tensor{v, m.BiasV.Expand(1, bsz, e)}, 0)
		mask, kpm = pad(mask), pad(kpm)
	}

	// [len, N, E] → [N·heads, len, hd]
	heads := func(t *bridge.Tensor) *bridge.Tensor {
		return t.Contiguous().View(t.Size(0), bsz*h, hd).Transpose(0, 1)
	}
	q, k, v = heads(q), heads(k), heads(v)
	if m.AddZeroAttn {
		z := bridge.Zeros(bridge.Shape{bsz * h, 1, hd}, k.DType(), k.Device())
		k = aten.Cat([]*bridge.Tensor{k, z}, 1)
		v = aten.Cat([]*bridge.Tensor{v, z}, 1)
		mask, kpm = pad(mask), pad(kpm)
	}
	src = k.Size(1)
	if kpm != nil {
		kpm = kpm.View(bsz, 1, 1, src).Expand(-1, h, -1, -1).Reshape(bsz*h, 1, src)
		if mask == nil {
			mask = kpm
		} else {
			mask = mask.Add(kpm)
		}
	}

	// attention
	qs := q.DivScalar(math.Sqrt(float64(hd)))
	var att *bridge.Tensor
	if mask != nil {
		att = aten.Baddbmm(mask, qs, k.Transpose(1, 2), aten.IntScalar(1), aten.IntScalar(1))
	} else {
		att = aten.Bmm(qs, k.Transpose(1, 2))
	}
	att = aten.Softmax(att, -1, nil)
	if m.Dropout > 0 && m.Training() {
		att = aten.Dropout(att, m.Dropout, true)
	}
	y := aten.Bmm(att, v) // [N·heads, L, hd]
	y = y.Transpose(0, 1).Contiguous().View(tgt*bsz, e)
	y = m.OutProj.Forward(y).View(tgt, bsz, e)

	if o.NeedWeights {
		weights = att.View(bsz, h, tgt, src)
		if !o.PerHeadWeights {
			weights = weights.SumDims([]int64{1}, false).DivScalar(float64(h))
		}
		if !batched {
			weights = weights.SqueezeDim(0)
		}
	}
	switch {
	case !batched:
		y = y.SqueezeDim(1)
	case m.BatchFirst:
		y = y.Transpose(0, 1)
	}
	return m.Fire(q0, y), weights
}
