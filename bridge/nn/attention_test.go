package nn_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// boolMask is a random bool mask, true with probability p, never true in the first column (so
// that no query row is masked out entirely).
func boolMask(p float64, shape ...int64) *bridge.Tensor {
	m := bridge.Rand(shape).LtScalar(p)
	first := m.Narrow(int64(len(shape)-1), 0, 1)
	bridge.NoGrad(func() { first.CopyFrom(bridge.Zeros(first.Shape(), bridge.Bool)) })
	return m
}

// mhaSpec is one MultiheadAttention case of the cross-check.
type mhaSpec struct {
	name     string
	e, heads int64
	o        nn.MultiheadAttentionOptions
	l, s, n  int64  // target and source lengths, batch (0: unbatched)
	self     bool   // query = key = value (the same tensor)
	kpm      string // key_padding_mask: "", "bool" or "float"
	mask     string // attn_mask: "", "bool2", "bool3", "float2", "float3" ([L, S] or [N·heads, L, S]) or "causal"
	needW    bool
	perHead  bool
	train    bool
}

func (s mhaSpec) seqCase() seqCase {
	kdim, vdim := s.o.KDim, s.o.VDim
	if kdim == 0 {
		kdim = s.e
	}
	if vdim == 0 {
		vdim = s.e
	}
	seqShape := func(l, f int64) []int64 {
		switch {
		case s.n == 0:
			return []int64{l, f}
		case s.o.BatchFirst:
			return []int64{s.n, l, f}
		}
		return []int64{l, s.n, f}
	}
	in := seqIn{"q": seqRandn(seqShape(s.l, s.e)...)}
	grad := []string{"q"}
	if !s.self {
		in["k"], in["v"] = seqRandn(seqShape(s.s, kdim)...), seqRandn(seqShape(s.s, vdim)...)
		grad = append(grad, "k", "v")
	}
	src := s.s
	if s.self {
		src = s.l
	}
	kpmShape := []int64{s.n, src}
	if s.n == 0 {
		kpmShape = []int64{src}
	}
	switch s.kpm {
	case "bool":
		in["kpm"] = boolMask(0.4, kpmShape...)
	case "float":
		in["kpm"] = seqRandn(kpmShape...)
	}
	b := max(s.n, 1)
	switch s.mask {
	case "bool2":
		in["mask"] = boolMask(0.3, s.l, src)
	case "bool3":
		in["mask"] = boolMask(0.3, b*s.heads, s.l, src)
	case "float2":
		in["mask"] = seqRandn(s.l, src)
	case "float3":
		in["mask"] = seqRandn(b*s.heads, s.l, src)
	}
	py := fmt.Sprintf("nn.MultiheadAttention(%d, %d, dropout=%v, bias=%s, add_bias_kv=%s, add_zero_attn=%s, kdim=%d, vdim=%d, batch_first=%s)",
		s.e, s.heads, s.o.Dropout, pyBool(!s.o.NoBias), pyBool(s.o.AddBiasKV), pyBool(s.o.AddZeroAttn), kdim, vdim, pyBool(s.o.BatchFirst))
	pyMask := `inp.get("mask")`
	if s.mask == "causal" {
		pyMask = fmt.Sprintf("torch.ones(%d, %d, dtype=torch.bool).triu(1)", s.l, src)
	}
	pyRun := fmt.Sprintf(`q = inp["q"]
k, v = (q, q) if "k" not in inp else (inp["k"], inp["v"])
o, w = m(q, k, v, key_padding_mask=inp.get("kpm"), need_weights=%s, attn_mask=%s, average_attn_weights=%s)
out = [o, w]`, pyBool(s.needW), pyMask, pyBool(!s.perHead))
	return seqCase{
		name: s.name, build: func() nn.Module { return nn.NewMultiheadAttention(s.e, s.heads, s.o) }, py: py, train: s.train, in: in, grad: grad,
		run: func(m nn.Module, v seqIn) []*bridge.Tensor {
			q, k, val := v["q"], v["k"], v["v"]
			if k == nil {
				k, val = q, q
			}
			out, w := m.(*nn.MultiheadAttention).Attend(q, k, val, nn.AttentionOptions{KeyPaddingMask: v["kpm"], AttnMask: v["mask"],
				IsCausal: s.mask == "causal", NeedWeights: s.needW, PerHeadWeights: s.perHead})
			return []*bridge.Tensor{out, w}
		},
		pyRun: pyRun,
	}
}

