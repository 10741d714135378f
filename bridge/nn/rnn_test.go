package nn_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// rnnSpec is one recurrent-layer case of the cross-check.
type rnnSpec struct {
	name       string
	kind       string // LSTM, GRU, RNN
	in, hidden int64
	o          nn.RNNOptions
	seq, batch int64 // batch 0: an unbatched input
	state      bool  // pass initial states (else zeros)
	f64, train bool
}

func newRecurrent(s rnnSpec) nn.Module {
	var m nn.Module
	switch s.kind {
	case "LSTM":
		m = nn.NewLSTM(s.in, s.hidden, s.o)
	case "GRU":
		m = nn.NewGRU(s.in, s.hidden, s.o)
	default:
		m = nn.NewRNN(s.in, s.hidden, s.o)
	}
	if s.f64 {
		nn.To(m, bridge.Float64)
	}
	return m
}

func (s rnnSpec) pyExpr() string {
	layers := max(s.o.NumLayers, 1)
	e := fmt.Sprintf("nn.%s(%d, %d, num_layers=%d, bias=%s, batch_first=%s, dropout=%v, bidirectional=%s",
		s.kind, s.in, s.hidden, layers, pyBool(!s.o.NoBias), pyBool(s.o.BatchFirst), s.o.Dropout, pyBool(s.o.Bidirectional))
	if s.o.ProjSize > 0 {
		e += fmt.Sprintf(", proj_size=%d", s.o.ProjSize)
	}
	if s.o.Nonlinearity != "" {
		e += fmt.Sprintf(", nonlinearity=%q", s.o.Nonlinearity)
	}
	e += ")"
	if s.f64 {
		e += ".double()"
	}
	return e
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func (s rnnSpec) seqCase() seqCase {
	mk := seqRandn
	if s.f64 {
		mk = seqRandn64
	}
	d := int64(1)
	if s.o.Bidirectional {
		d = 2
	}
	layers := max(s.o.NumLayers, 1)
	hOut := s.hidden
	if s.o.ProjSize > 0 {
		hOut = s.o.ProjSize
	}
	in := seqIn{}
	state := func(size int64) *bridge.Tensor {
		if s.batch == 0 {
			return mk(d*layers, size)
		}
		return mk(d*layers, s.batch, size)
	}
	switch {
	case s.batch == 0:
		in["x"] = mk(s.seq, s.in)
	case s.o.BatchFirst:
		in["x"] = mk(s.batch, s.seq, s.in)
	default:
		in["x"] = mk(s.seq, s.batch, s.in)
	}
	grad := []string{"x"}
	if s.state {
		in["h0"] = state(hOut)
		grad = append(grad, "h0")
		if s.kind == "LSTM" {
			in["c0"] = state(s.hidden)
			grad = append(grad, "c0")
		}
	}
	c := seqCase{name: s.name, build: func() nn.Module { return newRecurrent(s) }, py: s.pyExpr(), train: s.train, in: in, grad: grad}
	if s.kind == "LSTM" {
		c.run = func(m nn.Module, v seqIn) []*bridge.Tensor {
			out, hn, cn := m.(*nn.LSTM).ForwardState(v["x"], v["h0"], v["c0"])
			return []*bridge.Tensor{out, hn, cn}
		}
		c.pyRun = `o, (hn, cn) = m(inp["x"], (inp["h0"], inp["c0"])) if "h0" in inp else m(inp["x"])
out = [o, hn, cn]`
		return c
	}
	c.run = func(m nn.Module, v seqIn) []*bridge.Tensor {
		var out, hn *bridge.Tensor
		if g, ok := m.(*nn.GRU); ok {
			out, hn = g.ForwardState(v["x"], v["h0"])
		} else {
			out, hn = m.(*nn.RNN).ForwardState(v["x"], v["h0"])
		}
		return []*bridge.Tensor{out, hn}
	}
	c.pyRun = `o, hn = m(inp["x"], inp["h0"]) if "h0" in inp else m(inp["x"])
out = [o, hn]`
	return c
}

func rnnCases() []seqCase {
	specs := []rnnSpec{
		{name: "lstm", kind: "LSTM", in: 4, hidden: 6, seq: 5, batch: 3, state: true},
		{name: "lstm_zero_state", kind: "LSTM", in: 4, hidden: 6, seq: 5, batch: 3},
		{name: "lstm_2layer_bidir_batch_first", kind: "LSTM", in: 4, hidden: 6, seq: 5, batch: 3, state: true,
			o: nn.RNNOptions{NumLayers: 2, Bidirectional: true, BatchFirst: true}},
		{name: "lstm_3layer_nobias_proj", kind: "LSTM", in: 4, hidden: 6, seq: 4, batch: 2, state: true,
			o: nn.RNNOptions{NumLayers: 3, NoBias: true, ProjSize: 3}},
		{name: "lstm_bidir_proj_batch_first", kind: "LSTM", in: 3, hidden: 5, seq: 4, batch: 2, state: true,
			o: nn.RNNOptions{Bidirectional: true, ProjSize: 2, BatchFirst: true}},
		{name: "lstm_unbatched", kind: "LSTM", in: 4, hidden: 6, seq: 5, state: true, o: nn.RNNOptions{NumLayers: 2}},
		{name: "lstm_unbatched_batch_first", kind: "LSTM", in: 4, hidden: 6, seq: 5, o: nn.RNNOptions{BatchFirst: true, Bidirectional: true}},
		{name: "lstm_train_dropout0", kind: "LSTM", in: 4, hidden: 6, seq: 5, batch: 3, state: true, train: true,
			o: nn.RNNOptions{NumLayers: 2, Bidirectional: true}},
		{name: "lstm_float64", kind: "LSTM", in: 4, hidden: 6, seq: 6, batch: 2, state: true, f64: true,
			o: nn.RNNOptions{NumLayers: 2, Bidirectional: true}},
		{name: "gru", kind: "GRU", in: 4, hidden: 6, seq: 5, batch: 3, state: true},
		{name: "gru_2layer_bidir_batch_first", kind: "GRU", in: 4, hidden: 6, seq: 5, batch: 3, state: true,
			o: nn.RNNOptions{NumLayers: 2, Bidirectional: true, BatchFirst: true}},
		{name: "gru_nobias_unbatched", kind: "GRU", in: 4, hidden: 6, seq: 5, state: true, o: nn.RNNOptions{NoBias: true, NumLayers: 2}},
		{name: "gru_train_dropout0_zero_state", kind: "GRU", in: 4, hidden: 6, seq: 5, batch: 3, train: true, o: nn.RNNOptions{NumLayers: 3}},
		{name: "gru_float64", kind: "GRU", in: 3, hidden: 4, seq: 5, batch: 2, state: true, f64: true, o: nn.RNNOptions{Bidirectional: true}},
		{name: "rnn_tanh", kind: "RNN", in: 4, hidden: 6, seq: 5, batch: 3, state: true},
		{name: "rnn_tanh_3layer_bidir", kind: "RNN", in: 4, hidden: 6, seq: 5, batch: 3, state: true,
			o: nn.RNNOptions{NumLayers: 3, Bidirectional: true, Nonlinearity: "tanh"}},
		{name: "rnn_relu_batch_first_nobias", kind: "RNN", in: 4, hidden: 6, seq: 5, batch: 3, state: true,
			o: nn.RNNOptions{Nonlinearity: "relu", BatchFirst: true, NoBias: true, NumLayers: 2}},
		{name: "rnn_relu_unbatched_bidir", kind: "RNN", in: 4, hidden: 6, seq: 5, o: nn.RNNOptions{Nonlinearity: "relu", Bidirectional: true}},
	}
	var out []seqCase
	for _, s := range specs {
		out = append(out, s.seqCase())
	}
	return out
}

func TestRNNParameterNamesAndShapes(t *testing.T) {
	m := nn.NewLSTM(4, 6, nn.RNNOptions{NumLayers: 2, Bidirectional: true, ProjSize: 3})
	var got []string
	for _, p := range nn.NamedParameters(m) {
		got = append(got, fmt.Sprintf("%s%v", p.Name, p.Tensor.Shape()))
	}
	require.Equal(t, []string{
		"weight_ih_l0[24, 4]", "weight_hh_l0[24, 3]", "bias_ih_l0[24]", "bias_hh_l0[24]", "weight_hr_l0[3, 6]",
		"weight_ih_l0_reverse[24, 4]", "weight_hh_l0_reverse[24, 3]", "bias_ih_l0_reverse[24]", "bias_hh_l0_reverse[24]", "weight_hr_l0_reverse[3, 6]",
		"weight_ih_l1[24, 6]", "weight_hh_l1[24, 3]", "bias_ih_l1[24]", "bias_hh_l1[24]", "weight_hr_l1[3, 6]",
		"weight_ih_l1_reverse[24, 6]", "weight_hh_l1_reverse[24, 3]", "bias_ih_l1_reverse[24]", "bias_hh_l1_reverse[24]", "weight_hr_l1_reverse[3, 6]",
	}, got)
	require.Equal(t, "LSTM", nn.Kind(m))
	require.Len(t, m.FlatWeights(), 20)
	g := nn.NewGRU(3, 5, nn.RNNOptions{NoBias: true})
	require.Equal(t, []string{"weight_ih_l0", "weight_hh_l0"}, seqNames(nn.NamedParameters(g)))
	require.Equal(t, bridge.Shape{15, 3}, g.FlatWeights()[0].Shape())
	r := nn.NewRNN(3, 5, nn.RNNOptions{Nonlinearity: "relu"})
	require.Equal(t, bridge.Shape{5, 3}, r.FlatWeights()[0].Shape())
	require.Equal(t, "RNN", nn.Kind(r))
}

// PyTorch draws every recurrent weight from U(-1/√hidden, 1/√hidden).
func TestRNNDefaultInitialisation(t *testing.T) {
	bridge.ManualSeed(1)
	m := nn.NewGRU(100, 400, nn.RNNOptions{Bidirectional: true})
	bound := 1 / math.Sqrt(400)
	for _, p := range nn.NamedParameters(m) {
		require.LessOrEqual(t, p.Tensor.Abs().Max().Item(), bound, p.Name)
		require.InDelta(t, bound*bound/3, p.Tensor.Var(false).Item(), bound*bound/3*0.05, p.Name)
	}
}

// Dropout between layers acts in training mode only: it changes the output and is reproducible
// under a seed; in an RNN built to pass the first layer's output through, about p of it is
// zeroed and the rest scaled by 1/(1-p).
func TestRNNDropoutBetweenLayers(t *testing.T) {
	bridge.ManualSeed(5)
	for _, kind := range []string{"LSTM", "GRU", "RNN"} {
		s := rnnSpec{kind: kind, in: 8, hidden: 16, o: nn.RNNOptions{NumLayers: 2, Dropout: 0.5}}
		m := newRecurrent(s)
		x := bridge.Randn(bridge.Shape{7, 4, 8})
		nn.Eval(m)
		e1, e2 := m.Forward(x), m.Forward(x)
		require.Equal(t, e1.Float32s(), e2.Float32s(), "%s: eval is deterministic", kind)
		nn.Train(m, true)
		bridge.ManualSeed(9)
		t1 := m.Forward(x)
		bridge.ManualSeed(9)
		t2 := m.Forward(x)
		t3 := m.Forward(x)
		require.Equal(t, e1.Shape(), t1.Shape())
		require.Equal(t, t1.Float32s(), t2.Float32s(), "%s: the same seed gives the same dropout", kind)
		require.NotEqual(t, t1.Float32s(), t3.Float32s(), "%s: dropout differs between forwards", kind)
		require.NotEqual(t, e1.Float32s(), t1.Float32s(), "%s: dropout acts in training mode", kind)
		t1.Sum().Backward()
		for _, p := range nn.NamedParameters(m) {
			require.NotNil(t, p.Tensor.Grad(), "%s: %s", kind, p.Name)
		}
		// a one-layer module ignores dropout, as PyTorch's does (with a warning there)
		one := newRecurrent(rnnSpec{kind: kind, in: 8, hidden: 16, o: nn.RNNOptions{Dropout: 0.5}})
		a := one.Forward(x)
		nn.Eval(one)
		require.Equal(t, one.Forward(x).Float32s(), a.Float32s(), "%s: no dropout after the last layer", kind)
	}
	// statistics: dropout p between layers of an RNN whose second layer is the identity on its
	// first unit: weight_ih_l1 picks unit 0, everything else zero, relu, so the output is
	// relu(dropout(h1)) and about p of the positive first-layer outputs become 0.
	m := nn.NewRNN(1, 1, nn.RNNOptions{NumLayers: 2, Dropout: 0.3, Nonlinearity: "relu"})
	w := m.FlatWeights() // ih0, hh0, bih0, bhh0, ih1, hh1, bih1, bhh1
	bridge.NoGrad(func() {
		for _, p := range w {
			p.ZeroInPlace()
		}
		w[0].FillInPlace(1) // h1 = relu(x)
		w[4].FillInPlace(1) // h2 = relu(dropout(h1))
	})
	x := bridge.Ones(bridge.Shape{200, 100, 1})
	out := m.Forward(x)
	zeros := out.EqScalar(0).To(bridge.Float32).Mean().Item()
	require.InDelta(t, 0.3, zeros, 0.01)
	kept := out.Sum().Item() / out.NeScalar(0).To(bridge.Float32).Sum().Item()
	require.InDelta(t, 1/0.7, kept, 1e-4, "kept values are scaled by 1/(1-p)")
}

func TestRNNForwardHooksAndStates(t *testing.T) {
	m := nn.NewLSTM(4, 6, nn.RNNOptions{NumLayers: 2, BatchFirst: true, Bidirectional: true})
	root := &seqHolder{}
	root.Add("rnn", m)
	var seen []bridge.Shape
	h, err := nn.RegisterForwardHook(root, "rnn", func(name string, mod nn.Module, in, out *bridge.Tensor) {
		require.Equal(t, "rnn", name)
		require.Equal(t, "LSTM", nn.Kind(mod))
		seen = append(seen, in.Shape(), out.Shape())
	})
	require.NoError(t, err)
	defer h.Remove()
	x := bridge.Randn(bridge.Shape{3, 5, 4})
	out, hn, cn := m.ForwardState(x, nil, nil)
	require.Equal(t, []bridge.Shape{{3, 5, 4}, {3, 5, 12}}, seen)
	require.Equal(t, bridge.Shape{4, 3, 6}, hn.Shape())
	require.Equal(t, bridge.Shape{4, 3, 6}, cn.Shape())
	// the final state continues the sequence: running the two halves equals running the whole
	nn.Eval(m)
	bridge.NoGrad(func() {
		uni := nn.NewLSTM(4, 6, nn.RNNOptions{NumLayers: 2, BatchFirst: true})
		nn.Eval(uni)
		whole, hw, cw := uni.ForwardState(x, nil, nil)
		a, ha, ca := uni.ForwardState(x.Narrow(1, 0, 2), nil, nil)
		b, hb, cb := uni.ForwardState(x.Narrow(1, 2, 3), ha, ca)
		require.InDeltaSlice(t, whole.Float64s(), bridge.Cat([]*bridge.Tensor{a, b}, 1).Float64s(), 1e-6)
		require.InDeltaSlice(t, hw.Float64s(), hb.Float64s(), 1e-6)
		require.InDeltaSlice(t, cw.Float64s(), cb.Float64s(), 1e-6)
	})
	require.Equal(t, bridge.Shape{3, 5, 12}, out.Shape())
}

func TestRNNBadInputsNameTheLayer(t *testing.T) {
	lstm := nn.NewLSTM(4, 6, nn.RNNOptions{NumLayers: 2})
	gru := nn.NewGRU(4, 6)
	cases := []struct {
		f    func()
		want string
	}{
		{func() { lstm.Forward(bridge.Randn(bridge.Shape{5, 3, 2})) }, "nn.LSTM: input of shape [5, 3, 2]: expected the last dim to be input_size 4"},
		{func() { lstm.Forward(bridge.Randn(bridge.Shape{5})) }, "expected a 3-D (batched) or 2-D (unbatched) input"},
		{func() {
			lstm.ForwardState(bridge.Randn(bridge.Shape{5, 3, 4}), bridge.Zeros(bridge.Shape{2, 3, 6}), nil)
		}, "give both h0 and c0, or neither"},
		{func() {
			lstm.ForwardState(bridge.Randn(bridge.Shape{5, 3, 4}), bridge.Zeros(bridge.Shape{1, 3, 6}), bridge.Zeros(bridge.Shape{2, 3, 6}))
		}, "expected h0 of shape [2, 3, 6], got [1, 3, 6]"},
		{func() { gru.ForwardState(bridge.Randn(bridge.Shape{5, 4}), bridge.Zeros(bridge.Shape{1, 1, 6})) }, "for an unbatched input, h0 must be 2-D"},
		{func() { gru.Forward(bridge.FromSlice([]int64{1, 2, 3, 4}, 1, 1, 4)) }, "input must be floating point"},
		{func() { nn.NewGRU(4, 6, nn.RNNOptions{ProjSize: 2}) }, "nn.GRU: proj_size is only supported by LSTM"},
		{func() { nn.NewLSTM(4, 6, nn.RNNOptions{ProjSize: 6}) }, "proj_size 6 has to be smaller than hidden_size 6"},
		{func() { nn.NewRNN(4, 6, nn.RNNOptions{Nonlinearity: "gelu"}) }, `unknown nonlinearity "gelu"`},
		{func() { nn.NewLSTM(4, 6, nn.RNNOptions{Dropout: 1.5}) }, "dropout probability 1.5 is not in [0, 1]"},
	}
	for _, c := range cases {
		err := bridge.Try(c.f)
		require.Error(t, err, c.want)
		require.True(t, strings.Contains(err.Error(), c.want), "%q does not contain %q", err.Error(), c.want)
	}
}

// seqHolder is a parent module for tests that need a named child.
type seqHolder struct{ nn.Node }

func (h *seqHolder) Forward(x *bridge.Tensor) *bridge.Tensor { return x }
