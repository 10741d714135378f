// Package examples_test shows that the ResNet and LSTM programs can be written with generated
// ATen ops only (package aten): a tiny ResNet of basic blocks and a one-layer LSTM language
// model over aten.LstmInput's flat weights, each trained a few steps with the loss falling. The
// GPT and the UNet are full examples: examples/gpt, examples/unet.
package examples_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/data"
)

func heNormal(shape []int64, fanIn int64) *bridge.Tensor {
	return aten.MulScalar(aten.Randn(shape, aten.Options{}), aten.FloatScalar(math.Sqrt(2/float64(fanIn))))
}

func zeros(n int64) *bridge.Tensor { return aten.Zeros([]int64{n}, aten.Options{}) }
func ones(n int64) *bridge.Tensor  { return aten.Ones([]int64{n}, aten.Options{}) }

// uniformInit is PyTorch's default for Linear and RNN weights: U(-1/√fan, 1/√fan).
func uniformInit(shape []int64, fan int64) *bridge.Tensor {
	b := 1 / math.Sqrt(float64(fan))
	return aten.AddScalar(aten.MulScalar(aten.Rand(shape, aten.Options{}), aten.FloatScalar(2*b)), aten.FloatScalar(-b), aten.IntScalar(1))
}

// ---- ResNet ----

// convBN is a bias-free conv followed by batch norm with running statistics (aten::conv2d,
// aten::batch_norm, which updates the running buffers in place in training mode).
type convBN struct {
	nn.Node
	stride, pad             int64
	Weight, Gamma, Beta     *bridge.Tensor
	RunningMean, RunningVar *bridge.Tensor
}

func newConvBN(in, out, k, stride int64) *convBN {
	c := &convBN{stride: stride, pad: k / 2}
	c.Weight = c.Param("weight", heNormal([]int64{out, in, k, k}, in*k*k))
	// one module for the conv and its norm; the names say which is which
	c.Gamma = c.Param("bn_weight", ones(out))
	c.Beta = c.Param("bn_bias", zeros(out))
	c.RunningMean = c.Buffer("bn_running_mean", zeros(out))
	c.RunningVar = c.Buffer("bn_running_var", ones(out))
	return c
}

func (c *convBN) Forward(x *bridge.Tensor) *bridge.Tensor {
	y := aten.Conv2d(x, c.Weight, nil, []int64{c.stride, c.stride}, []int64{c.pad, c.pad}, []int64{1, 1}, 1)
	y = aten.BatchNorm(y, c.Gamma, c.Beta, c.RunningMean, c.RunningVar, c.Training(), 0.1, 1e-5, true)
	return c.Fire(x, y)
}

// basicBlock is ResNet's basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)), the
// shortcut a strided 1×1 conv + bn when the shape changes.
type basicBlock struct {
	nn.Node
	conv1, conv2, down *convBN
}

func newBasicBlock(in, out, stride int64) *basicBlock {
	b := &basicBlock{conv1: newConvBN(in, out, 3, stride), conv2: newConvBN(out, out, 3, 1)}
	b.Add("conv1", b.conv1)
	b.Add("conv2", b.conv2)
	if stride != 1 || in != out {
		b.down = newConvBN(in, out, 1, stride)
		b.Add("downsample", b.down)
	}
	return b
}

func (b *basicBlock) Forward(x *bridge.Tensor) *bridge.Tensor {
	h := b.conv2.Forward(aten.Relu(b.conv1.Forward(x)))
	short := x
	if b.down != nil {
		short = b.down.Forward(x)
	}
	return b.Fire(x, aten.Relu(aten.Add(h, short, aten.IntScalar(1))))
}

type resNet struct {
	nn.Node
	stem           *convBN
	layer1, layer2 *basicBlock
	FcW, FcB       *bridge.Tensor
}

func newResNet(classes int64) *resNet {
	r := &resNet{stem: newConvBN(1, 16, 3, 1), layer1: newBasicBlock(16, 16, 1), layer2: newBasicBlock(16, 32, 2)}
	r.Add("stem", r.stem)
	r.Add("layer1", r.layer1)
	r.Add("layer2", r.layer2)
	r.FcW = r.Param("fc_weight", uniformInit([]int64{classes, 32}, 32))
	r.FcB = r.Param("fc_bias", uniformInit([]int64{classes}, 32))
	return r
}

