package nn_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// layerCase is one layer built here and in PyTorch (py, an expression over torch.nn as nn).
type layerCase struct {
	name  string
	build func() nn.Module
	py    string
	in    bridge.Shape
	train bool    // forward in training mode (evaluation otherwise)
	scale float64 // input scale (1 if 0)
}

func layerCases() []layerCase {
	up := func(o nn.InterpolateOptions) func() nn.Module { return func() nn.Module { return nn.NewUpsample(o) } }
	return []layerCase{
		// the layers that were here, now initialised as PyTorch's
		{name: "linear", build: func() nn.Module { return nn.NewLinear(5, 3) }, py: "nn.Linear(5, 3)", in: bridge.Shape{4, 5}},
		{name: "conv2d", build: func() nn.Module { return nn.NewConv2d(4, 6, 3, nn.Conv2dOptions{Groups: 2, Padding: 1}) },
			py: "nn.Conv2d(4, 6, 3, groups=2, padding=1)", in: bridge.Shape{2, 4, 5, 5}},

		{name: "conv1d", build: func() nn.Module { return nn.NewConv1d(3, 6, 3, nn.ConvOptions{Stride: 2, Padding: 1}) },
			py: "nn.Conv1d(3, 6, 3, stride=2, padding=1)", in: bridge.Shape{2, 3, 11}},
		{name: "conv1d_groups_dilation", build: func() nn.Module {
			return nn.NewConv1d(3, 6, 3, nn.ConvOptions{Dilation: 2, Groups: 3, NoBias: true})
		}, py: "nn.Conv1d(3, 6, 3, dilation=2, groups=3, bias=False)", in: bridge.Shape{2, 3, 12}},
		{name: "conv1d_unbatched", build: func() nn.Module { return nn.NewConv1d(2, 3, 2) }, py: "nn.Conv1d(2, 3, 2)", in: bridge.Shape{2, 6}},
		{name: "conv3d", build: func() nn.Module { return nn.NewConv3d(2, 4, 3, nn.ConvOptions{Padding: 1}) },
			py: "nn.Conv3d(2, 4, 3, padding=1)", in: bridge.Shape{2, 2, 5, 6, 4}},
		{name: "conv3d_stride", build: func() nn.Module { return nn.NewConv3d(2, 4, 2, nn.ConvOptions{Stride: 2, Groups: 2}) },
			py: "nn.Conv3d(2, 4, 2, stride=2, groups=2)", in: bridge.Shape{1, 2, 4, 4, 4}},
		{name: "conv_transpose1d", build: func() nn.Module {
			return nn.NewConvTranspose1d(4, 3, 3, nn.ConvOptions{Stride: 2, Padding: 1, OutputPadding: 1})
		}, py: "nn.ConvTranspose1d(4, 3, 3, stride=2, padding=1, output_padding=1)", in: bridge.Shape{2, 4, 7}},
		{name: "conv_transpose1d_groups", build: func() nn.Module {
			return nn.NewConvTranspose1d(4, 6, 3, nn.ConvOptions{Groups: 2, Dilation: 2})
		}, py: "nn.ConvTranspose1d(4, 6, 3, groups=2, dilation=2)", in: bridge.Shape{2, 4, 5}},
		{name: "conv_transpose2d", build: func() nn.Module { return nn.NewConvTranspose2d(4, 2, 2, nn.ConvOptions{Stride: 2}) },
			py: "nn.ConvTranspose2d(4, 2, 2, stride=2)", in: bridge.Shape{2, 4, 5, 5}},
		{name: "conv_transpose2d_full", build: func() nn.Module {
			return nn.NewConvTranspose2d(4, 6, 3, nn.ConvOptions{Stride: 2, Padding: 1, OutputPadding: 1, Groups: 2, NoBias: true})
		}, py: "nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False)", in: bridge.Shape{2, 4, 4, 3}},

		{name: "upsample_nearest_scale", build: up(nn.InterpolateOptions{Scale: []float64{2}}),
			py: "nn.Upsample(scale_factor=2)", in: bridge.Shape{2, 3, 4, 5}},
		{name: "upsample_nearest_size", build: up(nn.InterpolateOptions{Size: []int64{7, 3}}),
			py: "nn.Upsample(size=(7, 3))", in: bridge.Shape{2, 3, 4, 5}},
		{name: "upsample_nearest_1d_frac", build: up(nn.InterpolateOptions{Scale: []float64{1.7}}),
			py: "nn.Upsample(scale_factor=1.7)", in: bridge.Shape{2, 3, 5}},
		{name: "upsample_nearest_3d", build: up(nn.InterpolateOptions{Scale: []float64{2, 1, 1.5}}),
			py: "nn.Upsample(scale_factor=(2, 1, 1.5))", in: bridge.Shape{1, 2, 2, 3, 4}},
		{name: "upsample_bilinear", build: up(nn.InterpolateOptions{Scale: []float64{2}, Mode: "bilinear"}),
			py: "nn.Upsample(scale_factor=2, mode='bilinear')", in: bridge.Shape{2, 3, 4, 5}},
		{name: "upsample_bilinear_frac", build: up(nn.InterpolateOptions{Scale: []float64{1.3, 2.6}, Mode: "bilinear"}),
			py: "nn.Upsample(scale_factor=(1.3, 2.6), mode='bilinear')", in: bridge.Shape{2, 3, 4, 5}},
		{name: "upsample_bilinear_recompute", build: up(nn.InterpolateOptions{Scale: []float64{1.3}, Mode: "bilinear", RecomputeScaleFactor: true}),
			py: "nn.Upsample(scale_factor=1.3, mode='bilinear', recompute_scale_factor=True)", in: bridge.Shape{2, 3, 4, 5}},
		{name: "upsample_bilinear_align", build: up(nn.InterpolateOptions{Size: []int64{9, 6}, Mode: "bilinear", AlignCorners: true}),
			py: "nn.Upsample(size=(9, 6), mode='bilinear', align_corners=True)", in: bridge.Shape{2, 3, 4, 5}},
		{name: "upsample_bicubic", build: up(nn.InterpolateOptions{Scale: []float64{2}, Mode: "bicubic"}),
			py: "nn.Upsample(scale_factor=2, mode='bicubic')", in: bridge.Shape{1, 2, 4, 4}},
		{name: "upsample_linear", build: up(nn.InterpolateOptions{Size: []int64{11}, Mode: "linear", AlignCorners: true}),
			py: "nn.Upsample(size=11, mode='linear', align_corners=True)", in: bridge.Shape{2, 3, 5}},
		{name: "upsample_trilinear", build: up(nn.InterpolateOptions{Scale: []float64{2}, Mode: "trilinear"}),
			py: "nn.Upsample(scale_factor=2, mode='trilinear')", in: bridge.Shape{1, 2, 2, 3, 2}},
		{name: "upsample_area", build: up(nn.InterpolateOptions{Scale: []float64{0.5}, Mode: "area"}),
			py: "nn.Upsample(scale_factor=0.5, mode='area')", in: bridge.Shape{2, 3, 8, 6}},

		{name: "pixel_shuffle", build: func() nn.Module { return nn.NewPixelShuffle(2) }, py: "nn.PixelShuffle(2)", in: bridge.Shape{2, 8, 3, 3}},
		{name: "pixel_unshuffle", build: func() nn.Module { return nn.NewPixelUnshuffle(2) }, py: "nn.PixelUnshuffle(2)", in: bridge.Shape{2, 2, 4, 6}},

		{name: "group_norm", build: func() nn.Module { return nn.NewGroupNorm(2, 6) }, py: "nn.GroupNorm(2, 6)", in: bridge.Shape{2, 6, 4, 4}, train: true},
		{name: "group_norm_noaffine_1d", build: func() nn.Module { return nn.NewGroupNorm(3, 6, nn.GroupNormOptions{Eps: 1e-3, NoAffine: true}) },
			py: "nn.GroupNorm(3, 6, eps=1e-3, affine=False)", in: bridge.Shape{2, 6, 5}},
		{name: "instance_norm2d", build: func() nn.Module { return nn.NewInstanceNorm2d(3) }, py: "nn.InstanceNorm2d(3)", in: bridge.Shape{2, 3, 5, 5}, train: true},
		{name: "instance_norm2d_unbatched", build: func() nn.Module { return nn.NewInstanceNorm2d(3, nn.InstanceNormOptions{Affine: true}) },
			py: "nn.InstanceNorm2d(3, affine=True)", in: bridge.Shape{3, 4, 5}, train: true},
		{name: "instance_norm2d_track_train", build: func() nn.Module {
			return nn.NewInstanceNorm2d(3, nn.InstanceNormOptions{Affine: true, TrackRunningStats: true, Momentum: 0.3})
		}, py: "nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)", in: bridge.Shape{2, 3, 4, 4}, train: true},
		{name: "instance_norm2d_track_eval", build: func() nn.Module {
			return nn.NewInstanceNorm2d(3, nn.InstanceNormOptions{Affine: true, TrackRunningStats: true})
		}, py: "nn.InstanceNorm2d(3, affine=True, track_running_stats=True)", in: bridge.Shape{2, 3, 4, 4}},
		{name: "instance_norm1d", build: func() nn.Module { return nn.NewInstanceNorm1d(4, nn.InstanceNormOptions{Affine: true, Eps: 1e-3}) },
			py: "nn.InstanceNorm1d(4, affine=True, eps=1e-3)", in: bridge.Shape{2, 4, 7}, train: true},
		{name: "instance_norm3d", build: func() nn.Module { return nn.NewInstanceNorm3d(2) }, py: "nn.InstanceNorm3d(2)", in: bridge.Shape{2, 2, 3, 4, 5}},
		{name: "batch_norm1d_2d_train", build: func() nn.Module { return nn.NewBatchNorm1d(5) }, py: "nn.BatchNorm1d(5)", in: bridge.Shape{8, 5}, train: true},
		{name: "batch_norm1d_3d_train", build: func() nn.Module { return nn.NewBatchNorm1d(5, nn.BatchNormOptions{Momentum: 0.2}) },
			py: "nn.BatchNorm1d(5, momentum=0.2)", in: bridge.Shape{4, 5, 6}, train: true},
		{name: "batch_norm1d_eval", build: func() nn.Module { return nn.NewBatchNorm1d(5) }, py: "nn.BatchNorm1d(5)", in: bridge.Shape{4, 5, 3}},
		{name: "batch_norm1d_noaffine", build: func() nn.Module { return nn.NewBatchNorm1d(5, nn.BatchNormOptions{NoAffine: true}) },
			py: "nn.BatchNorm1d(5, affine=False)", in: bridge.Shape{6, 5}, train: true},
		{name: "batch_norm3d_train", build: func() nn.Module { return nn.NewBatchNorm3d(3) }, py: "nn.BatchNorm3d(3)", in: bridge.Shape{2, 3, 3, 4, 4}, train: true},

		{name: "dropout2d_train", build: func() nn.Module { return nn.NewDropout2d(0.5) }, py: "nn.Dropout2d(0.5)", in: bridge.Shape{4, 6, 3, 3}, train: true},
		{name: "dropout2d_3d_train", build: func() nn.Module { return nn.NewDropout2d(0.3) }, py: "nn.Dropout2d(0.3)", in: bridge.Shape{4, 6, 5}, train: true},
		{name: "dropout2d_eval", build: func() nn.Module { return nn.NewDropout2d(0.5) }, py: "nn.Dropout2d(0.5)", in: bridge.Shape{4, 6, 3, 3}},

		{name: "silu", build: func() nn.Module { return nn.NewSiLU() }, py: "nn.SiLU()", in: bridge.Shape{3, 4, 5}, scale: 3},
		{name: "mish", build: func() nn.Module { return nn.NewMish() }, py: "nn.Mish()", in: bridge.Shape{3, 4, 5}, scale: 3},
		{name: "leaky_relu", build: func() nn.Module { return nn.NewLeakyReLU(0.2) }, py: "nn.LeakyReLU(0.2)", in: bridge.Shape{3, 4, 5}, scale: 3},
		{name: "elu", build: func() nn.Module { return nn.NewELU(0.7) }, py: "nn.ELU(0.7)", in: bridge.Shape{3, 4, 5}, scale: 3},
		{name: "softplus", build: func() nn.Module { return nn.NewSoftplus(2, 5) }, py: "nn.Softplus(2, 5)", in: bridge.Shape{3, 4, 5}, scale: 3},
		{name: "hardswish", build: func() nn.Module { return nn.NewHardswish() }, py: "nn.Hardswish()", in: bridge.Shape{3, 4, 5}, scale: 4},
		{name: "identity", build: func() nn.Module { return nn.NewIdentity() }, py: "nn.Identity()", in: bridge.Shape{3, 4}},
	}
}

