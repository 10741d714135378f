package nn

import (
	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// GroupNorm normalises groups of channels of [N, C, ...] inputs over the group's channels and all
// positions, per sample — PyTorch's nn.GroupNorm (the same in training and evaluation).
type GroupNorm struct {
	Node
	Groups, Channels int64
	Eps              float64
	Weight, Bias     *bridge.Tensor // [C] each, nil without affine
}

// GroupNormOptions tune NewGroupNorm; a zero Eps means 1e-5.
type GroupNormOptions struct {
	Eps      float64
	NoAffine bool
}

// NewGroupNorm makes a GroupNorm of channels channels in groups groups (weight 1, bias 0).
func NewGroupNorm(groups, channels int64, opts ...GroupNormOptions) *GroupNorm {
	o := firstOpt(opts)
	g := &GroupNorm{Groups: groups, Channels: channels, Eps: o.Eps}
	g.kind = "GroupNorm"
	if groups <= 0 || channels%groups != 0 {
		g.fail("%d channels must be divisible by %d groups", channels, groups)
	}
	if g.Eps == 0 {
		g.Eps = 1e-5
	}
	if !o.NoAffine {
		g.Weight = g.Param("weight", aten.Ones([]int64{channels}, aten.Options{}))
		g.Bias = g.Param("bias", aten.Zeros([]int64{channels}, aten.Options{}))
	}
	return g
}

// Forward applies the normalisation.
func (g *GroupNorm) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape()
	if len(s) < 2 || s[1] != g.Channels {
		g.fail("input of shape %v: expected [N, %d, ...]", s, g.Channels)
	}
	return g.Fire(x, aten.GroupNorm(x, g.Groups, g.Weight, g.Bias, g.Eps, true))
}

// InstanceNorm2d normalises each channel of each sample of [N, C, H, W] inputs over its positions —
// PyTorch's nn.InstanceNorm2d, whose defaults (no affine, no running statistics) differ from
// batch norm's. With running statistics it keeps them as BatchNorm2d does (running_mean,
// running_var, num_batches_tracked, which, as in PyTorch, stays 0) and uses them in evaluation
// mode.
type InstanceNorm2d struct {
	Node
	Features                int64
	Eps, Momentum           float64
	Weight, Bias            *bridge.Tensor // nil without affine
	RunningMean, RunningVar *bridge.Tensor // nil without running stats
	NumBatchesTracked       *bridge.Tensor
	affine, track           bool
}

// InstanceNormOptions tune the InstanceNorm layers; zero values mean eps 1e-5, momentum 0.1, no
// affine weight and bias, no running statistics — PyTorch's defaults.
type InstanceNormOptions struct {
	Eps, Momentum     float64
	Affine            bool
	TrackRunningStats bool
}

// NewInstanceNorm2d makes an InstanceNorm2d layer.
func NewInstanceNorm2d(features int64, opts ...InstanceNormOptions) *InstanceNorm2d {
	o := firstOpt(opts)
	l := &InstanceNorm2d{Features: features, Eps: o.Eps, Momentum: o.Momentum, affine: o.Affine, track: o.TrackRunningStats}
	l.kind = "InstanceNorm2d"
	if l.Eps == 0 {
		l.Eps = 1e-5
	}
	if l.Momentum == 0 {
		l.Momentum = 0.1
	}
	if l.affine {
		l.Weight = l.Param("weight", aten.Ones([]int64{features}, aten.Options{}))
		l.Bias = l.Param("bias", aten.Zeros([]int64{features}, aten.Options{}))
	}
	if l.track {
		l.RunningMean = l.Buffer("running_mean", aten.Zeros([]int64{features}, aten.Options{}))
		l.RunningVar = l.Buffer("running_var", aten.Ones([]int64{features}, aten.Options{}))
		l.NumBatchesTracked = l.Buffer("num_batches_tracked", bridge.Scalar(0, bridge.Int64))
	}
	return l
}

// Forward applies the normalisation.
func (l *InstanceNorm2d) Forward(x *bridge.Tensor) *bridge.Tensor {
	return l.Fire(x, l.normalize(x, 2, "[N, C, H, W]"))
}

// normalize is PyTorch's _InstanceNorm.forward for inputs of dims spatial dims, batched or not.
func (l *InstanceNorm2d) normalize(x *bridge.Tensor, dims int, layout string) *bridge.Tensor {
	s := x.Shape()
	if len(s) != dims+2 && len(s) != dims+1 {
		l.fail("input of shape %v: expected %s (or without N)", s, layout)
	}
	// Without affine weights or running statistics the channel count does not matter (PyTorch
	// only warns); with them it must fit.
	if ch := s[len(s)-dims-1]; ch != l.Features && (l.affine || l.track) {
		l.fail("input of shape %v has %d channels, expected %d", s, ch, l.Features)
	}
	in := x
	if len(s) == dims+1 {
		in = aten.Unsqueeze(x, 0)
	}
	y := aten.InstanceNorm(in, l.Weight, l.Bias, l.RunningMean, l.RunningVar, l.Training() || !l.track, l.Momentum, l.Eps, true)
	if len(s) == dims+1 {
		y = aten.SqueezeDim(y, 0)
	}
	return y
}

// InstanceNorm1d is InstanceNorm2d for [N, C, L] inputs — PyTorch's nn.InstanceNorm1d.
type InstanceNorm1d InstanceNorm2d

// NewInstanceNorm1d makes an InstanceNorm1d layer.
func NewInstanceNorm1d(features int64, opts ...InstanceNormOptions) *InstanceNorm1d {
	l := NewInstanceNorm2d(features, opts...)
	l.kind = "InstanceNorm1d"
	return (*InstanceNorm1d)(l)
}

// Forward applies the normalisation.
func (l *InstanceNorm1d) Forward(x *bridge.Tensor) *bridge.Tensor {
	return l.Fire(x, (*InstanceNorm2d)(l).normalize(x, 1, "[N, C, L]"))
}

// InstanceNorm3d is InstanceNorm2d for [N, C, D, H, W] inputs — PyTorch's nn.InstanceNorm3d.
type InstanceNorm3d InstanceNorm2d

// NewInstanceNorm3d makes an InstanceNorm3d layer.
func NewInstanceNorm3d(features int64, opts ...InstanceNormOptions) *InstanceNorm3d {
	l := NewInstanceNorm2d(features, opts...)
	l.kind = "InstanceNorm3d"
	return (*InstanceNorm3d)(l)
}

// Forward applies the normalisation.
func (l *InstanceNorm3d) Forward(x *bridge.Tensor) *bridge.Tensor {
	return l.Fire(x, (*InstanceNorm2d)(l).normalize(x, 3, "[N, C, D, H, W]"))
}
