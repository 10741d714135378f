package nn

import (
	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// ConvOptions tune NewConv1d, NewConv3d, NewConvTranspose1d and NewConvTranspose2d. Each size is
// the same in every spatial dim; zero values mean stride 1, padding 0, dilation 1, groups 1 and
// output padding 0.
type ConvOptions struct {
	Stride, Padding, Dilation, Groups int64
	OutputPadding                     int64 // transposed convolutions only
	NoBias                            bool
}

// convSetup validates sizes, fills the defaults, and makes the weight and bias (weightAndBias). A
// transposed convolution's weight is [in, out/groups, k...], a plain one's [out, in/groups, k...].
func convSetup(n *Node, dims int, transposed bool, in, out, kernel int64, o ConvOptions) (ConvOptions, *bridge.Tensor, *bridge.Tensor) {
	o.Stride, o.Dilation, o.Groups = max(o.Stride, 1), max(o.Dilation, 1), max(o.Groups, 1)
	if in <= 0 || out <= 0 || kernel <= 0 {
		n.fail("in (%d), out (%d) channels and kernel (%d) must be positive", in, out, kernel)
	}
	if in%o.Groups != 0 || out%o.Groups != 0 {
		n.fail("in (%d) and out (%d) channels must be divisible by groups (%d)", in, out, o.Groups)
	}
	if o.Padding < 0 || o.OutputPadding < 0 {
		n.fail("padding (%d) and output padding (%d) must not be negative", o.Padding, o.OutputPadding)
	}
	if !transposed && o.OutputPadding != 0 {
		n.fail("output padding is for transposed convolutions")
	}
	if transposed && o.OutputPadding >= o.Stride && o.OutputPadding >= o.Dilation {
		n.fail("output padding (%d) must be smaller than either stride (%d) or dilation (%d)", o.OutputPadding, o.Stride, o.Dilation)
	}
	shape := []int64{out, in / o.Groups}
	if transposed {
		shape = []int64{in, out / o.Groups}
	}
	for range dims {
		shape = append(shape, kernel)
	}
	w, b := weightAndBias(n, shape, out, o.NoBias)
	return o, w, b
}

// convCheck checks a convolution's input: dims+2 dims (batched) or dims+1 (one sample), in
// channels.
func convCheck(n *Node, x *bridge.Tensor, dims int, in int64, layout string) {
	s := x.Shape()
	if len(s) != dims+2 && len(s) != dims+1 {
		n.fail("input of shape %v: expected %s (or without N)", s, layout)
	}
	if ch := s[len(s)-dims-1]; ch != in {
		n.fail("input of shape %v has %d channels, expected %d", s, ch, in)
	}
}

// repeatDims is v repeated for each of dims dims.
func repeatDims[T any](v T, dims int) []T {
	out := make([]T, dims)
	for i := range out {
		out[i] = v
	}
	return out
}

// Conv1d is a 1-D convolution over [N, C, L] inputs — PyTorch's nn.Conv1d (zero padding).
type Conv1d struct {
	Node
	In, Out, Kernel              int64
	Stride, Padding, Dilation, G int64
	Weight, Bias                 *bridge.Tensor // [Out, In/G, K], [Out] (nil without bias)
}

// NewConv1d makes a Conv1d layer initialised as PyTorch does.
func NewConv1d(in, out, kernel int64, opts ...ConvOptions) *Conv1d {
	c := &Conv1d{In: in, Out: out, Kernel: kernel}
	c.kind = "Conv1d"
	o, w, b := convSetup(&c.Node, 1, false, in, out, kernel, firstOpt(opts))
	c.Stride, c.Padding, c.Dilation, c.G, c.Weight, c.Bias = o.Stride, o.Padding, o.Dilation, o.Groups, w, b
	return c
}

// Forward applies the convolution.
func (c *Conv1d) Forward(x *bridge.Tensor) *bridge.Tensor {
	convCheck(&c.Node, x, 1, c.In, "[N, C, L]")
	y := aten.Conv1d(x, c.Weight, c.Bias, repeatDims(c.Stride, 1), repeatDims(c.Padding, 1), repeatDims(c.Dilation, 1), c.G)
	return c.Fire(x, y)
}

// Conv3d is a 3-D convolution over [N, C, D, H, W] inputs with cubic kernels — PyTorch's
// nn.Conv3d (zero padding).
type Conv3d struct {
	Node
	In, Out, Kernel              int64
	Stride, Padding, Dilation, G int64
	Weight, Bias                 *bridge.Tensor // [Out, In/G, K, K, K], [Out]
}

// NewConv3d makes a Conv3d layer initialised as PyTorch does.
func NewConv3d(in, out, kernel int64, opts ...ConvOptions) *Conv3d {
	c := &Conv3d{In: in, Out: out, Kernel: kernel}
	c.kind = "Conv3d"
	o, w, b := convSetup(&c.Node, 3, false, in, out, kernel, firstOpt(opts))
	c.Stride, c.Padding, c.Dilation, c.G, c.Weight, c.Bias = o.Stride, o.Padding, o.Dilation, o.Groups, w, b
	return c
}

// Forward applies the convolution.
func (c *Conv3d) Forward(x *bridge.Tensor) *bridge.Tensor {
	convCheck(&c.Node, x, 3, c.In, "[N, C, D, H, W]")
	y := aten.Conv3d(x, c.Weight, c.Bias, repeatDims(c.Stride, 3), repeatDims(c.Padding, 3), repeatDims(c.Dilation, 3), c.G)
	return c.Fire(x, y)
}

// ConvTranspose1d is a 1-D transposed convolution over [N, C, L] inputs — PyTorch's
// nn.ConvTranspose1d. The output length is (L-1)·stride - 2·padding + dilation·(K-1) +
// output padding + 1.
type ConvTranspose1d struct {
	Node
	In, Out, Kernel                             int64
	Stride, Padding, OutputPadding, Dilation, G int64
	Weight, Bias                                *bridge.Tensor // [In, Out/G, K], [Out]
}

// NewConvTranspose1d makes a ConvTranspose1d layer initialised as PyTorch does.
func NewConvTranspose1d(in, out, kernel int64, opts ...ConvOptions) *ConvTranspose1d {
	c := &ConvTranspose1d{In: in, Out: out, Kernel: kernel}
	c.kind = "ConvTranspose1d"
	o, w, b := convSetup(&c.Node, 1, true, in, out, kernel, firstOpt(opts))
	c.Stride, c.Padding, c.OutputPadding, c.Dilation, c.G = o.Stride, o.Padding, o.OutputPadding, o.Dilation, o.Groups
	c.Weight, c.Bias = w, b
	return c
}

// Forward applies the transposed convolution.
func (c *ConvTranspose1d) Forward(x *bridge.Tensor) *bridge.Tensor {
	convCheck(&c.Node, x, 1, c.In, "[N, C, L]")
	y := aten.ConvTranspose1d(x, c.Weight, c.Bias, repeatDims(c.Stride, 1), repeatDims(c.Padding, 1), repeatDims(c.OutputPadding, 1), c.G, repeatDims(c.Dilation, 1))
	return c.Fire(x, y)
}

// ConvTranspose2d is a 2-D transposed convolution over [N, C, H, W] inputs with square kernels —
// PyTorch's nn.ConvTranspose2d (a learned upsampling: kernel 2, stride 2 doubles H and W).
type ConvTranspose2d struct {
	Node
	In, Out, Kernel                             int64
	Stride, Padding, OutputPadding, Dilation, G int64
	Weight, Bias                                *bridge.Tensor // [In, Out/G, K, K], [Out]
}

// NewConvTranspose2d makes a ConvTranspose2d layer initialised as PyTorch does.
func NewConvTranspose2d(in, out, kernel int64, opts ...ConvOptions) *ConvTranspose2d {
	c := &ConvTranspose2d{In: in, Out: out, Kernel: kernel}
	c.kind = "ConvTranspose2d"
	o, w, b := convSetup(&c.Node, 2, true, in, out, kernel, firstOpt(opts))
	c.Stride, c.Padding, c.OutputPadding, c.Dilation, c.G = o.Stride, o.Padding, o.OutputPadding, o.Dilation, o.Groups
	c.Weight, c.Bias = w, b
	return c
}

// Forward applies the transposed convolution.
func (c *ConvTranspose2d) Forward(x *bridge.Tensor) *bridge.Tensor {
	convCheck(&c.Node, x, 2, c.In, "[N, C, H, W]")
	y := aten.ConvTranspose2d(x, c.Weight, c.Bias, repeatDims(c.Stride, 2), repeatDims(c.Padding, 2), repeatDims(c.OutputPadding, 2), c.G, repeatDims(c.Dilation, 2))
	return c.Fire(x, y)
}

// firstOpt is opts[0], or the zero value.
func firstOpt[T any](opts []T) T {
	var o T
	if len(opts) > 0 {
		o = opts[0]
	}
	return o
}
