package nn

import (
	"strconv"

	"github.com/hotcb/hotcb/aten"
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

// NewSiLU returns x·sigmoid(x) (swish) as a layer.
func NewSiLU() *Func { return newFunc("SiLU", aten.Silu) }

// NewMish returns x·tanh(softplus(x)) as a layer.
func NewMish() *Func { return newFunc("Mish", aten.Mish) }

// NewHardswish returns x·relu6(x+3)/6 as a layer.
func NewHardswish() *Func { return newFunc("Hardswish", aten.Hardswish) }

// NewLeakyReLU returns max(x, 0) + slope·min(x, 0) as a layer (PyTorch's default slope is 0.01).
func NewLeakyReLU(slope float64) *Func {
	return newFunc("LeakyReLU", func(x *bridge.Tensor) *bridge.Tensor { return aten.LeakyRelu(x, aten.FloatScalar(slope)) })
}

// NewELU returns x for x > 0 and alpha·(eˣ-1) otherwise as a layer (PyTorch's default alpha is 1).
func NewELU(alpha float64) *Func {
	one := aten.IntScalar(1)
	return newFunc("ELU", func(x *bridge.Tensor) *bridge.Tensor { return aten.Elu(x, aten.FloatScalar(alpha), one, one) })
}

// NewSoftplus returns log(1+e^(beta·x))/beta as a layer, x itself where beta·x > threshold
// (PyTorch's defaults are beta 1, threshold 20).
func NewSoftplus(beta, threshold float64) *Func {
	return newFunc("Softplus", func(x *bridge.Tensor) *bridge.Tensor {
		return aten.Softplus(x, aten.FloatScalar(beta), aten.FloatScalar(threshold))
	})
}

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
	layers []Module `nn:"-"` // its children, registered by Append
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
