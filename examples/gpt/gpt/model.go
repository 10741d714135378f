// Package gpt is the model of examples/gpt — a small character-level GPT in nanoGPT's layout
// whose maths is generated ATen ops (package aten) — with its built-in text and vocabulary, so
// that the example, its tests and the benchmarks (bench/workload's GPT row) train the same model.
package gpt

import (
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
)

// The model's maths is generated ATen ops (package aten) only; bridge/nn supplies what every
// module shares — named parameters for the optimizer and checkpoints, train/eval mode and the
// forward hooks FeatureViz draws from (each Forward ends with Fire). The names follow nanoGPT's
// (transformer.h.0.attn.c_attn.weight, lm_head.weight), so a checkpoint reads like one.

// Config sizes the GPT.
type Config struct {
	Vocab, Block     int64 // characters; context length
	Embd, Heads      int64 // width; attention heads (Embd % Heads == 0)
	Layers           int   // transformer blocks
	Dropout          float64
	InitStd          float64 // weights ~ N(0, InitStd²); biases 0
	ResidualInitStdN bool    // scale the residual projections' std by 1/√(2·Layers), as GPT-2 does
}

// normal draws N(0, std²) of the given shape.
func normal(shape []int64, std float64) *bridge.Tensor {
	return aten.MulScalar(aten.Randn(shape, aten.Options{}), aten.FloatScalar(std))
}

// linear is y = x·Wᵀ + b (aten::linear).
type linear struct {
	nn.Node
	Weight, Bias *bridge.Tensor // [out, in], [out]
}

func newLinear(in, out int64, std float64) *linear {
	l := &linear{}
	l.Weight = l.Param("weight", normal([]int64{out, in}, std))
	l.Bias = l.Param("bias", aten.Zeros([]int64{out}, aten.Options{}))
	return l
}

func (l *linear) Forward(x *bridge.Tensor) *bridge.Tensor {
	return l.Fire(x, aten.Linear(x, l.Weight, l.Bias))
}

// embedding maps int64 indices to rows of its weight (aten::embedding).
type embedding struct {
	nn.Node
	Weight *bridge.Tensor // [num, dim]
}

func newEmbedding(num, dim int64, std float64) *embedding {
	e := &embedding{}
	e.Weight = e.Param("weight", normal([]int64{num, dim}, std))
	return e
}

func (e *embedding) Forward(idx *bridge.Tensor) *bridge.Tensor {
	return e.Fire(idx, aten.Embedding(e.Weight, idx, -1, false, false))
}

// layerNorm normalises the last dim (aten::layer_norm).
type layerNorm struct {
	nn.Node
	Dim          int64
	Weight, Bias *bridge.Tensor
}

func newLayerNorm(dim int64) *layerNorm {
	l := &layerNorm{Dim: dim}
	l.Weight = l.Param("weight", aten.Ones([]int64{dim}, aten.Options{}))
	l.Bias = l.Param("bias", aten.Zeros([]int64{dim}, aten.Options{}))
	return l
}

func (l *layerNorm) Forward(x *bridge.Tensor) *bridge.Tensor {
	return l.Fire(x, aten.LayerNorm(x, []int64{l.Dim}, l.Weight, l.Bias, 1e-5, true))
}

// probe is the identity: a named point in the forward whose value forward hooks (FeatureViz)
// can see — here the attention probabilities, which are no module's output.
type probe struct{ nn.Node }

func (p *probe) Forward(x *bridge.Tensor) *bridge.Tensor { return p.Fire(x, x) }

// Softmax is aten::softmax.int over dim.
func Softmax(x *bridge.Tensor, dim int64) *bridge.Tensor { return aten.Softmax(x, dim, nil) }

// attention is causal multi-head self-attention.
type attention struct {
	nn.Node
	heads   int64
	dropout float64
	cAttn   *linear // x → q, k, v
	cProj   *linear
	probs   *probe // [B, heads, T, T] after the softmax
}

func newAttention(c Config, projStd float64) *attention {
	a := &attention{heads: c.Heads, dropout: c.Dropout,
		cAttn: newLinear(c.Embd, 3*c.Embd, c.InitStd), cProj: newLinear(c.Embd, c.Embd, projStd), probs: &probe{}}
	a.Add("c_attn", a.cAttn)
	a.Add("c_proj", a.cProj)
	a.Add("probs", a.probs)
	return a
}

// CausalMask is true where a position would attend to a later one: the complement of
// tril(ones(T, T)).
func CausalMask(t int64, dev bridge.Device) *bridge.Tensor {
	ones := aten.Ones([]int64{t, t}, aten.Options{DType: aten.D(bridge.Bool), Device: aten.Dev(dev)})
	return aten.LogicalNot(aten.Tril(ones, 0))
}

func (a *attention) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape() // [B, T, C]
	b, t, c := s[0], s[1], s[2]
	hd := c / a.heads
	qkv := aten.Chunk(a.cAttn.Forward(x), 3, 2)
	// [B, T, C] → [B·heads, T, hd]
	split := func(z *bridge.Tensor) *bridge.Tensor {
		z = aten.Transpose(aten.View(z, []int64{b, t, a.heads, hd}), 1, 2)
		return aten.Reshape(z, []int64{b * a.heads, t, hd})
	}
	q, k, v := split(qkv[0]), split(qkv[1]), split(qkv[2])
	att := aten.MulScalar(aten.Bmm(q, aten.Transpose(k, 1, 2)), aten.FloatScalar(1/math.Sqrt(float64(hd))))
	att = aten.MaskedFillScalar(att, CausalMask(t, x.Device()), aten.FloatScalar(math.Inf(-1)))
	att = Softmax(att, -1)
	att = aten.View(a.probs.Forward(aten.View(att, []int64{b, a.heads, t, t})), []int64{b * a.heads, t, t})
	att = aten.Dropout(att, a.dropout, a.Training())
	y := aten.Bmm(att, v)                                                               // [B·heads, T, hd]
	y = aten.Reshape(aten.Transpose(aten.View(y, []int64{b, a.heads, t, hd}), 1, 2), s) // [B, T, C]
	y = aten.Dropout(a.cProj.Forward(y), a.dropout, a.Training())
	return a.Fire(x, y)
}

