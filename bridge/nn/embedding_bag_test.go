package nn_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// bagSpec is one EmbeddingBag case.
type bagSpec struct {
	name     string
	num, dim int64
	o        nn.EmbeddingBagOptions
	input    *bridge.Tensor // 1-D with offsets, or 2-D
	offsets  *bridge.Tensor
	psw      bool // per_sample_weights (mode sum), whose gradient is compared
	train    bool
}

func (s bagSpec) seqCase() seqCase {
	mode := s.o.Mode
	if mode == "" {
		mode = "mean"
	}
	py := fmt.Sprintf("nn.EmbeddingBag(%d, %d, mode=%q, scale_grad_by_freq=%s, include_last_offset=%s", s.num, s.dim, mode,
		pyBool(s.o.ScaleGradByFreq), pyBool(s.o.IncludeLastOffset))
	if s.o.PaddingIdx != nil {
		py += fmt.Sprintf(", padding_idx=%d", *s.o.PaddingIdx)
	}
	if s.o.MaxNorm > 0 {
		py += fmt.Sprintf(", max_norm=%v", s.o.MaxNorm)
		if s.o.NormType != 0 {
			py += fmt.Sprintf(", norm_type=%v", s.o.NormType)
		}
	}
	py += ")"
	in := seqIn{"input": s.input}
	var grad []string
	if s.offsets != nil {
		in["offsets"] = s.offsets
	}
	if s.psw {
		in["psw"] = seqRandn(s.input.Shape()...)
		grad = append(grad, "psw")
	}
	return seqCase{name: s.name, build: func() nn.Module { return nn.NewEmbeddingBag(s.num, s.dim, s.o) }, py: py, train: s.train, in: in, grad: grad,
		run: func(m nn.Module, v seqIn) []*bridge.Tensor {
			return []*bridge.Tensor{m.(*nn.EmbeddingBag).ForwardBags(v["input"], v["offsets"], v["psw"])}
		},
		pyRun: `out = [m(inp["input"], inp.get("offsets"), per_sample_weights=inp.get("psw"))]`}
}

func bagIdx(v ...int64) *bridge.Tensor { return bridge.FromSlice(v) }

func embeddingBagCases() []seqCase {
	flat := bagIdx(1, 2, 4, 5, 4, 3, 2, 9, 0, 0, 7) // bags [1 2 4] [5 4 3 2] [] [9 0 0 7]
	offs := bagIdx(0, 3, 7, 7)
	last := bagIdx(0, 3, 7, 7, 11) // include_last_offset
	two := bridge.FromSlice([]int64{1, 2, 4, 5, 4, 3, 2, 9, 0, 2, 2, 7}, 3, 4)
	specs := []bagSpec{
		{name: "bag_mean_2d", num: 10, dim: 3, input: two},
		{name: "bag_sum_2d_psw", num: 10, dim: 3, input: two, psw: true, o: nn.EmbeddingBagOptions{Mode: "sum"}},
		{name: "bag_max_2d", num: 10, dim: 3, input: two, o: nn.EmbeddingBagOptions{Mode: "max"}},
		{name: "bag_mean_offsets_empty_bag", num: 10, dim: 4, input: flat, offsets: offs},
		{name: "bag_sum_offsets_psw", num: 10, dim: 4, input: flat, offsets: offs, psw: true, o: nn.EmbeddingBagOptions{Mode: "sum"}},
		{name: "bag_max_offsets", num: 10, dim: 4, input: flat, offsets: offs, o: nn.EmbeddingBagOptions{Mode: "max"}},
		{name: "bag_sum_include_last_offset", num: 10, dim: 4, input: flat, offsets: last, o: nn.EmbeddingBagOptions{Mode: "sum", IncludeLastOffset: true}},
		{name: "bag_mean_padding", num: 10, dim: 4, input: flat, offsets: offs, o: nn.EmbeddingBagOptions{PaddingIdx: seqPtr(int64(2))}},
		{name: "bag_sum_padding_negative_2d", num: 10, dim: 3, input: two, o: nn.EmbeddingBagOptions{Mode: "sum", PaddingIdx: seqPtr(int64(-8))}},
		{name: "bag_max_padding_last_offset", num: 10, dim: 4, input: flat, offsets: last, o: nn.EmbeddingBagOptions{Mode: "max", PaddingIdx: seqPtr(int64(0)), IncludeLastOffset: true}},
		{name: "bag_sum_psw_padding", num: 10, dim: 4, input: flat, offsets: offs, psw: true, o: nn.EmbeddingBagOptions{Mode: "sum", PaddingIdx: seqPtr(int64(4))}},
		{name: "bag_mean_scale_grad_by_freq", num: 10, dim: 4, input: flat, offsets: offs, o: nn.EmbeddingBagOptions{ScaleGradByFreq: true}},
		{name: "bag_sum_max_norm", num: 10, dim: 4, input: flat, offsets: offs, o: nn.EmbeddingBagOptions{Mode: "sum", MaxNorm: 1}},
		{name: "bag_mean_max_norm_p1", num: 10, dim: 4, input: two, o: nn.EmbeddingBagOptions{MaxNorm: 1.5, NormType: 1}},
		{name: "bag_int32_offsets", num: 10, dim: 4, input: flat.To(bridge.Int32), offsets: offs.To(bridge.Int32), o: nn.EmbeddingBagOptions{Mode: "sum"}, train: true},
	}
	var out []seqCase
	for _, s := range specs {
		out = append(out, s.seqCase())
	}
	return out
}

