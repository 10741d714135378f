package nn_test

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// TestInitMatchesPyTorch fills tensors with each initialiser after a seed, here and in PyTorch
// after the same seed, and requires the same values bit for bit.
func TestInitMatchesPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	type initCase struct {
		name  string
		shape []int64
		dtype bridge.DType
		fill  func(*bridge.Tensor)
		py    string // the PyTorch call on t
	}
	cases := []initCase{
		{"uniform", []int64{5, 7}, bridge.Float32, func(t *bridge.Tensor) { nn.InitUniform(t, -0.3, 0.7) }, "init.uniform_(t, -0.3, 0.7)"},
		{"normal", []int64{4, 6}, bridge.Float32, func(t *bridge.Tensor) { nn.InitNormal(t, 0.1, 2) }, "init.normal_(t, 0.1, 2)"},
		{"normal_f64", []int64{40}, bridge.Float64, func(t *bridge.Tensor) { nn.InitNormal(t, -1, 0.5) }, "init.normal_(t, -1, 0.5)"},
		{"zeros", []int64{3, 2}, bridge.Float32, func(t *bridge.Tensor) { nn.InitZeros(t) }, "init.zeros_(t)"},
		{"ones", []int64{3, 2}, bridge.Float32, func(t *bridge.Tensor) { nn.InitOnes(t) }, "init.ones_(t)"},
		{"constant", []int64{3, 2}, bridge.Float32, func(t *bridge.Tensor) { nn.InitConstant(t, 0.25) }, "init.constant_(t, 0.25)"},
		{"xavier_uniform", []int64{6, 4, 3}, bridge.Float32, func(t *bridge.Tensor) { nn.InitXavierUniform(t, 1.3) }, "init.xavier_uniform_(t, 1.3)"},
		{"xavier_normal", []int64{5, 8}, bridge.Float32, func(t *bridge.Tensor) { nn.InitXavierNormal(t, 1) }, "init.xavier_normal_(t)"},
		{"kaiming_uniform", []int64{8, 4, 3, 3}, bridge.Float32, func(t *bridge.Tensor) { nn.InitKaimingUniform(t) }, "init.kaiming_uniform_(t)"},
		{"kaiming_uniform_a5", []int64{8, 4, 3}, bridge.Float32, func(t *bridge.Tensor) { nn.InitKaimingUniform(t, nn.KaimingOptions{A: math.Sqrt(5)}) }, "init.kaiming_uniform_(t, a=math.sqrt(5))"},
		{"kaiming_uniform_fan_out_relu", []int64{8, 4, 3}, bridge.Float32, func(t *bridge.Tensor) {
			nn.InitKaimingUniform(t, nn.KaimingOptions{Mode: nn.FanOut, Nonlinearity: "relu"})
		}, "init.kaiming_uniform_(t, mode='fan_out', nonlinearity='relu')"},
		{"kaiming_normal_leaky", []int64{16, 9}, bridge.Float32, func(t *bridge.Tensor) { nn.InitKaimingNormal(t, nn.KaimingOptions{A: 0.2}) }, "init.kaiming_normal_(t, a=0.2)"},
		{"kaiming_normal_fan_out", []int64{6, 3, 5}, bridge.Float32, func(t *bridge.Tensor) {
			nn.InitKaimingNormal(t, nn.KaimingOptions{Mode: nn.FanOut, Nonlinearity: "relu"})
		}, "init.kaiming_normal_(t, mode='fan_out', nonlinearity='relu')"},
		{"orthogonal_tall", []int64{6, 4}, bridge.Float32, func(t *bridge.Tensor) { nn.InitOrthogonal(t, 1) }, "init.orthogonal_(t)"},
		{"orthogonal_wide", []int64{3, 8}, bridge.Float32, func(t *bridge.Tensor) { nn.InitOrthogonal(t, 1.5) }, "init.orthogonal_(t, 1.5)"},
		{"orthogonal_conv", []int64{4, 2, 3}, bridge.Float64, func(t *bridge.Tensor) { nn.InitOrthogonal(t, 2) }, "init.orthogonal_(t, 2)"},
		{"trunc_normal", []int64{50, 40}, bridge.Float32, func(t *bridge.Tensor) { nn.InitTruncNormal(t, 0.2, 1.5, -1, 2) }, "init.trunc_normal_(t, 0.2, 1.5, -1, 2)"},
		{"trunc_normal_default", []int64{64}, bridge.Float32, func(t *bridge.Tensor) { nn.InitTruncNormal(t, 0, 1, -2, 2) }, "init.trunc_normal_(t)"},
		{"trunc_normal_vit", []int64{32, 16}, bridge.Float32, func(t *bridge.Tensor) { nn.InitTruncNormal(t, 0, 0.02, -2, 2) }, "init.trunc_normal_(t, std=.02)"},
	}
	type pyCase struct {
		Name, Call, DType string
		Shape             []int64
		Seed              int
	}
	var items []bridge.Named
	var pys []pyCase
	for i, c := range cases {
		bridge.ManualSeed(uint64(100 + i))
		x := aten.Empty(c.shape, aten.Options{DType: aten.D(c.dtype)}, nil).SetRequiresGrad(true)
		c.fill(x)
		require.True(t, x.RequiresGrad(), "%s works in place on a parameter", c.name)
		items = append(items, bridge.Named{Name: c.name, Tensor: x.Detach()})
		dt := "float32"
		if c.dtype == bridge.Float64 {
			dt = "float64"
		}
		pys = append(pys, pyCase{c.name, c.py, dt, c.shape, 100 + i})
	}
	gains := []string{"linear", "conv2d", "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"}
	for _, g := range gains {
		items = append(items, bridge.Named{Name: "gain." + g, Tensor: bridge.FromSlice([]float64{nn.CalculateGain(g)})})
	}
	items = append(items, bridge.Named{Name: "gain.leaky_relu_0.3", Tensor: bridge.FromSlice([]float64{nn.CalculateGain("leaky_relu", 0.3)})})
	require.NoError(t, bridge.SaveNamed(filepath.Join(dir, "go.pt"), items))
	spec, err := json.Marshal(pys)
	require.NoError(t, err)

	torchpy.Run(t, `
import sys, json, math, torch, torch.nn.init as init
go = torch.load(sys.argv[2])
for c in json.loads(sys.argv[1]):
    torch.manual_seed(c["Seed"])
    t = torch.empty(c["Shape"], dtype=getattr(torch, c["DType"]))
    eval(c["Call"])
    g = go[c["Name"]]
    assert g.dtype == t.dtype, (c["Name"], g.dtype, t.dtype)
    if not torch.equal(g, t):
        raise SystemExit("%s: not bit-for-bit: max diff %g" % (c["Name"], (g - t).abs().max()))
for k, v in go.items():
    if k.startswith("gain."):
        name = k[5:]
        want = init.calculate_gain("leaky_relu", 0.3) if name == "leaky_relu_0.3" else init.calculate_gain(name)
        assert v.item() == want, (k, v.item(), want)
`, string(spec), filepath.Join(dir, "go.pt"))

	// the properties, independently of PyTorch
	bridge.ManualSeed(1)
	w := nn.InitOrthogonal(aten.Empty([]int64{6, 4}, aten.Options{}, nil), 1)
	eye := aten.Mm(aten.T(w), w)
	require.InDeltaSlice(t, aten.Eye(4, aten.Options{}).Float64s(), eye.Float64s(), 1e-5)
	tn := nn.InitTruncNormal(aten.Empty([]int64{10000}, aten.Options{}, nil), 0, 1, -0.5, 1)
	require.GreaterOrEqual(t, aten.Min(tn).Item(), -0.5)
	require.LessOrEqual(t, aten.Max(tn).Item(), 1.0)
	err = bridge.Try(func() { nn.InitXavierUniform(bridge.Zeros(bridge.Shape{3}), 1) })
	require.ErrorContains(t, err, "nn.init.fan: fan in and fan out can not be computed for a tensor of shape [3]")
	err = bridge.Try(func() { nn.CalculateGain("swish") })
	require.ErrorContains(t, err, `unsupported nonlinearity "swish"`)
	err = bridge.Try(func() { nn.InitKaimingNormal(bridge.Zeros(bridge.Shape{3, 3}), nn.KaimingOptions{Mode: "fan_avg"}) })
	require.ErrorContains(t, err, fmt.Sprintf("mode %q not supported", "fan_avg"))
}