// mlp is the position-wise feed-forward layer: Linear, GELU, Linear.
type mlp struct {
	nn.Node
	dropout float64
	cFc     *linear
	cProj   *linear
}

func newMLP(c Config, projStd float64) *mlp {
	m := &mlp{dropout: c.Dropout, cFc: newLinear(c.Embd, 4*c.Embd, c.InitStd), cProj: newLinear(4*c.Embd, c.Embd, projStd)}
	m.Add("c_fc", m.cFc)
	m.Add("c_proj", m.cProj)
	return m
}

func (m *mlp) Forward(x *bridge.Tensor) *bridge.Tensor {
	h := aten.Gelu(m.cFc.Forward(x), "none")
	return m.Fire(x, aten.Dropout(m.cProj.Forward(h), m.dropout, m.Training()))
}

// block is a pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).
type block struct {
	nn.Node
	ln1, ln2 *layerNorm
	attn     *attention
	mlp      *mlp
}

func newBlock(c Config) *block {
	projStd := c.InitStd
	if c.ResidualInitStdN {
		projStd /= math.Sqrt(2 * float64(c.Layers))
	}
	b := &block{ln1: newLayerNorm(c.Embd), attn: newAttention(c, projStd), ln2: newLayerNorm(c.Embd), mlp: newMLP(c, projStd)}
	b.Add("ln_1", b.ln1)
	b.Add("attn", b.attn)
	b.Add("ln_2", b.ln2)
	b.Add("mlp", b.mlp)
	return b
}

func (b *block) Forward(x *bridge.Tensor) *bridge.Tensor {
	one := aten.IntScalar(1)
	h := aten.Add(x, b.attn.Forward(b.ln1.Forward(x)), one)
	h = aten.Add(h, b.mlp.Forward(b.ln2.Forward(h)), one)
	return b.Fire(x, h)
}

// transformer is the body: embeddings, blocks, final norm; [B, T] indices → [B, T, C].
type transformer struct {
	nn.Node
	dropout  float64
	wte, wpe *embedding
	h        *nn.Sequential
	lnF      *layerNorm
}

func (m *transformer) Forward(idx *bridge.Tensor) *bridge.Tensor {
	t := idx.Size(1)
	pos := aten.Arange(aten.IntScalar(t), aten.Options{DType: aten.D(bridge.Int64), Device: aten.Dev(idx.Device())})
	x := aten.Add(m.wte.Forward(idx), m.wpe.Forward(pos), aten.IntScalar(1)) // [B, T, C] + [T, C]
	x = aten.Dropout(x, m.dropout, m.Training())
	return m.Fire(idx, m.lnF.Forward(m.h.Forward(x)))
}

// GPT is a character-level GPT: [B, T] int64 indices → logits [B, T, vocab].
type GPT struct {
	nn.Node
	Config      Config
	transformer *transformer
	lmHead      *linear
}

// New builds a GPT with freshly drawn weights (libtorch's generator: bridge.ManualSeed).
func New(c Config) *GPT {
	tr := &transformer{dropout: c.Dropout, wte: newEmbedding(c.Vocab, c.Embd, c.InitStd),
		wpe: newEmbedding(c.Block, c.Embd, c.InitStd), h: nn.NewSequential(), lnF: newLayerNorm(c.Embd)}
	for range c.Layers {
		tr.h.Append(newBlock(c))
	}
	tr.Add("wte", tr.wte)
	tr.Add("wpe", tr.wpe)
	tr.Add("h", tr.h)
	tr.Add("ln_f", tr.lnF)
	g := &GPT{Config: c, transformer: tr, lmHead: newLinear(c.Embd, c.Vocab, c.InitStd)}
	g.Add("transformer", tr)
	g.Add("lm_head", g.lmHead)
	return g
}

func (g *GPT) Forward(idx *bridge.Tensor) *bridge.Tensor {
	if t := idx.Size(1); t > g.Config.Block {
		panic(&bridge.Error{Op: "gpt", Msg: "sequence longer than the block size"})
	}
	return g.Fire(idx, g.lmHead.Forward(g.transformer.Forward(idx)))
}

// Loss is the mean cross-entropy of next-character prediction over every position: logits
// [B, T, V] against targets [B, T], flattened to the [B·T, V] and [B·T] that
// bridge.CrossEntropy takes.
func Loss(logits, targets *bridge.Tensor) *bridge.Tensor {
	v := logits.Size(-1)
	return bridge.CrossEntropy(aten.View(logits, []int64{-1, v}), aten.View(targets, []int64{-1}))
}

// DecayGroups splits the parameters as GPT-2 (and nanoGPT) do for AdamW: the matrices of the
// linear layers and embeddings (dim ≥ 2) decay with weightDecay, biases and LayerNorm gains do
// not.
func DecayGroups(m nn.Module, weightDecay float64) []optim.Group {
	var decay, rest []*bridge.Tensor
	for _, p := range nn.Parameters(m) {
		if p.Dim() >= 2 {
			decay = append(decay, p)
		} else {
			rest = append(rest, p)
		}
	}
	return []optim.Group{{Params: decay, Hyper: map[string]any{"weight_decay": weightDecay}},
		{Params: rest, Hyper: map[string]any{"weight_decay": 0.0}}}
}