func (r *resNet) Forward(x *bridge.Tensor) *bridge.Tensor {
	h := aten.MaxPool2d(aten.Relu(r.stem.Forward(x)), []int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false)
	h = r.layer2.Forward(r.layer1.Forward(h))
	h = aten.Flatten(aten.AdaptiveAvgPool2d(h, []int64{1, 1}), 1, -1)
	return r.Fire(x, aten.Linear(h, r.FcW, r.FcB))
}

func meanOf(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func TestResNetBasicBlocksFromGeneratedOps(t *testing.T) {
	bridge.ManualSeed(3)
	ds, err := data.Shapes(data.ShapesOptions{N: 512, Seed: 5})
	require.NoError(t, err)
	model := newResNet(int64(len(ds.Classes)))
	ao := optim.DefaultAdam()
	ao.LR = 3e-3
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), ao)
	require.NoError(t, err)
	const steps, batch = 60, 32
	var losses []float64
	for step := range steps {
		bridge.Scope(func() {
			i := int64(step*batch) % int64(ds.Len()-batch)
			x, y := ds.Images.Narrow(0, i, batch), ds.Labels.Narrow(0, i, batch)
			loss := aten.CrossEntropyLoss(model.Forward(x), y, nil, aten.ReductionMean, -100, 0)
			opt.ZeroGrad()
			loss.Backward()
			opt.Step()
			losses = append(losses, loss.Item())
		})
	}
	first, last := meanOf(losses[:5]), meanOf(losses[steps-5:])
	t.Logf("ResNet: %d steps, loss %.3f (first 5) → %.3f (last 5)", steps, first, last)
	require.Less(t, last, first-0.3)

	// batch_norm updated its running statistics in place; evaluation uses them
	require.NotEqual(t, make([]float32, 16), model.stem.RunningMean.Float32s())
	names := map[string]bool{}
	for _, s := range nn.StateDict(model) {
		names[s.Name] = true
	}
	require.True(t, names["layer2.downsample.bn_running_var"])
	require.True(t, names["layer1.conv2.weight"])
	nn.Eval(model)
	bridge.NoGrad(func() {
		require.Equal(t, bridge.Shape{4, int64(len(ds.Classes))}, model.Forward(ds.Images.Narrow(0, 0, 4)).Shape())
	})
}

// ---- LSTM language model ----

// lstmLM is embedding → one-layer LSTM (aten::lstm.input over its flat weights, PyTorch's
// names and layout: weight_ih_l0 [4H, E], weight_hh_l0 [4H, H], bias_ih_l0, bias_hh_l0, gates
// i, f, g, o) → linear head.
type lstmLM struct {
	nn.Node
	hidden             int64
	Embed              *bridge.Tensor
	WIh, WHh, BIh, BHh *bridge.Tensor
	HeadW, HeadB       *bridge.Tensor
}

func newLSTMLM(vocab, embd, hidden int64) *lstmLM {
	m := &lstmLM{hidden: hidden}
	m.Embed = m.Param("embed.weight", aten.Randn([]int64{vocab, embd}, aten.Options{}))
	m.WIh = m.Param("rnn.weight_ih_l0", uniformInit([]int64{4 * hidden, embd}, hidden))
	m.WHh = m.Param("rnn.weight_hh_l0", uniformInit([]int64{4 * hidden, hidden}, hidden))
	m.BIh = m.Param("rnn.bias_ih_l0", uniformInit([]int64{4 * hidden}, hidden))
	m.BHh = m.Param("rnn.bias_hh_l0", uniformInit([]int64{4 * hidden}, hidden))
	m.HeadW = m.Param("head.weight", uniformInit([]int64{vocab, hidden}, hidden))
	m.HeadB = m.Param("head.bias", uniformInit([]int64{vocab}, hidden))
	return m
}

