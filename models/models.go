// Package models holds the small reference networks that hotcb-go's demo, tests and benchmarks
// train: a CNN for 28×28/32×32 images and an MLP. Each mirrors a PyTorch definition given in its
// comment, with the same parameter names, so checkpoints move between the two.
package models

import (
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// SmallCNN is, in PyTorch:
//
//	features = nn.Sequential(
//	    nn.Conv2d(C, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
//	    nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
//	    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
//	classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, classes))
type SmallCNN struct {
	nn.Node
	Features   *nn.Sequential
	Classifier *nn.Sequential
}

// NewSmallCNN builds the network for images with the given channels.
func NewSmallCNN(channels, classes int64) *SmallCNN {
	m := &SmallCNN{
		Features: nn.NewSequential(
			nn.NewConv2d(channels, 16, 3, nn.Conv2dOptions{Padding: 1}), nn.NewBatchNorm2d(16), nn.NewReLU(), nn.NewMaxPool2d(2, 0, 0),
			nn.NewConv2d(16, 32, 3, nn.Conv2dOptions{Padding: 1}), nn.NewBatchNorm2d(32), nn.NewReLU(), nn.NewMaxPool2d(2, 0, 0),
			nn.NewConv2d(32, 64, 3, nn.Conv2dOptions{Padding: 1}), nn.NewReLU(), nn.NewAdaptiveAvgPool2d(1, 1),
		),
		Classifier: nn.NewSequential(nn.NewFlatten(1, -1), nn.NewLinear(64, classes)),
	}
	m.Add("features", m.Features)
	m.Add("classifier", m.Classifier)
	return m
}

// Forward returns class logits.
func (m *SmallCNN) Forward(x *bridge.Tensor) *bridge.Tensor {
	return m.Fire(x, m.Classifier.Forward(m.Features.Forward(x)))
}

// MLP is nn.Sequential(nn.Flatten(), nn.Linear(in, hidden), nn.ReLU(), nn.Linear(hidden, out)).
func MLP(in, hidden, out int64) *nn.Sequential {
	return nn.NewSequential(nn.NewFlatten(1, -1), nn.NewLinear(in, hidden), nn.NewReLU(), nn.NewLinear(hidden, out))
}
