package workload

import (
	"errors"
	"fmt"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/jit"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// JITConfig is the optimizer of the TorchScript benchmark: SGD with momentum and (L2) weight
// decay, as torch.optim.SGD computes it. bench/python/ref.py's JIT has the same numbers.
type JITConfig struct {
	LR, Momentum, WeightDecay float64
}

// JITSmall is the benchmarked optimizer: SGD lr 0.05, momentum 0.9, weight decay 5e-4.
var JITSmall = JITConfig{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4}

// ErrNoScriptFile is returned by New for the "jit" workload when Options names no TorchScript
// file or batch: they are written by bench/python/ref.py ("write jit DIR"), so without Python the
// workload cannot run.
var ErrNoScriptFile = errors.New("workload: jit needs the TorchScript file and the batch that bench/python/ref.py writes (Options.Script, Options.Batch)")

// JIT trains a TorchScript module loaded with bridge/jit: one fixed batch, forward in training
// mode, mean cross-entropy, backward and an optim SGD step with momentum, through
// trainer.StepWith (in a bridge.Scope, no callbacks) as `hotcb train` steps any model. The
// module and the batch come from files written by bench/python/ref.py (its JIT: a ResNet-8 for
// 3×32×32 images, torch.jit.script'ed and torch.jit.save'd, and a torch.save dict {"x", "y"});
// Python times the same step on the same file loaded with torch.jit.load, with
// torch.optim.SGD. There is no C++ twin.
type JIT struct {
	Model *jit.Module
	X, Y  *bridge.Tensor // [B, 3, 32, 32] float32, [B] int64
	Opt   *optim.Optimizer
	env   *torchenv.Env
	file  string // the TorchScript file
	cfg   JITConfig
}

// NewJIT loads the TorchScript module in script (in training mode) and the batch in batch (a
// torch.save dict with "x" and "y"), and makes the optimizer.
func NewJIT(script, batch string, c JITConfig) (*JIT, error) {
	if script == "" || batch == "" {
		return nil, ErrNoScriptFile
	}
	in, err := bridge.LoadMap(batch)
	if err != nil {
		return nil, fmt.Errorf("workload: jit batch: %w", err)
	}
	x, y := in["x"], in["y"]
	if x == nil || y == nil {
		return nil, fmt.Errorf("workload: jit batch %s: want tensors x and y", batch)
	}
	m, err := newJIT(script, c)
	if err != nil {
		return nil, err
	}
	m.X, m.Y = x, y
	m.env.Inputs, m.env.Targets = x, y
	return m, nil
}

// newJIT loads the module and makes the optimizer; the batch is the caller's.
func newJIT(script string, c JITConfig) (*JIT, error) {
	mod, err := jit.Load(script, bridge.CPU)
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	nn.Train(mod, true)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(mod)...),
		optim.SGDOptions{LR: c.LR, Momentum: c.Momentum, WeightDecay: c.WeightDecay})
	if err != nil {
		return nil, fmt.Errorf("workload: jit: %w", err)
	}
	return &JIT{Model: mod, Opt: opt, env: &torchenv.Env{Model: mod}, file: script, cfg: c}, nil
}

// Step does one training step and returns the loss before the update (detached; the previous
// step's loss and outputs are freed first, as the other steps drop their previous result).
func (m *JIT) Step() *bridge.Tensor {
	for _, t := range []*bridge.Tensor{m.env.Loss, m.env.Outputs} {
		if t != nil {
			t.Free()
		}
	}
	m.env.Loss, m.env.Outputs = nil, nil
	if err := trainer.StepWith(nil, m.env, m.Model, m.Opt, trainer.StepOptions{}); err != nil {
		panic(err) // a *bridge.Error: the harness's bridge.Try reports it
	}
	return m.env.Loss
}

// Run does iters training steps.
func (m *JIT) Run(iters int) {
	for range iters {
		m.Step()
	}
}

// fresh loads the module again from its file (new weights, new optimizer state, a new
// TorchScript executor) on the same batch.
func (m *JIT) fresh() *JIT {
	f, err := newJIT(m.file, m.cfg)
	if err != nil {
		panic(err) // the same file loaded a moment ago
	}
	f.X, f.Y = m.X, m.Y
	f.env.Inputs, f.env.Targets = m.X, m.Y
	return f
}

// Check returns the loss of a freshly loaded module on the batch (training mode).
func (m *JIT) Check() float64 {
	f := m.fresh()
	defer f.Model.Free()
	var l float64
	bridge.Scope(func() { l = bridge.CrossEntropy(f.Model.Forward(f.X), f.Y).Item() })
	return l
}

// Losses returns the losses of the first steps training steps of a freshly loaded module.
func (m *JIT) Losses(steps int) []float64 {
	f := m.fresh()
	defer f.Model.Free()
	return losses(f.Step, steps)
}