// states runs the LSTM over idx [B, T] from zero states: outputs [B, T, H], h_T and c_T [1, B, H].
func (m *lstmLM) states(idx *bridge.Tensor) (out, h, c *bridge.Tensor) {
	b := idx.Size(0)
	h0 := aten.Zeros([]int64{1, b, m.hidden}, aten.Options{})
	c0 := aten.Zeros([]int64{1, b, m.hidden}, aten.Options{})
	x := aten.Embedding(m.Embed, idx, -1, false, false)
	return aten.LstmInput(x, []*bridge.Tensor{h0, c0}, []*bridge.Tensor{m.WIh, m.WHh, m.BIh, m.BHh},
		true, 1, 0, m.Training(), false, true)
}

// Forward maps [B, T] indices to next-character logits [B·T, V].
func (m *lstmLM) Forward(idx *bridge.Tensor) *bridge.Tensor {
	out, _, _ := m.states(idx)
	logits := aten.Linear(out, m.HeadW, m.HeadB)
	return m.Fire(idx, aten.Reshape(logits, []int64{-1, m.HeadW.Size(0)}))
}

const lstmText = "the cat sat on the mat. the dog sat on the log. the cat and the dog sat on the mat and the log. "

func TestLSTMLanguageModelFromGeneratedOps(t *testing.T) {
	bridge.ManualSeed(4)
	index := map[byte]int64{}
	for i := range len(lstmText) {
		if _, ok := index[lstmText[i]]; !ok {
			index[lstmText[i]] = int64(len(index))
		}
	}
	ids := make([]int64, len(lstmText))
	for i := range len(lstmText) {
		ids[i] = index[lstmText[i]]
	}
	vocab := int64(len(index))
	model := newLSTMLM(vocab, 16, 64)
	ao := optim.DefaultAdam()
	ao.LR = 1e-2
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), ao)
	require.NoError(t, err)

	const seq, batch, steps = 24, 8, 40
	var losses []float64
	for step := range steps {
		bridge.Scope(func() {
			xs, ys := make([]int64, 0, batch*seq), make([]int64, 0, batch*seq)
			for b := range batch {
				s := (step*batch + b*7) % (len(ids) - seq - 1)
				xs, ys = append(xs, ids[s:s+seq]...), append(ys, ids[s+1:s+seq+1]...)
			}
			x, y := bridge.FromSlice(xs, batch, seq), bridge.FromSlice(ys, batch*seq)
			loss := aten.CrossEntropyLoss(model.Forward(x), y, nil, aten.ReductionMean, -100, 0)
			opt.ZeroGrad()
			loss.Backward()
			if step == 0 { // the gradient reaches every flat weight through aten::lstm
				for _, p := range []*bridge.Tensor{model.WIh, model.WHh, model.BIh, model.BHh, model.Embed} {
					require.Greater(t, aten.Sum(aten.Abs(p.Grad()), nil).Item(), 0.0)
				}
			}
			opt.Step()
			losses = append(losses, loss.Item())
		})
	}
	first, last := meanOf(losses[:5]), meanOf(losses[steps-5:])
	t.Logf("LSTM LM: %d steps, loss %.3f (first 5) → %.3f (last 5); ln(vocab) %.3f", steps, first, last, math.Log(float64(vocab)))
	require.InDelta(t, math.Log(float64(vocab)), losses[0], 0.5)
	require.Less(t, last, first-0.8)

	// aten::lstm over the flat weights is the same recurrence as aten::lstm_cell unrolled
	bridge.NoGrad(func() {
		x := bridge.FromSlice(ids[:seq*2], 2, seq)
		out, hT, cT := model.states(x)
		emb := aten.Embedding(model.Embed, x, -1, false, false)
		h := aten.Zeros([]int64{2, model.hidden}, aten.Options{})
		c := aten.Zeros([]int64{2, model.hidden}, aten.Options{})
		for tt := range int64(seq) {
			h, c = aten.LstmCell(aten.Select(emb, 1, tt), []*bridge.Tensor{h, c}, model.WIh, model.WHh, model.BIh, model.BHh)
			require.True(t, aten.Allclose(h, aten.Select(out, 1, tt), 1e-5, 1e-6, false), "step %d", tt)
		}
		require.True(t, aten.Allclose(aten.Unsqueeze(h, 0), hT, 1e-5, 1e-6, false))
		require.True(t, aten.Allclose(aten.Unsqueeze(c, 0), cT, 1e-5, 1e-6, false))
	})
}