// TestLayersMatchPyTorch builds every layer here and in PyTorch after the same seed and requires
// the same initial state dict (bit for bit); then, from the same state dict (running statistics
// moved away from their defaults), the same output, input gradient, parameter gradients and
// updated buffers (within 1e-5), and forward hooks that see the layer's input and output.
func TestLayersMatchPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	cases := layerCases()
	type pyCase struct {
		Name, Ctor string
		Train      bool
		Seed       int
	}
	type goResult struct {
		m      nn.Module
		x, y   *bridge.Tensor
		init   []bridge.Named
		hooked int
	}
	var items []bridge.Named
	var pys []pyCase
	res := map[string]*goResult{}
	for i, c := range cases {
		p := c.name + "."
		seed := 1000 + i
		bridge.ManualSeed(uint64(seed))
		m := c.build()
		r := &goResult{m: m}
		for _, it := range nn.StateDict(m) {
			r.init = append(r.init, bridge.Named{Name: it.Name, Tensor: it.Tensor.Clone()})
		}
		bridge.NoGrad(func() { // running statistics away from 0 and 1, so that evaluation uses them
			for _, it := range nn.StateDict(m) {
				if strings.Contains(it.Name, "running_") {
					aten.Uniform_(it.Tensor, 0.5, 1.5)
				}
			}
		})
		for _, it := range nn.StateDict(m) {
			items = append(items, bridge.Named{Name: p + "sd." + it.Name, Tensor: it.Tensor.Clone()})
		}
		scale := c.scale
		if scale == 0 {
			scale = 1
		}
		x := aten.MulScalar(bridge.Randn(c.in), aten.FloatScalar(scale)).SetRequiresGrad(true)
		nn.Train(m, c.train)
		nn.RegisterForwardHookOn([]nn.NamedModule{{Name: c.name, Module: m}}, func(name string, hm nn.Module, in, out *bridge.Tensor) {
			require.Equal(t, c.name, name)
			require.Same(t, m, hm)
			require.Same(t, x, in)
			r.hooked++
			r.y = out
		})
		bridge.ManualSeed(uint64(seed + 1))
		y := m.Forward(x)
		require.Same(t, y, r.y, "%s: the hook saw the output", c.name)
		require.Equal(t, 1, r.hooked)
		g := bridge.Randn(y.Shape())
		aten.Mul(y, g).Sum().Backward()
		r.x = x
		res[c.name] = r
		items = append(items, bridge.Named{Name: p + "x", Tensor: x.Detach()}, bridge.Named{Name: p + "g", Tensor: g})
		pys = append(pys, pyCase{c.name, c.py, c.train, seed})
	}
	require.NoError(t, bridge.SaveNamed(filepath.Join(dir, "go.pt"), items))
	spec, err := json.Marshal(pys)
	require.NoError(t, err)

	torchpy.Run(t, `
import sys, json, torch, torch.nn as nn
d = torch.load(sys.argv[2])
res = {}
for c in json.loads(sys.argv[1]):
    p = c["Name"] + "."
    torch.manual_seed(c["Seed"])
    m = eval(c["Ctor"])
    for k, v in m.state_dict().items():
        res[p + "init." + k] = v.clone()
    m.load_state_dict({k[len(p + "sd."):]: v for k, v in d.items() if k.startswith(p + "sd.")}, strict=True)
    m.train(c["Train"])
    x = d[p + "x"].clone().requires_grad_(True)
    torch.manual_seed(c["Seed"] + 1)
    y = m(x)
    (y * d[p + "g"]).sum().backward()
    res[p + "y"] = y.detach()
    res[p + "xgrad"] = x.grad
    for k, v in m.named_parameters():
        res[p + "grad." + k] = v.grad
    for k, v in m.state_dict().items():
        res[p + "after." + k] = v
torch.save(res, sys.argv[3])
`, string(spec), filepath.Join(dir, "go.pt"), filepath.Join(dir, "ref.pt"))

	ref, err := bridge.LoadMap(filepath.Join(dir, "ref.pt"))
	require.NoError(t, err)
	for _, c := range cases {
		p := c.name + "."
		r := res[c.name]
		// same parameters and buffers, same names and order, same initial values after the same seed
		var pyInit []string
		for k := range ref {
			if strings.HasPrefix(k, p+"init.") {
				pyInit = append(pyInit, strings.TrimPrefix(k, p+"init."))
			}
		}
		require.ElementsMatch(t, pyInit, names(r.init), c.name)
		for _, it := range r.init {
			want := ref[p+"init."+it.Name]
			require.Equal(t, want.Shape(), it.Tensor.Shape(), "%s %s", c.name, it.Name)
			require.Equal(t, want.DType(), it.Tensor.DType(), "%s %s", c.name, it.Name)
			require.Equal(t, want.Float64s(), it.Tensor.Float64s(), "%s %s: initialised as PyTorch's, bit for bit", c.name, it.Name)
		}
		require.Equal(t, ref[p+"y"].Shape(), r.y.Shape(), c.name)
		requireClose(t, c.name+": output", ref[p+"y"], r.y)
		requireClose(t, c.name+": input gradient", ref[p+"xgrad"], r.x.Grad())
		for _, pr := range nn.NamedParameters(r.m) {
			want, ok := ref[p+"grad."+pr.Name]
			require.True(t, ok, "%s %s", c.name, pr.Name)
			requireClose(t, c.name+": gradient of "+pr.Name, want, pr.Tensor.Grad()) // relative too: a conv3d weight gradient of 21.7 differed by 1.1e-5
		}
		for _, it := range nn.StateDict(r.m) {
			want := ref[p+"after."+it.Name]
			requireClose(t, c.name+": "+it.Name+" after the forward", want, it.Tensor)
		}
	}
}

