package nn

import (
	"fmt"
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// InterpolateOptions say how Interpolate and Upsample resize: give Size or Scale.
type InterpolateOptions struct {
	Size  []int64   // the output's spatial size: one number per spatial dim, or one for all
	Scale []float64 // or the scale factor: one per spatial dim, or one for all
	// Mode is "nearest" (the default), "linear" (3-D input), "bilinear" or "bicubic" (4-D),
	// "trilinear" (5-D) or "area" (adaptive average pooling).
	Mode string
	// AlignCorners, for the interpolating modes (linear, bilinear, bicubic, trilinear), aligns the
	// corner pixels' centres of input and output instead of their outer edges.
	AlignCorners bool
	// RecomputeScaleFactor computes the output size from Scale and then resizes as if Size had
	// been given (PyTorch's recompute_scale_factor=True); by default the scale factors themselves
	// place the samples.
	RecomputeScaleFactor bool
}

// Interpolate resizes the spatial dims of an [N, C, ...] input — PyTorch's F.interpolate, with the
// same ATen kernels and arguments, so the same values and gradients.
func Interpolate(x *bridge.Tensor, o InterpolateOptions) *bridge.Tensor {
	return interpolate(x, o, func(msg string) {
		panic(&bridge.Error{Op: "nn.Interpolate", Msg: msg})
	})
}

// interpolatingDims is the number of spatial dims each interpolating mode takes.
var interpolatingDims = map[string]int{"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}

func interpolate(x *bridge.Tensor, o InterpolateOptions, fail func(string)) *bridge.Tensor {
	failf := func(format string, args ...any) { fail(fmt.Sprintf(format, args...)) }
	mode := o.Mode
	if mode == "" {
		mode = "nearest"
	}
	s := x.Shape()
	dims := len(s) - 2
	if dims < 1 || dims > 3 {
		failf("input of shape %v: expected 3-D, 4-D or 5-D [N, C, ...] input", s)
	}
	switch mode {
	case "nearest", "area":
		if o.AlignCorners {
			failf("align corners is only for the interpolating modes: linear, bilinear, bicubic, trilinear")
		}
	case "linear", "bilinear", "bicubic", "trilinear":
		if want := interpolatingDims[mode]; want != dims {
			failf("mode %s needs a %d-D input, got shape %v", mode, want+2, s)
		}
	default:
		failf("unknown mode %q: nearest, linear, bilinear, bicubic, trilinear or area", mode)
	}
	var size []int64
	var scales []float64
	switch {
	case len(o.Size) > 0 && len(o.Scale) > 0:
		failf("give a size or a scale factor, not both")
	case len(o.Size) > 0:
		if o.RecomputeScaleFactor {
			failf("recompute scale factor is not meaningful with an explicit size")
		}
		size = o.Size
		if len(size) == 1 {
			size = repeatDims(size[0], dims)
		}
		if len(size) != dims {
			failf("input of shape %v has %d spatial dims, size %v has %d", s, dims, o.Size, len(o.Size))
		}
	case len(o.Scale) > 0:
		scales = o.Scale
		if len(scales) == 1 {
			scales = repeatDims(scales[0], dims)
		}
		if len(scales) != dims {
			failf("input of shape %v has %d spatial dims, scale %v has %d", s, dims, o.Scale, len(o.Scale))
		}
		if o.RecomputeScaleFactor || mode == "area" {
			size = make([]int64, dims)
			for i := range size {
				size[i] = int64(math.Floor(float64(s[i+2]) * scales[i]))
			}
			scales = nil
		}
	default:
		failf("give a size or a scale factor")
	}
	switch mode {
	case "nearest":
		switch dims {
		case 1:
			return aten.UpsampleNearest1dVec(x, size, scales)
		case 2:
			return aten.UpsampleNearest2dVec(x, size, scales)
		default:
			return aten.UpsampleNearest3dVec(x, size, scales)
		}
	case "area":
		switch dims {
		case 1:
			return aten.AdaptiveAvgPool1d(x, size)
		case 2:
			return aten.AdaptiveAvgPool2d(x, size)
		default:
			return aten.AdaptiveAvgPool3d(x, size)
		}
	case "linear":
		return aten.UpsampleLinear1dVec(x, size, o.AlignCorners, scales)
	case "bilinear":
		return aten.UpsampleBilinear2dVec(x, size, o.AlignCorners, scales)
	case "bicubic":
		return aten.UpsampleBicubic2dVec(x, size, o.AlignCorners, scales)
	default:
		return aten.UpsampleTrilinear3dVec(x, size, o.AlignCorners, scales)
	}
}

// Upsample resizes its input as Interpolate does — PyTorch's nn.Upsample.
type Upsample struct {
	Node
	Options InterpolateOptions
}

// NewUpsample makes an Upsample layer; the options are checked at the first Forward.
func NewUpsample(o InterpolateOptions) *Upsample {
	u := &Upsample{Options: o}
	u.kind = "Upsample"
	return u
}

// Forward resizes x.
func (u *Upsample) Forward(x *bridge.Tensor) *bridge.Tensor {
	return u.Fire(x, interpolate(x, u.Options, func(msg string) { u.fail("%s", msg) }))
}

// PixelShuffle rearranges [N, C·r², H, W] into [N, C, H·r, W·r] — PyTorch's nn.PixelShuffle (the
// sub-pixel upsampling of super-resolution nets).
type PixelShuffle struct {
	Node
	Factor int64
}

// NewPixelShuffle makes a PixelShuffle layer with upscale factor r.
func NewPixelShuffle(r int64) *PixelShuffle {
	p := &PixelShuffle{Factor: r}
	p.kind = "PixelShuffle"
	if r <= 0 {
		p.fail("upscale factor %d must be positive", r)
	}
	return p
}

// Forward rearranges x.
func (p *PixelShuffle) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape()
	if len(s) < 3 || s[len(s)-3]%(p.Factor*p.Factor) != 0 {
		p.fail("input of shape %v: expected [..., C·%d, H, W]", s, p.Factor*p.Factor)
	}
	return p.Fire(x, aten.PixelShuffle(x, p.Factor))
}

// PixelUnshuffle is PixelShuffle's inverse: [N, C, H·r, W·r] into [N, C·r², H, W] — PyTorch's
// nn.PixelUnshuffle.
type PixelUnshuffle struct {
	Node
	Factor int64
}

// NewPixelUnshuffle makes a PixelUnshuffle layer with downscale factor r.
func NewPixelUnshuffle(r int64) *PixelUnshuffle {
	p := &PixelUnshuffle{Factor: r}
	p.kind = "PixelUnshuffle"
	if r <= 0 {
		p.fail("downscale factor %d must be positive", r)
	}
	return p
}

// Forward rearranges x.
func (p *PixelUnshuffle) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape()
	if len(s) < 3 || s[len(s)-1]%p.Factor != 0 || s[len(s)-2]%p.Factor != 0 {
		p.fail("input of shape %v: expected [..., C, H, W] with H and W divisible by %d", s, p.Factor)
	}
	return p.Fire(x, aten.PixelUnshuffle(x, p.Factor))
}
