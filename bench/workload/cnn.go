package workload

import (
	"fmt"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/models"
)

// CNNConfig sizes the SmallCNN benchmark: images of Channels×Size×Size from data.Shapes, Classes
// classes (the first Classes of data.ShapeClasses), Batch images per step.
type CNNConfig struct {
	Channels, Size, Classes, Batch int
	LR                             float64
}

// CNNSmall is the benchmarked size: one batch of 64 grey 28×28 Shapes images, 6 classes.
var CNNSmall = CNNConfig{Channels: 1, Size: 28, Classes: 6, Batch: 64, LR: 0.05}

// CNN trains models.SmallCNN on one fixed batch with plain SGD: forward in training mode (batch
// norm with batch statistics, running statistics updated), cross-entropy, backward, then
// p -= LR*grad with the gradient set to none. Its twins are CNN in bench/cpp/ref.cpp (ATen
// functional ops) and bench/python/ref.py (torch.nn), which load the batch and the initial
// weights that Save writes, so all three start from the same bytes.
type CNN struct {
	Model  *models.SmallCNN
	X, Y   *bridge.Tensor // [Batch, C, S, S] float32, [Batch] int64
	Params []*bridge.Tensor
	LR     float64
	Free   bool // release the loss of each step at once
	// Scoped runs each step inside bridge.Scope with the update in one bridge.AddGradsInPlace
	// call (see MLP.Scoped); Step then returns nil.
	Scoped bool
	cfg    CNNConfig
}

// NewCNN seeds libtorch with Seed, draws the batch from data.Shapes (seed Seed) and builds the
// model with PyTorch's default initialisation.
func NewCNN(c CNNConfig) (*CNN, error) {
	ds, err := data.Shapes(data.ShapesOptions{N: c.Batch, Size: c.Size, Channels: c.Channels,
		Classes: c.Classes, Seed: Seed})
	if err != nil {
		return nil, fmt.Errorf("workload: cnn batch: %w", err)
	}
	m := &CNN{X: ds.Images, Y: ds.Labels, LR: c.LR, cfg: c}
	err = bridge.Try(func() {
		bridge.ManualSeed(Seed)
		m.Model = models.NewSmallCNN(int64(c.Channels), int64(c.Classes))
		m.Params = nn.Parameters(m.Model)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Loss runs the forward pass in training mode and returns the mean cross-entropy.
func (m *CNN) Loss() *bridge.Tensor {
	return bridge.CrossEntropy(m.Model.Forward(m.X), m.Y)
}

// Step does one training step and returns the loss before the update (nil with Free).
func (m *CNN) Step() *bridge.Tensor {
	if m.Scoped {
		bridge.Scope(func() {
			m.Loss().Backward()
			bridge.AddGradsInPlace(m.Params, -m.LR)
		})
		return nil
	}
	loss := m.Loss()
	loss.Backward()
	bridge.NoGrad(func() {
		for _, p := range m.Params {
			p.AddGradInPlace(-m.LR) // p -= LR*grad; grad = None
		}
	})
	if m.Free {
		loss.Free()
		return nil
	}
	return loss
}

// Run does iters training steps.
func (m *CNN) Run(iters int) {
	for range iters {
		if l := m.Step(); l != nil {
			sink = l
		}
	}
}

// fresh builds a new CNN of the same configuration.
func (m *CNN) fresh() *CNN {
	f, err := NewCNN(m.cfg)
	if err != nil {
		panic(err) // the same configuration worked a moment ago
	}
	return f
}

// Check returns the first-step loss of a freshly built model.
func (m *CNN) Check() float64 { return m.fresh().Loss().Item() }

// Losses returns the losses of the first steps training steps of a fresh model.
func (m *CNN) Losses(steps int) []float64 { return losses(m.fresh().Step, steps) }

// Save writes the batch and the model's state dict (parameters and buffers, PyTorch's names)
// with bridge.SaveNamed: "x", "y", then "features.0.weight", ... Python's torch.load reads it as
// a dict, C++ with torch::jit::pickle_load.
func (m *CNN) Save(path string) error {
	items := []bridge.Named{{Name: "x", Tensor: m.X}, {Name: "y", Tensor: m.Y}}
	items = append(items, nn.StateDict(m.Model)...)
	return bridge.SaveNamed(path, items)
}

// losses runs steps training steps with step and returns the loss of each (before its update).
func losses(step func() *bridge.Tensor, steps int) []float64 {
	out := make([]float64, steps)
	for i := range out {
		out[i] = step().Item()
	}
	return out
}