// sdpaSpec is one ScaledDotProductAttention case: PyTorch's side is PyTorch 2's reference
// definition (sdpa_ref), itself checked against libtorch 1.13's aten::_scaled_dot_product_attention
// where that has the arguments (no scale).
type sdpaSpec struct {
	name        string
	batch       []int64 // leading dims
	l, s, e, ev int64
	mask        string // "", "bool" [L, S], "bool4" [B..., L, S], "float" [1, L, S]
	causal      bool
	scale       float64
}

func (s sdpaSpec) seqCase() seqCase {
	shape := func(a, b int64) []int64 { return append(append([]int64{}, s.batch...), a, b) }
	in := seqIn{"q": seqRandn(shape(s.l, s.e)...), "k": seqRandn(shape(s.s, s.e)...), "v": seqRandn(shape(s.s, s.ev)...)}
	switch s.mask {
	case "bool": // true = attend: the first column always
		in["mask"] = boolMask(0.4, s.l, s.s).LogicalNot()
	case "bool4":
		in["mask"] = boolMask(0.4, shape(s.l, s.s)...).LogicalNot()
	case "float":
		in["mask"] = seqRandn(1, s.l, s.s)
	}
	scale := "None"
	if s.scale != 0 {
		scale = fmt.Sprint(s.scale)
	}
	pyRun := fmt.Sprintf(`q, k, v = inp["q"], inp["k"], inp["v"]
o = sdpa_ref(q, k, v, attn_mask=inp.get("mask"), is_causal=%s, scale=%s)
if %s is None:
    o13, _ = F._scaled_dot_product_attention(q, k, v, inp.get("mask"), 0.0, False, %s)
    assert torch.allclose(o, o13, atol=1e-6, rtol=1e-5), (o - o13).abs().max()
out = [o]`, pyBool(s.causal), scale, scale, pyBool(s.causal))
	return seqCase{name: s.name, in: in, grad: []string{"q", "k", "v"}, pyRun: pyRun,
		run: func(_ nn.Module, v seqIn) []*bridge.Tensor {
			return []*bridge.Tensor{nn.ScaledDotProductAttention(v["q"], v["k"], v["v"],
				nn.SDPAOptions{AttnMask: v["mask"], IsCausal: s.causal, Scale: s.scale})}
		}}
}

