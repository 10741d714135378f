package nn

import (
	"fmt"
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// RNNOptions tune NewLSTM, NewGRU and NewRNN; the zero value is PyTorch's defaults (one
// layer, biases, [L, N, F] inputs, no dropout, one direction).
type RNNOptions struct {
	NumLayers     int64   // stacked layers; 0 means 1
	NoBias        bool    // bias=False: no bias_ih_l*/bias_hh_l*
	BatchFirst    bool    // inputs and outputs are [N, L, F] (the states stay [D·layers, N, H])
	Dropout       float64 // dropout on the outputs of every layer but the last, in training mode
	Bidirectional bool    // a second, reversed direction per layer (*_reverse parameters)
	ProjSize      int64   // LSTM only: project h to this size (weight_hr_l*); 0 is none
	Nonlinearity  string  // RNN only: "tanh" (the default) or "relu"
}

// RNNConfig is a recurrent layer's shape, as PyTorch's RNNBase keeps it.
type RNNConfig struct {
	InputSize, HiddenSize int64
	NumLayers             int64
	Bias, BatchFirst      bool
	Dropout               float64
	Bidirectional         bool
	ProjSize              int64 // LSTM only
}

// Directions is 2 for a bidirectional layer, else 1.
func (c *RNNConfig) Directions() int64 {
	if c.Bidirectional {
		return 2
	}
	return 1
}

// outSize is the size of h: ProjSize when the LSTM projects, else HiddenSize.
func (c *RNNConfig) outSize() int64 {
	if c.ProjSize > 0 {
		return c.ProjSize
	}
	return c.HiddenSize
}

// newRecurrent checks the options and registers the parameters under PyTorch's names, in
// PyTorch's order (per layer, per direction: weight_ih, weight_hh, bias_ih, bias_hh,
// weight_hr), each drawn from U(-1/√hidden, 1/√hidden). It returns them in that order: the
// flat weight list aten::lstm, aten::gru and aten::rnn_* take.
func newRecurrent(n *Node, kind string, gates, input, hidden int64, o RNNOptions) (RNNConfig, []*bridge.Tensor) {
	n.kind = kind
	c := RNNConfig{InputSize: input, HiddenSize: hidden, NumLayers: max(o.NumLayers, 1), Bias: !o.NoBias,
		BatchFirst: o.BatchFirst, Dropout: o.Dropout, Bidirectional: o.Bidirectional, ProjSize: o.ProjSize}
	switch {
	case input <= 0 || hidden <= 0:
		n.fail("input size %d and hidden size %d must be positive", input, hidden)
	case o.NumLayers < 0:
		n.fail("num_layers %d is negative", o.NumLayers)
	case math.IsNaN(o.Dropout) || o.Dropout < 0 || o.Dropout > 1:
		n.fail("dropout probability %v is not in [0, 1]", o.Dropout)
	case o.ProjSize < 0:
		n.fail("proj_size %d is negative", o.ProjSize)
	case o.ProjSize > 0 && kind != "LSTM":
		n.fail("proj_size is only supported by LSTM")
	case o.ProjSize >= hidden:
		n.fail("proj_size %d has to be smaller than hidden_size %d", o.ProjSize, hidden)
	}
	bound := 1 / math.Sqrt(float64(hidden))
	var flat []*bridge.Tensor
	for layer := range c.NumLayers {
		for dir := range c.Directions() {
			suffix := ""
			if dir == 1 {
				suffix = "_reverse"
			}
			in := input
			if layer > 0 {
				in = c.outSize() * c.Directions()
			}
			add := func(name string, shape ...int64) {
				flat = append(flat, n.Param(fmt.Sprintf("%s_l%d%s", name, layer, suffix), uniformSeq(shape, bound)))
			}
			add("weight_ih", gates*hidden, in)
			add("weight_hh", gates*hidden, c.outSize())
			if c.Bias {
				add("bias_ih", gates*hidden)
				add("bias_hh", gates*hidden)
			}
			if c.ProjSize > 0 {
				add("weight_hr", c.ProjSize, hidden)
			}
		}
	}
	return c, flat
}

// prepare checks x and a state and adds the batch dim to unbatched ([L, F]) inputs, as PyTorch
// does: it returns the batched input, the batch size, and whether x was batched.
func (c *RNNConfig) prepare(n *Node, x *bridge.Tensor) (*bridge.Tensor, int64, bool) {
	s := x.Shape()
	if len(s) != 2 && len(s) != 3 {
		n.fail("input of shape %v: expected a 3-D (batched) or 2-D (unbatched) input", s)
	}
	if s[len(s)-1] != c.InputSize {
		n.fail("input of shape %v: expected the last dim to be input_size %d", s, c.InputSize)
	}
	if !x.DType().IsFloat() {
		n.fail("input must be floating point, got %v", x.DType())
	}
	if len(s) == 2 {
		if c.BatchFirst {
			return x.Unsqueeze(0), 1, false
		}
		return x.Unsqueeze(1), 1, false
	}
	if c.BatchFirst {
		return x, s[0], true
	}
	return x, s[1], true
}

// state checks a given initial state (what names it in messages) or makes a zero one
// [D·layers, batch, size] like x.
func (c *RNNConfig) state(n *Node, what string, h, x *bridge.Tensor, batch, size int64, batched bool) *bridge.Tensor {
	want := bridge.Shape{c.Directions() * c.NumLayers, batch, size}
	if h == nil {
		return bridge.Zeros(want, x.DType(), x.Device())
	}
	if !batched {
		if h.Dim() != 2 {
			n.fail("for an unbatched input, %s must be 2-D, got shape %v", what, h.Shape())
		}
		h = h.Unsqueeze(1)
	} else if h.Dim() != 3 {
		n.fail("for a batched input, %s must be 3-D, got shape %v", what, h.Shape())
	}
	if !h.Shape().Equal(want) {
		n.fail("expected %s of shape %v, got %v", what, want, h.Shape())
	}
	return h
}

// finish removes the batch dim that prepare added from the final states.
func (c *RNNConfig) finish(states []*bridge.Tensor, batched bool) {
	if batched {
		return
	}
	for i, s := range states {
		states[i] = s.SqueezeDim(1)
	}
}

// unbatch squeezes the batch dim prepare added to the output.
func (c *RNNConfig) unbatch(out *bridge.Tensor, batched bool) *bridge.Tensor {
	if batched {
		return out
	}
	if c.BatchFirst {
		return out.SqueezeDim(0)
	}
	return out.SqueezeDim(1)
}

// LSTM is PyTorch's nn.LSTM: a multi-layer long short-term memory RNN (gates i, f, g, o), run by
// aten::lstm over PyTorch's flat weights.
type LSTM struct {
	Node
	RNNConfig
	flat []*bridge.Tensor
}

// NewLSTM makes an LSTM initialised as PyTorch does.
func NewLSTM(input, hidden int64, opts ...RNNOptions) *LSTM {
	m := &LSTM{}
	m.RNNConfig, m.flat = newRecurrent(&m.Node, "LSTM", 4, input, hidden, firstOpt(opts))
	return m
}

// FlatWeights are the parameters in PyTorch's _flat_weights order (what aten::lstm takes).
func (m *LSTM) FlatWeights() []*bridge.Tensor { return append([]*bridge.Tensor(nil), m.flat...) }

// Forward runs the LSTM from zero states and returns the output sequence: [L, N, D·H] ([N, L,
// D·H] batch first, [L, D·H] unbatched; H is ProjSize when set).
func (m *LSTM) Forward(x *bridge.Tensor) *bridge.Tensor {
	out, _, _ := m.ForwardState(x, nil, nil)
	return out
}

// ForwardState runs the LSTM from the states h0 [D·layers, N, H_out] and c0 [D·layers, N, H]
// (2-D for an unbatched input; both nil: zeros) and returns the output sequence and the final
// states hn and cn, shaped like h0 and c0. Forward hooks see x and the output.
func (m *LSTM) ForwardState(x, h0, c0 *bridge.Tensor) (out, hn, cn *bridge.Tensor) {
	xb, batch, batched := m.prepare(&m.Node, x)
	if (h0 == nil) != (c0 == nil) {
		m.fail("give both h0 and c0, or neither")
	}
	h0 = m.state(&m.Node, "h0", h0, x, batch, m.outSize(), batched)
	c0 = m.state(&m.Node, "c0", c0, x, batch, m.HiddenSize, batched)
	out, hn, cn = aten.LstmInput(xb, []*bridge.Tensor{h0, c0}, m.flat, m.Bias, m.NumLayers, m.Dropout,
		m.Training(), m.Bidirectional, m.BatchFirst)
	states := []*bridge.Tensor{hn, cn}
	m.finish(states, batched)
	return m.Fire(x, m.unbatch(out, batched)), states[0], states[1]
}

// GRU is PyTorch's nn.GRU: a multi-layer gated recurrent unit RNN (gates r, z, n), run by
// aten::gru over PyTorch's flat weights.
type GRU struct {
	Node
	RNNConfig
	flat []*bridge.Tensor
}

// NewGRU makes a GRU initialised as PyTorch does.
func NewGRU(input, hidden int64, opts ...RNNOptions) *GRU {
	m := &GRU{}
	m.RNNConfig, m.flat = newRecurrent(&m.Node, "GRU", 3, input, hidden, firstOpt(opts))
	return m
}

// FlatWeights are the parameters in PyTorch's _flat_weights order (what aten::gru takes).
func (m *GRU) FlatWeights() []*bridge.Tensor { return append([]*bridge.Tensor(nil), m.flat...) }

// Forward runs the GRU from a zero state and returns the output sequence (see LSTM.Forward).
func (m *GRU) Forward(x *bridge.Tensor) *bridge.Tensor {
	out, _ := m.ForwardState(x, nil)
	return out
}

// ForwardState runs the GRU from h0 [D·layers, N, H] (2-D unbatched; nil: zeros) and returns
// the output sequence and the final state. Forward hooks see x and the output.
func (m *GRU) ForwardState(x, h0 *bridge.Tensor) (out, hn *bridge.Tensor) {
	xb, batch, batched := m.prepare(&m.Node, x)
	h0 = m.state(&m.Node, "h0", h0, x, batch, m.HiddenSize, batched)
	out, hn = aten.GruInput(xb, h0, m.flat, m.Bias, m.NumLayers, m.Dropout, m.Training(), m.Bidirectional, m.BatchFirst)
	states := []*bridge.Tensor{hn}
	m.finish(states, batched)
	return m.Fire(x, m.unbatch(out, batched)), states[0]
}

// RNN is PyTorch's nn.RNN: a multi-layer Elman RNN with a tanh or relu nonlinearity, run by
// aten::rnn_tanh or aten::rnn_relu over PyTorch's flat weights.
type RNN struct {
	Node
	RNNConfig
	Nonlinearity string // "tanh" or "relu"
	flat         []*bridge.Tensor
}

// NewRNN makes an Elman RNN initialised as PyTorch does.
func NewRNN(input, hidden int64, opts ...RNNOptions) *RNN {
	o := firstOpt(opts)
	m := &RNN{Nonlinearity: o.Nonlinearity}
	if m.Nonlinearity == "" {
		m.Nonlinearity = "tanh"
	}
	if m.Nonlinearity != "tanh" && m.Nonlinearity != "relu" {
		m.kind = "RNN"
		m.fail("unknown nonlinearity %q (tanh or relu)", m.Nonlinearity)
	}
	m.RNNConfig, m.flat = newRecurrent(&m.Node, "RNN", 1, input, hidden, o)
	return m
}

// FlatWeights are the parameters in PyTorch's _flat_weights order (what aten::rnn_* takes).
func (m *RNN) FlatWeights() []*bridge.Tensor { return append([]*bridge.Tensor(nil), m.flat...) }

// Forward runs the RNN from a zero state and returns the output sequence (see LSTM.Forward).
func (m *RNN) Forward(x *bridge.Tensor) *bridge.Tensor {
	out, _ := m.ForwardState(x, nil)
	return out
}

// ForwardState runs the RNN from h0 [D·layers, N, H] (2-D unbatched; nil: zeros) and returns
// the output sequence and the final state. Forward hooks see x and the output.
func (m *RNN) ForwardState(x, h0 *bridge.Tensor) (out, hn *bridge.Tensor) {
	xb, batch, batched := m.prepare(&m.Node, x)
	h0 = m.state(&m.Node, "h0", h0, x, batch, m.HiddenSize, batched)
	run := aten.RnnTanhInput
	if m.Nonlinearity == "relu" {
		run = aten.RnnReluInput
	}
	out, hn = run(xb, h0, m.flat, m.Bias, m.NumLayers, m.Dropout, m.Training(), m.Bidirectional, m.BatchFirst)
	states := []*bridge.Tensor{hn}
	m.finish(states, batched)
	return m.Fire(x, m.unbatch(out, batched)), states[0]
}

// uniformSeq draws U(-bound, bound) of a shape (PyTorch's init.uniform_); the sequence layers
// keep their own copy so that they do not depend on the helpers of layers.go.
func uniformSeq(shape []int64, bound float64) *bridge.Tensor {
	return bridge.Rand(shape).MulScalar(2 * bound).SubScalar(bound)
}
