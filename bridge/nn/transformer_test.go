package nn_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// encSpec is one TransformerEncoderLayer (or, with layers > 0, TransformerEncoder) case.
type encSpec struct {
	name      string
	d, heads  int64
	o         nn.TransformerEncoderLayerOptions
	l, n      int64  // length, batch (0: unbatched)
	mask, kpm string // "", "bool", "float" (mask "causal": SquareSubsequentMask)
	layers    int    // > 0: a TransformerEncoder of that many layers with a final norm
	train     bool
}

func (s encSpec) seqCase() seqCase {
	o := s.o
	act := o.Activation
	if act == "" {
		act = "relu"
	}
	eps := o.LayerNormEps
	if eps == 0 {
		eps = 1e-5
	}
	py := fmt.Sprintf("nn.TransformerEncoderLayer(%d, %d, dim_feedforward=%d, dropout=%v, activation=%q, layer_norm_eps=%v, batch_first=%s, norm_first=%s)",
		s.d, s.heads, o.DimFeedforward, o.Dropout, act, eps, pyBool(o.BatchFirst), pyBool(o.NormFirst))
	build := func() nn.Module { return nn.NewTransformerEncoderLayer(s.d, s.heads, o) }
	if s.layers > 0 {
		py = fmt.Sprintf("nn.TransformerEncoder(%s, %d, norm=nn.LayerNorm(%d), enable_nested_tensor=False)", py, s.layers, s.d)
		build = func() nn.Module {
			return nn.NewTransformerEncoder(s.layers, func() *nn.TransformerEncoderLayer { return nn.NewTransformerEncoderLayer(s.d, s.heads, o) },
				nn.NewLayerNorm(bridge.Shape{s.d}))
		}
	}
	var x *bridge.Tensor
	switch {
	case s.n == 0:
		x = seqRandn(s.l, s.d)
	case o.BatchFirst:
		x = seqRandn(s.n, s.l, s.d)
	default:
		x = seqRandn(s.l, s.n, s.d)
	}
	in := seqIn{"x": x}
	switch s.mask {
	case "bool":
		in["mask"] = boolMask(0.3, s.l, s.l)
	case "float":
		in["mask"] = seqRandn(s.l, s.l)
	case "causal":
		in["mask"] = nn.SquareSubsequentMask(s.l)
	}
	switch s.kpm {
	case "bool":
		in["kpm"] = boolMask(0.3, max(s.n, 1), s.l)
	case "float":
		in["kpm"] = seqRandn(max(s.n, 1), s.l)
	}
	if s.n == 0 && in["kpm"] != nil {
		in["kpm"] = in["kpm"].SqueezeDim(0)
	}
	kw := "src_mask"
	if s.layers > 0 {
		kw = "mask"
	}
	return seqCase{name: s.name, build: build, py: py, train: s.train, in: in, grad: []string{"x"},
		run: func(m nn.Module, v seqIn) []*bridge.Tensor {
			if e, ok := m.(*nn.TransformerEncoder); ok {
				return []*bridge.Tensor{e.ForwardMasked(v["x"], v["mask"], v["kpm"])}
			}
			return []*bridge.Tensor{m.(*nn.TransformerEncoderLayer).ForwardMasked(v["x"], v["mask"], v["kpm"])}
		},
		pyRun: fmt.Sprintf(`out = [m(inp["x"], %s=inp.get("mask"), src_key_padding_mask=inp.get("kpm"))]`, kw)}
}

func transformerCases() []seqCase {
	specs := []encSpec{
		{name: "enc_post_relu", d: 8, heads: 2, o: nn.TransformerEncoderLayerOptions{DimFeedforward: 16}, l: 5, n: 3},
		{name: "enc_pre_gelu_batch_first_masks", d: 8, heads: 2, l: 5, n: 3, mask: "bool", kpm: "bool",
			o: nn.TransformerEncoderLayerOptions{DimFeedforward: 12, Activation: "gelu", LayerNormEps: 1e-6, BatchFirst: true, NormFirst: true}},
		{name: "enc_post_float_mask_kpm", d: 12, heads: 3, l: 6, n: 2, mask: "float", kpm: "bool",
			o: nn.TransformerEncoderLayerOptions{DimFeedforward: 20, Activation: "gelu"}},
		{name: "enc_pre_causal_unbatched", d: 8, heads: 4, l: 5, mask: "causal", kpm: "bool",
			o: nn.TransformerEncoderLayerOptions{DimFeedforward: 16, NormFirst: true}},
		{name: "enc_float_kpm", d: 8, heads: 2, l: 5, n: 2, kpm: "float", o: nn.TransformerEncoderLayerOptions{DimFeedforward: 16, BatchFirst: true}},
		{name: "enc_train_dropout0", d: 8, heads: 2, l: 5, n: 3, mask: "bool", train: true,
			o: nn.TransformerEncoderLayerOptions{DimFeedforward: 16, NormFirst: true}},
		{name: "encoder_2layers_norm", d: 8, heads: 2, l: 5, n: 3, mask: "causal", kpm: "bool", layers: 2,
			o: nn.TransformerEncoderLayerOptions{DimFeedforward: 16, BatchFirst: true, Activation: "gelu"}},
	}
	var out []seqCase
	for _, s := range specs {
		out = append(out, s.seqCase())
	}
	return out
}

