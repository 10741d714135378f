package main

import (
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// The UNet's maths is generated ATen ops (package aten) only; bridge/nn supplies named
// parameters (for Adam, nn.To and checkpoints), train/eval mode and the forward hooks FeatureViz
// draws from (each Forward ends with Fire).

// conv is a 2-D convolution with a square kernel, "same" padding for odd kernels
// (aten::conv2d). Weights are He-normal, biases 0.
type conv struct {
	nn.Node
	k            int64
	Weight, Bias *bridge.Tensor // [out, in, k, k], [out]
}

func newConv(in, out, k int64) *conv {
	c := &conv{k: k}
	c.SetKind("Conv2d") // featviz's default layers are the Conv2d ones
	std := math.Sqrt(2 / float64(in*k*k))
	c.Weight = c.Param("weight", aten.MulScalar(aten.Randn([]int64{out, in, k, k}, aten.Options{}), aten.FloatScalar(std)))
	c.Bias = c.Param("bias", aten.Zeros([]int64{out}, aten.Options{}))
	return c
}

func (c *conv) Forward(x *bridge.Tensor) *bridge.Tensor {
	p := c.k / 2
	return c.Fire(x, aten.Conv2d(x, c.Weight, c.Bias, []int64{1, 1}, []int64{p, p}, []int64{1, 1}, 1))
}

// groupNorm normalises groups of channels (aten::group_norm).
type groupNorm struct {
	nn.Node
	groups       int64
	Weight, Bias *bridge.Tensor
}

func newGroupNorm(groups, channels int64) *groupNorm {
	g := &groupNorm{groups: groups}
	g.Weight = g.Param("weight", aten.Ones([]int64{channels}, aten.Options{}))
	g.Bias = g.Param("bias", aten.Zeros([]int64{channels}, aten.Options{}))
	return g
}

func (g *groupNorm) Forward(x *bridge.Tensor) *bridge.Tensor {
	return g.Fire(x, aten.GroupNorm(x, g.groups, g.Weight, g.Bias, 1e-5, true))
}

// convBlock is (conv 3×3, GroupNorm, SiLU) twice: one UNet level.
type convBlock struct {
	nn.Node
	conv1, conv2 *conv
	norm1, norm2 *groupNorm
}

func newConvBlock(in, out int64) *convBlock {
	groups := min(out/4, 8)
	b := &convBlock{conv1: newConv(in, out, 3), norm1: newGroupNorm(groups, out),
		conv2: newConv(out, out, 3), norm2: newGroupNorm(groups, out)}
	b.Add("conv1", b.conv1)
	b.Add("norm1", b.norm1)
	b.Add("conv2", b.conv2)
	b.Add("norm2", b.norm2)
	return b
}

func (b *convBlock) Forward(x *bridge.Tensor) *bridge.Tensor {
	h := aten.Silu(b.norm1.Forward(b.conv1.Forward(x)))
	h = aten.Silu(b.norm2.Forward(b.conv2.Forward(h)))
	return b.Fire(x, h)
}

// upTranspose doubles the resolution with a learned 2×2, stride-2 transposed convolution
// (aten::conv_transpose2d).
type upTranspose struct {
	nn.Node
	Weight, Bias *bridge.Tensor // [in, out, 2, 2], [out]
}

func newUpTranspose(in, out int64) *upTranspose {
	u := &upTranspose{}
	std := math.Sqrt(2 / float64(in))
	u.Weight = u.Param("weight", aten.MulScalar(aten.Randn([]int64{in, out, 2, 2}, aten.Options{}), aten.FloatScalar(std)))
	u.Bias = u.Param("bias", aten.Zeros([]int64{out}, aten.Options{}))
	return u
}

func (u *upTranspose) Forward(x *bridge.Tensor) *bridge.Tensor {
	y := aten.ConvTranspose2d(x, u.Weight, u.Bias, []int64{2, 2}, []int64{0, 0}, []int64{0, 0}, 1, []int64{1, 1})
	return u.Fire(x, y)
}

// upBilinear doubles the resolution by bilinear interpolation (aten::upsample_bilinear2d),
// then mixes channels with a 3×3 convolution.
type upBilinear struct {
	nn.Node
	conv *conv
}

func newUpBilinear(in, out int64) *upBilinear {
	u := &upBilinear{conv: newConv(in, out, 3)}
	u.Add("conv", u.conv)
	return u
}

func (u *upBilinear) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape()
	y := aten.UpsampleBilinear2d(x, []int64{2 * s[2], 2 * s[3]}, false, nil, nil)
	return u.Fire(x, u.conv.Forward(y))
}

// UNet is a two-level UNet for [N, in, H, W] images (H and W divisible by 4) → per-pixel class
// logits [N, classes, H, W]:
//
//	enc1 ─────────────────────────── cat → dec1 → head
//	  └ maxpool → enc2 ───── cat → dec2 ┘
//	                └ maxpool → mid → up2 (transposed conv) ┘, dec2 → up1 (bilinear + conv)
type UNet struct {
	nn.Node
	enc1, enc2, mid, dec2, dec1 *convBlock
	up2                         *upTranspose
	up1                         *upBilinear
	head                        *conv
}

func newUNet(in, classes, width int64) *UNet {
	w := width
	u := &UNet{
		enc1: newConvBlock(in, w), enc2: newConvBlock(w, 2*w), mid: newConvBlock(2*w, 4*w),
		up2: newUpTranspose(4*w, 2*w), dec2: newConvBlock(4*w, 2*w),
		up1: newUpBilinear(2*w, w), dec1: newConvBlock(2*w, w),
		head: newConv(w, classes, 1),
	}
	u.Add("enc1", u.enc1)
	u.Add("enc2", u.enc2)
	u.Add("mid", u.mid)
	u.Add("up2", u.up2)
	u.Add("dec2", u.dec2)
	u.Add("up1", u.up1)
	u.Add("dec1", u.dec1)
	u.Add("head", u.head)
	return u
}

func maxPool2(x *bridge.Tensor) *bridge.Tensor {
	return aten.MaxPool2d(x, []int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false)
}

func (u *UNet) Forward(x *bridge.Tensor) *bridge.Tensor {
	e1 := u.enc1.Forward(x)            // [N, w, H, W]
	e2 := u.enc2.Forward(maxPool2(e1)) // [N, 2w, H/2, W/2]
	m := u.mid.Forward(maxPool2(e2))   // [N, 4w, H/4, W/4]
	d2 := u.up2.Forward(m)             // [N, 2w, H/2, W/2]
	d2 = u.dec2.Forward(aten.Cat([]*bridge.Tensor{d2, e2}, 1))
	d1 := u.up1.Forward(d2) // [N, w, H, W]
	d1 = u.dec1.Forward(aten.Cat([]*bridge.Tensor{d1, e1}, 1))
	return u.Fire(x, u.head.Forward(d1))
}