func TestEmbeddingBagInitAndErrors(t *testing.T) {
	bridge.ManualSeed(0)
	e := nn.NewEmbeddingBag(1000, 50, nn.EmbeddingBagOptions{PaddingIdx: seqPtr(int64(-1))})
	require.Equal(t, []string{"weight"}, seqNames(nn.StateDict(e)))
	require.Equal(t, int64(999), e.PaddingIdx)
	require.Equal(t, "mean", e.Mode)
	require.InDelta(t, 1, e.Weight.Std(true).Item(), 0.02)
	require.Equal(t, 0.0, e.Weight.Narrow(0, 999, 1).Abs().Sum().Item())
	require.Equal(t, "EmbeddingBag", nn.Kind(e))

	// the padding row gets no gradient, and a bag of padding only is zeros (mean mode)
	x := bridge.FromSlice([]int64{999, 999, 3, 999}, 2, 2)
	out := e.Forward(x)
	require.Equal(t, make([]float32, 50), out.Narrow(0, 0, 1).Float32s())
	require.InDeltaSlice(t, e.Weight.Narrow(0, 3, 1).Float64s(), out.Narrow(0, 1, 1).Float64s(), 1e-6)
	out.Sum().Backward()
	require.Equal(t, 0.0, e.Weight.Grad().Narrow(0, 999, 1).Abs().Sum().Item())

	// hooks see the indices and the bags
	root := &seqHolder{}
	root.Add("bag", e)
	var seen []bridge.Shape
	h, err := nn.RegisterForwardHook(root, "bag", func(name string, m nn.Module, in, out *bridge.Tensor) {
		seen = append(seen, in.Shape(), out.Shape())
	})
	require.NoError(t, err)
	e.ForwardBags(bagIdx(1, 2, 3), bagIdx(0, 1), nil)
	h.Remove()
	require.Equal(t, []bridge.Shape{{3}, {2, 50}}, seen)

	s := nn.NewEmbeddingBag(10, 3, nn.EmbeddingBagOptions{Mode: "sum"})
	cases := []struct {
		f    func()
		want string
	}{
		{func() { nn.NewEmbeddingBag(10, 3, nn.EmbeddingBagOptions{Mode: "median"}) }, `mode has to be one of sum, mean or max, not "median"`},
		{func() { nn.NewEmbeddingBag(10, 3, nn.EmbeddingBagOptions{Mode: "max", ScaleGradByFreq: true}) }, "max mode does not support scaling"},
		{func() { nn.NewEmbeddingBag(10, 3, nn.EmbeddingBagOptions{PaddingIdx: seqPtr(int64(10))}) }, "padding index 10 out of range"},
		{func() { s.Forward(bagIdx(1, 2)) }, "a 1-D input needs 1-D offsets"},
		{func() { s.ForwardBags(bridge.FromSlice([]int64{1, 2}, 1, 2), bagIdx(0), nil) }, "offsets must be nil"},
		{func() { s.Forward(bridge.Randn(bridge.Shape{2, 2})) }, "indices must be int64 or int32"},
		{func() { s.ForwardBags(bagIdx(1, 2), bagIdx(0), seqRandn(3)) }, "per_sample_weights of shape [3] must have the shape of the input [2]"},
		{func() { e.ForwardBags(bagIdx(1, 2), bagIdx(0), seqRandn(2)) }, "per_sample_weights are only supported for mode sum, not mean"},
		{func() { s.ForwardBags(bagIdx(1, 20), bagIdx(0), nil) }, "out of bounds: 20"},
	}
	for _, c := range cases {
		err := bridge.Try(c.f)
		require.Error(t, err, c.want)
		require.True(t, strings.Contains(err.Error(), c.want), "%q does not contain %q", err.Error(), c.want)
	}
}