func TestInterpolateIsUpsample(t *testing.T) {
	x := bridge.Randn(bridge.Shape{1, 2, 3, 4})
	o := nn.InterpolateOptions{Scale: []float64{1.5}, Mode: "bicubic", AlignCorners: true}
	require.Equal(t, nn.NewUpsample(o).Forward(x).Float32s(), nn.Interpolate(x, o).Float32s())
	for _, c := range []struct {
		o    nn.InterpolateOptions
		x    bridge.Shape
		want string
	}{
		{nn.InterpolateOptions{Mode: "bilinear"}, bridge.Shape{1, 2, 3, 4}, "give a size or a scale factor"},
		{nn.InterpolateOptions{Size: []int64{2}, Scale: []float64{2}}, bridge.Shape{1, 2, 3, 4}, "give a size or a scale factor, not both"},
		{nn.InterpolateOptions{Scale: []float64{2}, Mode: "bilinear"}, bridge.Shape{1, 2, 3}, "mode bilinear needs a 4-D input"},
		{nn.InterpolateOptions{Scale: []float64{2}, AlignCorners: true}, bridge.Shape{1, 2, 3}, "align corners is only for the interpolating modes"},
		{nn.InterpolateOptions{Size: []int64{2, 3, 4}}, bridge.Shape{1, 2, 3, 4}, "input of shape [1, 2, 3, 4] has 2 spatial dims, size [2 3 4] has 3"},
		{nn.InterpolateOptions{Scale: []float64{2}, Mode: "cubic"}, bridge.Shape{1, 2, 3, 4}, `unknown mode "cubic"`},
	} {
		err := bridge.Try(func() { nn.Interpolate(bridge.Zeros(c.x), c.o) })
		require.ErrorContains(t, err, "nn.Interpolate: "+c.want)
	}
	err := bridge.Try(func() { nn.NewUpsample(nn.InterpolateOptions{}).Forward(x) })
	require.ErrorContains(t, err, "nn.Upsample: give a size or a scale factor")
}