func attentionCases() []seqCase {
	mhas := []mhaSpec{
		{name: "mha_self", e: 8, heads: 2, l: 5, n: 3, self: true, needW: true},
		{name: "mha_self_batch_first_per_head", e: 8, heads: 4, l: 5, n: 2, self: true, needW: true, perHead: true,
			o: nn.MultiheadAttentionOptions{BatchFirst: true}},
		{name: "mha_cross_masks_bool", e: 8, heads: 2, l: 4, s: 6, n: 3, kpm: "bool", mask: "bool2", needW: true},
		{name: "mha_cross_mask_bool3_no_weights", e: 8, heads: 2, l: 4, s: 6, n: 3, mask: "bool3"},
		{name: "mha_float_mask_bool_kpm", e: 8, heads: 2, l: 4, s: 6, n: 3, kpm: "bool", mask: "float3", needW: true, perHead: true},
		{name: "mha_float_mask2", e: 6, heads: 3, l: 5, s: 5, n: 2, mask: "float2", needW: true},
		{name: "mha_float_kpm", e: 8, heads: 2, l: 4, s: 6, n: 3, kpm: "float", needW: true},
		{name: "mha_kdim_vdim_batch_first", e: 8, heads: 2, l: 4, s: 7, n: 3, kpm: "bool", needW: true,
			o: nn.MultiheadAttentionOptions{KDim: 5, VDim: 3, BatchFirst: true}},
		{name: "mha_bias_kv_zero_attn", e: 8, heads: 2, l: 4, s: 6, n: 2, kpm: "bool", mask: "bool2", needW: true,
			o: nn.MultiheadAttentionOptions{AddBiasKV: true, AddZeroAttn: true}},
		{name: "mha_bias_kv_zero_attn_float_mask3", e: 8, heads: 2, l: 4, s: 6, n: 2, mask: "float3", needW: true, perHead: true,
			o: nn.MultiheadAttentionOptions{AddBiasKV: true, AddZeroAttn: true, KDim: 4, VDim: 4}},
		{name: "mha_nobias_unbatched", e: 8, heads: 2, l: 4, s: 6, kpm: "bool", mask: "bool2", needW: true,
			o: nn.MultiheadAttentionOptions{NoBias: true}},
		{name: "mha_unbatched_self_mask3_per_head", e: 8, heads: 4, l: 5, self: true, mask: "bool3", needW: true, perHead: true},
		{name: "mha_causal_self", e: 8, heads: 2, l: 6, n: 2, self: true, mask: "causal", kpm: "bool", needW: true},
		{name: "mha_train_dropout0", e: 8, heads: 2, l: 5, s: 3, n: 3, mask: "bool2", needW: true, train: true},
	}
	sdpas := []sdpaSpec{
		{name: "sdpa", batch: []int64{2, 3}, l: 5, s: 7, e: 8, ev: 6},
		{name: "sdpa_bool_mask", batch: []int64{2, 3}, l: 5, s: 7, e: 8, ev: 6, mask: "bool"},
		{name: "sdpa_bool_mask4", batch: []int64{2, 3}, l: 5, s: 7, e: 8, ev: 6, mask: "bool4"},
		{name: "sdpa_float_mask", batch: []int64{4}, l: 5, s: 7, e: 8, ev: 6, mask: "float"},
		{name: "sdpa_causal_square", batch: []int64{2, 2}, l: 6, s: 6, e: 4, ev: 4, causal: true},
		{name: "sdpa_causal_wide", batch: []int64{3}, l: 4, s: 6, e: 4, ev: 5, causal: true},
		{name: "sdpa_scale", batch: []int64{2}, l: 5, s: 7, e: 8, ev: 6, mask: "float", scale: 0.3},
		{name: "sdpa_3d_causal_scale", batch: []int64{2}, l: 5, s: 5, e: 8, ev: 8, causal: true, scale: 0.5},
	}
	var out []seqCase
	for _, s := range mhas {
		out = append(out, s.seqCase())
	}
	for _, s := range sdpas {
		out = append(out, s.seqCase())
	}
	return out
}

// ScaledDotProductAttention agrees with libtorch 1.13's aten::_scaled_dot_product_attention
// (the mask conventions, the causal mask), also through the Go binding of that op.
func TestSDPAMatchesLibtorchOp(t *testing.T) {
	bridge.ManualSeed(11)
	q, k, v := seqRandn(2, 3, 5, 8), seqRandn(2, 3, 7, 8), seqRandn(2, 3, 7, 6)
	bm := boolMask(0.4, 5, 7).LogicalNot()
	fm := seqRandn(5, 7)
	for _, c := range []struct {
		name   string
		mask   *bridge.Tensor
		causal bool
		q      *bridge.Tensor
	}{{"none", nil, false, q}, {"bool", bm, false, q}, {"float", fm, false, q}, {"causal", nil, true, q}, {"causal_wide", nil, true, q.Narrow(2, 0, 4)}} {
		got := nn.ScaledDotProductAttention(c.q, k, v, nn.SDPAOptions{AttnMask: c.mask, IsCausal: c.causal})
		want, _ := aten.InternalScaledDotProductAttention(c.q, k, v, c.mask, 0, false, c.causal)
		bad, d := closeEnough(got.Float64s(), want.Float64s(), 1e-6, 1e-5)
		require.Less(t, bad, 0, "%s: max diff %g", c.name, d)
	}
}

