package workload

import (
	"fmt"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/dist"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// DDPConfig sizes the data-parallel benchmark: models.NewSmallCNN on Channels×Size×Size
// data.Shapes images of Classes classes, Batch images per rank and step, Ranks ranks, SGD with
// momentum. bench/python/ref.py's DDP reads the same numbers from the file SaveDDPInputs writes
// (the batch size from the shares, the optimizer from its own constants).
type DDPConfig struct {
	Channels, Size, Classes int
	Batch                   int // images per rank and step
	Ranks                   int // the ranks whose shares the saved images hold
	LR, Momentum            float64
}

// DDPSmall is the benchmarked size: the CNN row's model and images, 64 per rank, 2 ranks, SGD
// lr 0.05 with momentum 0.9.
var DDPSmall = DDPConfig{Channels: 1, Size: 28, Classes: 6, Batch: 64, Ranks: 2, LR: 0.05, Momentum: 0.9}

// SaveDDPInputs writes the data-parallel benchmark's inputs with bridge.SaveNamed: "x" and "y",
// Ranks×Batch data.Shapes images (seed Seed) and labels, then the state dict of
// models.NewSmallCNN built after bridge.ManualSeed(Seed), PyTorch's names. Every rank of both
// sides loads this file (NewDDPRank, ref.py's DDP).
func SaveDDPInputs(path string, c DDPConfig) error {
	ds, err := data.Shapes(data.ShapesOptions{N: c.Ranks * c.Batch, Size: c.Size, Channels: c.Channels,
		Classes: c.Classes, Seed: Seed})
	if err != nil {
		return fmt.Errorf("workload: ddp images: %w", err)
	}
	items := []bridge.Named{{Name: "x", Tensor: ds.Images}, {Name: "y", Tensor: ds.Labels}}
	err = bridge.Try(func() {
		bridge.ManualSeed(Seed)
		items = append(items, nn.StateDict(models.NewSmallCNN(int64(c.Channels), int64(c.Classes)))...)
	})
	if err != nil {
		return err
	}
	return bridge.SaveNamed(path, items)
}

// DDPRank is one rank's part of the data-parallel benchmark: its share of the saved images
// (the indices data.NewDistributedSampler gives it for epoch 0, shuffled with seed Seed: the
// same as torch.utils.data.DistributedSampler's), the saved initial weights, and a training
// step through trainer.StepWith (in a bridge.Scope, no callbacks) whose forward pass runs
// through dist.DDP — the gradients are averaged over the group in the backward pass — then
// optim SGD with momentum. With no group (Group nil) it trains the same share on its own, as one
// process: the scaling baseline. Its twin is DDP in bench/python/ref.py
// (torch.nn.parallel.DistributedDataParallel over Gloo, torch.optim.SGD).
type DDPRank struct {
	Group *dist.Group // nil: one process, no DDP
	Rank  int         // whose share of the images this process trains on
	X, Y  *bridge.Tensor
	Model *models.SmallCNN
	DDP   *dist.DDP // nil without a group
	Opt   *optim.Optimizer
	env   *torchenv.Env
	state []bridge.Named // the saved initial weights
	cfg   DDPConfig
}

// NewDDPRank loads path (written by SaveDDPInputs for c) and builds rank's model, its DDP over g
// (every rank of g calls NewDDPRank together: NewDDP is collective), and the optimizer. With g
// nil there is no DDP and rank only picks the share.
func NewDDPRank(path string, g *dist.Group, rank int, c DDPConfig) (*DDPRank, error) {
	items, err := bridge.LoadNamed(path)
	if err != nil {
		return nil, fmt.Errorf("workload: ddp inputs: %w", err)
	}
	if g != nil && (g.Size() != c.Ranks || g.Rank() != rank) {
		return nil, fmt.Errorf("workload: ddp: rank %d of %d, the inputs are for %d ranks", g.Rank(), g.Size(), c.Ranks)
	}
	var x, y *bridge.Tensor
	var state []bridge.Named
	for _, it := range items {
		switch it.Name {
		case "x":
			x = it.Tensor
		case "y":
			y = it.Tensor
		default:
			state = append(state, it)
		}
	}
	if x == nil || y == nil {
		return nil, fmt.Errorf("workload: ddp inputs %s: want tensors x and y", path)
	}
	n := int(y.Size(0))
	if n != c.Ranks*c.Batch {
		return nil, fmt.Errorf("workload: ddp inputs %s: %d images, want %d ranks × %d", path, n, c.Ranks, c.Batch)
	}
	s, err := data.NewDistributedSampler(n, rank, c.Ranks, data.DistributedSamplerOptions{Shuffle: true, Seed: Seed})
	if err != nil {
		return nil, fmt.Errorf("workload: ddp: %w", err)
	}
	m := &DDPRank{Group: g, Rank: rank, state: state, cfg: c}
	err = bridge.Try(func() {
		ds := &data.TensorDataset{Images: x, Labels: y}
		m.X, m.Y = ds.Batch(s.Indices(0))
	})
	if err != nil {
		return nil, err
	}
	if err := m.build(); err != nil {
		return nil, err
	}
	return m, nil
}

// build makes a model with the saved weights, its DDP and its optimizer.
func (m *DDPRank) build() error {
	c := m.cfg
	err := bridge.Try(func() {
		m.Model = models.NewSmallCNN(int64(c.Channels), int64(c.Classes))
	})
	if err != nil {
		return err
	}
	if err := nn.LoadStateDict(m.Model, m.state, true); err != nil {
		return fmt.Errorf("workload: ddp: %w", err)
	}
	if m.Group != nil {
		if m.DDP, err = dist.NewDDP(m.Group, m.Model, dist.DDPOptions{}); err != nil {
			return fmt.Errorf("workload: ddp: %w", err)
		}
	}
	m.Opt, err = optim.NewSGD(optim.Params(nn.Parameters(m.Model)...), optim.SGDOptions{LR: c.LR, Momentum: c.Momentum})
	if err != nil {
		return fmt.Errorf("workload: ddp: %w", err)
	}
	m.env = &torchenv.Env{Model: m.Model, Inputs: m.X, Targets: m.Y}
	return nil
}

// forward is the model's forward pass, through the DDP when there is one.
func (m *DDPRank) forward(x *bridge.Tensor) *bridge.Tensor {
	if m.DDP != nil {
		return m.DDP.Forward(x)
	}
	return m.Model.Forward(x)
}

// Step does one training step and returns the loss before the update (detached; the previous
// step's loss and outputs are freed first).
func (m *DDPRank) Step() *bridge.Tensor {
	for _, t := range []*bridge.Tensor{m.env.Loss, m.env.Outputs} {
		if t != nil {
			t.Free()
		}
	}
	m.env.Loss, m.env.Outputs = nil, nil
	err := trainer.StepWith(nil, m.env, m.Model, m.Opt, trainer.StepOptions{
		Loss: func(env *torchenv.Env) *bridge.Tensor {
			env.Outputs = m.forward(env.Inputs)
			return bridge.CrossEntropy(env.Outputs, env.Targets)
		},
	})
	if err != nil {
		panic(err) // a *bridge.Error: the caller's bridge.Try reports it
	}
	return m.env.Loss
}

// Run does iters training steps.
func (m *DDPRank) Run(iters int) {
	for range iters {
		m.Step()
	}
}

// fresh builds a new model (and DDP: collective) from the saved weights, on the same share.
func (m *DDPRank) fresh() *DDPRank {
	f := &DDPRank{Group: m.Group, Rank: m.Rank, X: m.X, Y: m.Y, state: m.state, cfg: m.cfg}
	if err := f.build(); err != nil {
		panic(&bridge.Error{Op: "workload ddp", Msg: err.Error(), Err: err})
	}
	return f
}

// Close unhooks the DDP's Reducer.
func (m *DDPRank) Close() {
	if m.DDP != nil {
		m.DDP.Close()
	}
}

// Check returns the loss of the saved initial model on this rank's share (training mode, no
// DDP: local, not collective).
func (m *DDPRank) Check() float64 {
	c := m.cfg
	model := models.NewSmallCNN(int64(c.Channels), int64(c.Classes))
	if err := nn.LoadStateDict(model, m.state, true); err != nil {
		panic(&bridge.Error{Op: "workload ddp", Msg: err.Error(), Err: err})
	}
	var l float64
	bridge.Scope(func() { l = bridge.CrossEntropy(model.Forward(m.X), m.Y).Item() })
	return l
}

// Losses returns this rank's losses of the first steps training steps of a fresh model (and a
// fresh DDP: every rank of the group calls it together).
func (m *DDPRank) Losses(steps int) []float64 {
	f := m.fresh()
	defer f.Close()
	return losses(f.Step, steps)
}