func TestNewLayersNameBadInputs(t *testing.T) {
	cases := []struct {
		f    func()
		want string
	}{
		{func() { nn.NewConv1d(3, 4, 3).Forward(bridge.Zeros(bridge.Shape{2, 2, 5})) }, "nn.Conv1d: input of shape [2, 2, 5] has 2 channels, expected 3"},
		{func() { nn.NewConv3d(3, 4, 3).Forward(bridge.Zeros(bridge.Shape{2, 3, 5})) }, "nn.Conv3d: input of shape [2, 3, 5]: expected [N, C, D, H, W]"},
		{func() { nn.NewConv1d(3, 4, 3, nn.ConvOptions{Groups: 2}) }, "nn.Conv1d: in (3) and out (4) channels must be divisible by groups (2)"},
		{func() { nn.NewConv1d(3, 4, 3, nn.ConvOptions{OutputPadding: 1}) }, "output padding is for transposed convolutions"},
		{func() { nn.NewConvTranspose2d(3, 4, 3, nn.ConvOptions{OutputPadding: 1}) }, "output padding (1) must be smaller than either stride (1) or dilation (1)"},
		{func() { nn.NewGroupNorm(4, 6) }, "nn.GroupNorm: 6 channels must be divisible by 4 groups"},
		{func() { nn.NewGroupNorm(2, 6).Forward(bridge.Zeros(bridge.Shape{2, 4, 3})) }, "input of shape [2, 4, 3]: expected [N, 6, ...]"},
		{func() { nn.NewBatchNorm1d(3).Forward(bridge.Zeros(bridge.Shape{2, 3, 4, 4})) }, "nn.BatchNorm1d: input of shape [2, 3, 4, 4]: expected a 2-D [N, C] or 3-D [N, C, L] input"},
		{func() {
			nn.NewInstanceNorm2d(3, nn.InstanceNormOptions{Affine: true}).Forward(bridge.Zeros(bridge.Shape{2, 4, 3, 3}))
		}, "has 4 channels, expected 3"},
		{func() { nn.NewPixelShuffle(2).Forward(bridge.Zeros(bridge.Shape{1, 6, 2, 2})) }, "nn.PixelShuffle: input of shape [1, 6, 2, 2]: expected [..., C·4, H, W]"},
		{func() { nn.NewDropout2d(0.5).Forward(bridge.Zeros(bridge.Shape{2, 3})) }, "nn.Dropout2d: input of shape [2, 3]: expected [N, C, H, W]"},
		{func() { nn.NewDropout2d(2) }, "dropout probability 2 is not in [0, 1]"},
	}
	for _, c := range cases {
		err := bridge.Try(c.f)
		require.ErrorContains(t, err, c.want)
	}
}