// Attention dropout in training mode: about p of the weights are zeroed and the rest scaled by
// 1/(1-p), so rows still sum to 1 on average; evaluation mode has none.
func TestAttentionDropout(t *testing.T) {
	bridge.ManualSeed(12)
	const p = 0.25
	m := nn.NewMultiheadAttention(16, 4, nn.MultiheadAttentionOptions{Dropout: p, BatchFirst: true})
	x := seqRandn(8, 32, 16)
	_, w := m.Attend(x, x, x, nn.AttentionOptions{NeedWeights: true, PerHeadWeights: true})
	require.Equal(t, bridge.Shape{8, 4, 32, 32}, w.Shape())
	zeros := w.EqScalar(0).To(bridge.Float32).Mean().Item()
	require.InDelta(t, p, zeros, 0.01)
	require.InDelta(t, 1, w.SumDims([]int64{-1}, false).Mean().Item(), 0.01)
	bridge.ManualSeed(3)
	o1 := m.Forward(x)
	bridge.ManualSeed(3)
	o2 := m.Forward(x)
	require.Equal(t, o1.Float32s(), o2.Float32s(), "the same seed gives the same dropout")
	nn.Eval(m)
	_, w = m.Attend(x, x, x, nn.AttentionOptions{NeedWeights: true})
	require.Equal(t, bridge.Shape{8, 32, 32}, w.Shape())
	require.InDeltaSlice(t, bridge.Ones(bridge.Shape{8, 32}).Float64s(), w.SumDims([]int64{-1}, false).Float64s(), 1e-5)
	require.Equal(t, 0.0, w.EqScalar(0).To(bridge.Float32).Sum().Item(), "no dropout in eval mode")

	// the function: with value the identity, the output is the (dropped) weights
	q, k := seqRandn(4, 64, 8), seqRandn(4, 64, 8)
	eye := bridge.Eye(64, 64).Unsqueeze(0).Expand(4, 64, 64)
	o := nn.ScaledDotProductAttention(q, k, eye, nn.SDPAOptions{DropoutP: p})
	require.InDelta(t, p, o.EqScalar(0).To(bridge.Float32).Mean().Item(), 0.01)
	require.InDelta(t, 1, o.SumDims([]int64{-1}, false).Mean().Item(), 0.02)
	noDrop := nn.ScaledDotProductAttention(q, k, eye)
	require.InDeltaSlice(t, bridge.Ones(bridge.Shape{4, 64}).Float64s(), noDrop.SumDims([]int64{-1}, false).Float64s(), 1e-5)
}