func TestTransformerEncoderLayerNamesAndDefaults(t *testing.T) {
	l := nn.NewTransformerEncoderLayer(16, 4)
	var got []string
	for _, p := range nn.StateDict(l) {
		got = append(got, fmt.Sprintf("%s%v", p.Name, p.Tensor.Shape()))
	}
	require.Equal(t, []string{
		"self_attn.in_proj_weight[48, 16]", "self_attn.in_proj_bias[48]", "self_attn.out_proj.weight[16, 16]", "self_attn.out_proj.bias[16]",
		"linear1.weight[2048, 16]", "linear1.bias[2048]", "linear2.weight[16, 2048]", "linear2.bias[16]",
		"norm1.weight[16]", "norm1.bias[16]", "norm2.weight[16]", "norm2.bias[16]",
	}, got)
	var mods []string
	for _, m := range nn.NamedModules(l) {
		mods = append(mods, m.Name+":"+nn.Kind(m.Module))
	}
	require.Equal(t, []string{":TransformerEncoderLayer", "self_attn:MultiheadAttention", "self_attn.out_proj:Linear", "linear1:Linear",
		"dropout:Dropout", "linear2:Linear", "norm1:LayerNorm", "norm2:LayerNorm", "dropout1:Dropout", "dropout2:Dropout"}, mods)
	require.Equal(t, 0.1, l.Dropout.P)
	require.Equal(t, 0.1, l.SelfAttn.Dropout)
	require.Equal(t, 1e-5, l.Norm1.Eps)

	e := nn.NewTransformerEncoder(2, func() *nn.TransformerEncoderLayer { return nn.NewTransformerEncoderLayer(8, 2) }, nil)
	names := seqNames(nn.StateDict(e))
	require.Equal(t, "layers.0.self_attn.in_proj_weight", names[0])
	require.Equal(t, "layers.1.norm2.bias", names[len(names)-1])
}

// Training mode with dropout: the output changes from forward to forward, is reproducible under
// a seed, and keeps its shape; with dropout 0 training mode equals evaluation mode.
func TestTransformerEncoderLayerTrainMode(t *testing.T) {
	bridge.ManualSeed(4)
	o := nn.DefaultTransformerEncoderLayerOptions()
	o.DimFeedforward = 32
	o.Dropout = 0.3
	l := nn.NewTransformerEncoderLayer(16, 4, o)
	x := seqRandn(6, 3, 16)
	bridge.ManualSeed(8)
	a := l.Forward(x)
	bridge.ManualSeed(8)
	b := l.Forward(x)
	c := l.Forward(x)
	require.Equal(t, bridge.Shape{6, 3, 16}, a.Shape())
	require.Equal(t, a.Float32s(), b.Float32s())
	require.NotEqual(t, a.Float32s(), c.Float32s())
	// post-norm: every position of the output is layer-normalised (mean 0, var 1 over features)
	require.InDelta(t, 0, a.MeanDims([]int64{-1}, false).Abs().Max().Item(), 1e-5)
	nn.Eval(l)
	e1, e2 := l.Forward(x), l.Forward(x)
	require.Equal(t, e1.Float32s(), e2.Float32s())
	require.NotEqual(t, e1.Float32s(), a.Float32s())

	o.Dropout = 0
	z := nn.NewTransformerEncoderLayer(16, 4, o)
	tr := z.Forward(x)
	nn.Eval(z)
	require.Equal(t, tr.Float32s(), z.Forward(x).Float32s(), "dropout 0: training mode is evaluation mode")
}

func TestTransformerHooksFireOnSublayers(t *testing.T) {
	e := nn.NewTransformerEncoder(2, func() *nn.TransformerEncoderLayer {
		return nn.NewTransformerEncoderLayer(8, 2, nn.TransformerEncoderLayerOptions{DimFeedforward: 16, BatchFirst: true})
	}, nn.NewLayerNorm(bridge.Shape{8}))
	var seen []string
	h, err := nn.RegisterForwardHook(e, "layers.*", func(name string, m nn.Module, in, out *bridge.Tensor) {
		seen = append(seen, fmt.Sprintf("%s%v", name, out.Shape()))
	})
	require.NoError(t, err)
	h2, err := nn.RegisterForwardHook(e, "layers.1.self_attn", func(name string, m nn.Module, in, out *bridge.Tensor) {
		seen = append(seen, name)
	})
	require.NoError(t, err)
	e.ForwardMasked(seqRandn(2, 5, 8), nn.SquareSubsequentMask(5), nil)
	require.Equal(t, []string{"layers.0[2, 5, 8]", "layers.1.self_attn", "layers.1[2, 5, 8]"}, seen)
	h.Remove()
	h2.Remove()
	err = bridge.Try(func() { nn.NewTransformerEncoderLayer(8, 2, nn.TransformerEncoderLayerOptions{Activation: "tanh"}) })
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), `activation should be relu or gelu, not "tanh"`), err.Error())
	// a custom activation
	sq := nn.NewTransformerEncoderLayer(8, 2, nn.TransformerEncoderLayerOptions{DimFeedforward: 4, ActivationFunc: (*bridge.Tensor).Square})
	require.Equal(t, bridge.Shape{3, 2, 8}, sq.Forward(seqRandn(3, 2, 8)).Shape())
}
