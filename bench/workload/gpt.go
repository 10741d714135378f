package workload

import (
	"fmt"
	"math/rand/v2"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/examples/gpt/gpt"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// GPTConfig sizes the GPT benchmark: examples/gpt's model on Batch windows of its built-in text,
// AdamW with decoupled weight decay on the matrices (gpt.DecayGroups), gradients clipped to a
// total norm of Clip.
type GPTConfig struct {
	Model                 gpt.Config // Vocab is the built-in text's
	Batch                 int64
	LR, WeightDecay, Clip float64
}

// GPTSmall is the benchmarked size: examples/gpt's defaults (2 layers × 4 heads, width 64,
// context 48, batch 32, no dropout), AdamW lr 3e-3, weight decay 0.1, clip 1.
var GPTSmall = GPTConfig{
	Model: gpt.Config{Block: 48, Embd: 64, Heads: 4, Layers: 2, InitStd: 0.02, ResidualInitStdN: true},
	Batch: 32, LR: 3e-3, WeightDecay: 0.1, Clip: 1,
}

// GPT trains examples/gpt's character-level GPT on one fixed batch the way the example does:
// trainer.StepWith (in a bridge.Scope, no callbacks) with the model's own loss (gpt.Loss over
// every position), the gradients clipped by optim.ClipGradNorm between the backward pass and the
// optimizer, and AdamW. Its twins are GPT in bench/cpp/ref.cpp (ATen functional ops, AdamW and
// clipping written out as torch 1.13 does them) and bench/python/ref.py (torch.nn modules,
// torch.optim.AdamW, clip_grad_norm_), which load the batch and the initial weights that Save
// writes.
type GPT struct {
	Model *gpt.GPT
	X, Y  *bridge.Tensor // [Batch, Block] int64 each: the windows and the next characters
	Opt   *optim.Optimizer
	env   *torchenv.Env
	step  trainer.StepOptions
	cfg   GPTConfig
}

// NewGPT seeds libtorch with Seed, builds the model, and draws the batch from the built-in text
// with a generator seeded with Seed.
func NewGPT(c GPTConfig) (*GPT, error) {
	vocab := gpt.NewVocabulary(gpt.Corpus)
	c.Model.Vocab = vocab.Size()
	xs, ys := gpt.Windows(rand.New(rand.NewPCG(Seed, 1)), vocab.Encode(gpt.Corpus), c.Batch, c.Model.Block)
	m := &GPT{cfg: c}
	err := bridge.Try(func() {
		bridge.ManualSeed(Seed)
		m.Model = gpt.New(c.Model)
		m.X, m.Y = bridge.FromSlice(xs, c.Batch, c.Model.Block), bridge.FromSlice(ys, c.Batch, c.Model.Block)
	})
	if err != nil {
		return nil, err
	}
	o := optim.DefaultAdamW()
	o.LR = c.LR
	if m.Opt, err = optim.NewAdamW(gpt.DecayGroups(m.Model, c.WeightDecay), o); err != nil {
		return nil, fmt.Errorf("workload: gpt: %w", err)
	}
	params := nn.Parameters(m.Model)
	m.env = &torchenv.Env{Model: m.Model, Inputs: m.X, Targets: m.Y}
	m.step = trainer.StepOptions{
		Loss: func(env *torchenv.Env) *bridge.Tensor {
			env.Outputs = m.Model.Forward(env.Inputs)
			return gpt.Loss(env.Outputs, env.Targets)
		},
		BeforeOptimizerStep: func(*torchenv.Env) { optim.ClipGradNorm(params, c.Clip, 2) },
	}
	return m, nil
}

// Step does one training step and returns the loss before the update (detached; the previous
// step's loss and outputs are freed first, as C++ drops its previous result).
func (m *GPT) Step() *bridge.Tensor {
	for _, t := range []*bridge.Tensor{m.env.Loss, m.env.Outputs} {
		if t != nil {
			t.Free()
		}
	}
	m.env.Loss, m.env.Outputs = nil, nil
	if err := trainer.StepWith(nil, m.env, m.Model, m.Opt, m.step); err != nil {
		panic(err) // a *bridge.Error: the harness's bridge.Try reports it
	}
	return m.env.Loss
}

// Run does iters training steps.
func (m *GPT) Run(iters int) {
	for range iters {
		m.Step()
	}
}

func (m *GPT) fresh() *GPT {
	f, err := NewGPT(m.cfg)
	if err != nil {
		panic(err) // the same configuration worked a moment ago
	}
	return f
}

// Check returns the loss of a freshly built model on the batch.
func (m *GPT) Check() float64 {
	f := m.fresh()
	var l float64
	bridge.Scope(func() { l = gpt.Loss(f.Model.Forward(f.X), f.Y).Item() })
	return l
}

// Losses returns the losses of the first steps training steps of a fresh model.
func (m *GPT) Losses(steps int) []float64 { return losses(m.fresh().Step, steps) }

// Save writes the batch, the number of heads and the model's state dict with bridge.SaveNamed:
// "x", "y", "n_head" (a one-element int64 tensor), then "transformer.wte.weight", ... in the model's
// parameter order.
func (m *GPT) Save(path string) error {
	items := []bridge.Named{{Name: "x", Tensor: m.X}, {Name: "y", Tensor: m.Y},
		{Name: "n_head", Tensor: bridge.FromSlice([]int64{m.cfg.Model.Heads})}}
	items = append(items, nn.StateDict(m.Model)...)
	return bridge.SaveNamed(path, items)
}