func TestMultiheadAttentionNamesInitAndHooks(t *testing.T) {
	bridge.ManualSeed(2)
	m := nn.NewMultiheadAttention(64, 4)
	require.Equal(t, []string{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}, seqNames(nn.StateDict(m)))
	bound := math.Sqrt(6.0 / (64 + 3*64)) // xavier_uniform_ of [3E, E]
	require.LessOrEqual(t, m.InProjWeight.Abs().Max().Item(), bound)
	require.InDelta(t, bound*bound/3, m.InProjWeight.Var(false).Item(), bound*bound/3*0.05)
	require.Equal(t, 0.0, m.InProjBias.Abs().Sum().Item())
	require.Equal(t, 0.0, m.OutProj.Bias.Abs().Sum().Item())
	require.LessOrEqual(t, m.OutProj.Weight.Abs().Max().Item(), 1/8.0) // a Linear's: 1/√64
	sep := nn.NewMultiheadAttention(8, 2, nn.MultiheadAttentionOptions{KDim: 3, VDim: 5, AddBiasKV: true, NoBias: true})
	var got []string
	for _, p := range nn.StateDict(sep) {
		got = append(got, fmt.Sprintf("%s%v", p.Name, p.Tensor.Shape()))
	}
	require.Equal(t, []string{"q_proj_weight[8, 8]", "k_proj_weight[8, 3]", "v_proj_weight[8, 5]", "bias_k[1, 1, 8]", "bias_v[1, 1, 8]", "out_proj.weight[8, 8]"}, got)
	require.Nil(t, sep.InProjWeight)
	require.Equal(t, "MultiheadAttention", nn.Kind(sep))

	root := &seqHolder{}
	root.Add("attn", m)
	var seen []string
	h, err := nn.RegisterForwardHook(root, "attn.**", func(name string, mod nn.Module, in, out *bridge.Tensor) {
		seen = append(seen, fmt.Sprintf("%s:%s%v->%v", name, nn.Kind(mod), in.Shape(), out.Shape()))
	})
	require.NoError(t, err)
	defer h.Remove()
	q, kv := seqRandn(3, 2, 64), seqRandn(5, 2, 64)
	m.Attend(q, kv, kv, nn.AttentionOptions{})
	require.Equal(t, []string{"attn.out_proj:Linear[6, 64]->[6, 64]", "attn:MultiheadAttention[3, 2, 64]->[3, 2, 64]"}, seen)
}

func TestAttentionBadInputs(t *testing.T) {
	m := nn.NewMultiheadAttention(8, 2)
	x := seqRandn(4, 2, 8)
	cases := []struct {
		f    func()
		want string
	}{
		{func() { nn.NewMultiheadAttention(8, 3) }, "nn.MultiheadAttention: embed_dim 8 must be divisible by num_heads 3"},
		{func() { m.Forward(seqRandn(4, 2, 6)) }, "expected embed_dim 8 features"},
		{func() { m.Attend(x, seqRandn(4, 8), x, nn.AttentionOptions{}) }, "must all be 3-D or all 2-D"},
		{func() { m.Attend(x, x, x, nn.AttentionOptions{AttnMask: bridge.Zeros(bridge.Shape{3, 4})}) }, "attn_mask of shape [3, 4]: expected [4, 4] or [4, 4, 4]"},
		{func() {
			m.Attend(x, x, x, nn.AttentionOptions{KeyPaddingMask: bridge.Zeros(bridge.Shape{2, 4}, bridge.Int64)})
		}, "key_padding_mask must be bool or floating point"},
		{func() {
			m.Attend(x, x, x, nn.AttentionOptions{KeyPaddingMask: bridge.Zeros(bridge.Shape{2, 5}, bridge.Bool)})
		}, "key_padding_mask of shape [2, 5]: expected [2, 4]"},
		{func() {
			nn.ScaledDotProductAttention(x, x, x, nn.SDPAOptions{IsCausal: true, AttnMask: bridge.Zeros(bridge.Shape{2, 2})})
		}, "give is_causal or an attn_mask, not both"},
		{func() { nn.ScaledDotProductAttention(x, seqRandn(4, 2, 7), x) }, "nn.ScaledDotProductAttention: query [4, 2, 8] and key [4, 2, 7] must have the same last dim"},
	}
	for _, c := range cases {
		err := bridge.Try(c.f)
		require.Error(t, err, c.want)
		require.True(t, strings.Contains(err.Error(), c.want), "%q does not contain %q", err.Error(), c.want)
	}
}

func TestSquareSubsequentMask(t *testing.T) {
	m := nn.SquareSubsequentMask(3)
	inf := math.Inf(-1)
	require.Equal(t, []float64{0, inf, inf, 0, 0, inf, 0, 0, 0}, m.Float64s())
	require.Equal(t, bridge.Float64, nn.SquareSubsequentMask(2, bridge.Float64).DType())
}
