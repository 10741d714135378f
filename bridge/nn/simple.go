package nn

import (
	"strconv"

	"github.com/hotcb/hotcb/bridge"
)

// Func is a parameter-free layer made from a function (ReLU, Flatten, pooling ...).
type Func struct {
	Node
	f func(*bridge.Tensor) *bridge.Tensor
}

func newFunc(kind string, f func(*bridge.Tensor) *bridge.Tensor) *Func {
	m := &Func{f: f}
	m.kind = kind
	return m
}

// Forward applies the function.
func (m *Func) Forward(x *bridge.Tensor) *bridge.Tensor { return m.Fire(x, m.f(x)) }

// NewReLU returns max(x, 0) as a layer.
func NewReLU() *Func { return newFunc("ReLU", (*bridge.Tensor).Relu) }

// NewGELU returns the exact GELU as a layer.
func NewGELU() *Func { return newFunc("GELU", (*bridge.Tensor).Gelu) }

// NewTanh returns tanh as a layer.
func NewTanh() *Func { return newFunc("Tanh", (*bridge.Tensor).Tanh) }

// NewSigmoid returns the logistic function as a layer.
func NewSigmoid() *Func { return newFunc("Sigmoid", (*bridge.Tensor).Sigmoid) }

// NewFlatten merges dims start..end (PyTorch's nn.Flatten default is 1, -1).
func NewFlatten(start, end int64) *Func {
	return newFunc("Flatten", func(x *bridge.Tensor) *bridge.Tensor { return x.Flatten(start, end) })
}

// NewMaxPool2d takes maxima over kernel×kernel windows (stride 0 means the kernel size).
func NewMaxPool2d(kernel, stride, padding int64) *Func {
	o := bridge.Pool2dOptions{Kernel: [2]int64{kernel, kernel}, Stride: [2]int64{stride, stride}, Padding: [2]int64{padding, padding}}
	return newFunc("MaxPool2d", func(x *bridge.Tensor) *bridge.Tensor { return bridge.MaxPool2d(x, o) })
}

// NewAvgPool2d averages over kernel×kernel windows (stride 0 means the kernel size).
func NewAvgPool2d(kernel, stride, padding int64) *Func {
	o := bridge.Pool2dOptions{Kernel: [2]int64{kernel, kernel}, Stride: [2]int64{stride, stride}, Padding: [2]int64{padding, padding}, CountIncludePad: true}
	return newFunc("AvgPool2d", func(x *bridge.Tensor) *bridge.Tensor { return bridge.AvgPool2d(x, o) })
}

// NewAdaptiveAvgPool2d averages into an h×w output.
func NewAdaptiveAvgPool2d(h, w int64) *Func {
	return newFunc("AdaptiveAvgPool2d", func(x *bridge.Tensor) *bridge.Tensor { return bridge.AdaptiveAvgPool2d(x, h, w) })
}

// Sequential runs its children in order; they are named "0", "1", ... as in PyTorch.
type Sequential struct {
	Node
	layers []Module
}

// NewSequential chains layers.
func NewSequential(layers ...Module) *Sequential {
	s := &Sequential{}
	s.kind = "Sequential"
	for _, l := range layers {
		s.Append(l)
	}
	return s
}

// Append adds a layer at the end.
func (s *Sequential) Append(m Module) {
	s.Add(strconv.Itoa(len(s.layers)), m)
	s.layers = append(s.layers, m)
}

// Len is the number of layers.
func (s *Sequential) Len() int { return len(s.layers) }

// At returns layer i.
func (s *Sequential) At(i int) Module { return s.layers[i] }

// Forward runs the layers in order.
func (s *Sequential) Forward(x *bridge.Tensor) *bridge.Tensor {
	in := x
	for _, l := range s.layers {
		x = l.Forward(x)
	}
	return s.Fire(in, x)
}
