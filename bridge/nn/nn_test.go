package nn_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// Net is a custom module made of built-in ones, mirroring netPy below.
type Net struct {
	nn.Node
	Features *nn.Sequential
	Head     *nn.Sequential
}

func NewNet() *Net {
	n := &Net{
		Features: nn.NewSequential(
			nn.NewConv2d(3, 8, 3, nn.Conv2dOptions{Padding: 1}),
			nn.NewBatchNorm2d(8),
			nn.NewReLU(),
			nn.NewMaxPool2d(2, 0, 0),
			nn.NewConv2d(8, 16, 3, nn.Conv2dOptions{Stride: 2, Padding: 1, Groups: 2}),
			nn.NewGELU(),
			nn.NewAvgPool2d(2, 1, 0),
			nn.NewAdaptiveAvgPool2d(2, 2),
		),
		Head: nn.NewSequential(
			nn.NewFlatten(1, -1),
			nn.NewLinear(64, 32),
			nn.NewLayerNorm(bridge.Shape{32}),
			nn.NewTanh(),
			nn.NewDropout(0.5),
			nn.NewLinear(32, 5),
			nn.NewSigmoid(),
		),
	}
	n.Add("features", n.Features)
	n.Add("head", n.Head)
	return n
}

func (n *Net) Forward(x *bridge.Tensor) *bridge.Tensor {
	return n.Fire(x, n.Head.Forward(n.Features.Forward(x)))
}

const netPy = `
import sys, torch, torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2), nn.GELU(), nn.AvgPool2d(2, 1),
            nn.AdaptiveAvgPool2d((2, 2)))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.LayerNorm(32), nn.Tanh(),
            nn.Dropout(0.5), nn.Linear(32, 5), nn.Sigmoid())
    def forward(self, x):
        return self.head(self.features(x))
`

func names(items []bridge.Named) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Name
	}
	return out
}

func TestNamesFollowPyTorch(t *testing.T) {
	net := NewNet()
	require.Equal(t, []string{
		"features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
		"features.4.weight", "features.4.bias", "head.1.weight", "head.1.bias",
		"head.2.weight", "head.2.bias", "head.5.weight", "head.5.bias",
	}, names(nn.NamedParameters(net)))
	sd := names(nn.StateDict(net))
	require.Equal(t, []string{"features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
		"features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"}, sd[:7])
	var mods []string
	for _, m := range nn.NamedModules(net) {
		mods = append(mods, m.Name+":"+nn.Kind(m.Module))
	}
	require.Equal(t, ":Module", mods[0])
	require.Contains(t, mods, "features.4:Conv2d")
	require.Contains(t, mods, "head.5:Linear")
	require.Equal(t, "features.4", net.Features.At(4).(*nn.Conv2d).Path())
}

// TestMatchesPyTorch loads the Go model's weights into the same PyTorch model and compares
// outputs (eval and train mode), gradients and batch-norm running statistics.
func TestMatchesPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	bridge.ManualSeed(3)
	net := NewNet()
	x := bridge.Randn(bridge.Shape{4, 3, 16, 16}, bridge.Float32)
	sdPath := filepath.Join(dir, "state.pt")
	require.NoError(t, bridge.SaveNamed(sdPath, append(nn.StateDict(net), bridge.Named{Name: "input", Tensor: x})))

	// Go: train-mode features (updates running stats), then eval-mode output and gradients.
	trainOut := net.Features.Forward(x)
	nn.Eval(net)
	out := net.Forward(x)
	out.Sum().Backward()

	torchpy.Run(t, netPy+`
d = torch.load(sys.argv[1])
x = d.pop("input")
net = Net()
net.load_state_dict(d)
res = {"train_out": net.features(x).detach()}
net.eval()
out = net(x)
out.sum().backward()
res["out"] = out.detach()
for k, p in net.named_parameters():
    res["grad." + k] = p.grad
for k, v in net.state_dict().items():
    if "running" in k or "num_batches" in k:
        res["buf." + k] = v
torch.save(res, sys.argv[2])
`, sdPath, filepath.Join(dir, "ref.pt"))

	ref, err := bridge.LoadMap(filepath.Join(dir, "ref.pt"))
	require.NoError(t, err)
	require.InDeltaSlice(t, ref["train_out"].Float64s(), trainOut.Float64s(), 1e-5)
	require.InDeltaSlice(t, ref["out"].Float64s(), out.Float64s(), 1e-5)
	for _, p := range nn.NamedParameters(net) {
		g, ok := ref["grad."+p.Name]
		require.True(t, ok, p.Name)
		require.InDeltaSlice(t, g.Float64s(), p.Tensor.Grad().Float64s(), 1e-5, p.Name)
	}
	for _, b := range nn.StateDict(net) {
		if r, ok := ref["buf."+b.Name]; ok {
			require.InDeltaSlice(t, r.Float64s(), b.Tensor.Float64s(), 1e-6, b.Name)
		}
	}
	require.Equal(t, int64(1), net.Features.At(1).(*nn.BatchNorm2d).NumBatchesTracked.ItemInt())
}

func TestStateDictRoundTripGoPythonGo(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	torchpy.Run(t, netPy+`
torch.manual_seed(7)
net = Net()
net.train()
net.features(torch.randn(2, 3, 8, 8))  # move running stats away from their defaults
torch.save(net.state_dict(), sys.argv[1])
`, filepath.Join(dir, "py.pt"))
	items, err := bridge.LoadNamed(filepath.Join(dir, "py.pt"))
	require.NoError(t, err)
	net := NewNet()
	require.NoError(t, nn.LoadStateDict(net, items, true))
	bn := net.Features.At(1).(*nn.BatchNorm2d)
	require.Equal(t, int64(1), bn.NumBatchesTracked.ItemInt())
	byName := map[string]*bridge.Tensor{}
	for _, it := range items {
		byName[it.Name] = it.Tensor
	}
	require.Equal(t, byName["features.1.running_var"].Float32s(), bn.RunningVar.Float32s())
	require.Equal(t, byName["head.5.weight"].Float32s(), net.Head.At(5).(*nn.Linear).Weight.Float32s())
	require.True(t, net.Head.At(5).(*nn.Linear).Weight.RequiresGrad(), "still a parameter after loading")

	// and back: Go saves, Python loads strictly
	require.NoError(t, bridge.SaveNamed(filepath.Join(dir, "go.pt"), nn.StateDict(net)))
	torchpy.Run(t, netPy+`
net = Net()
print(net.load_state_dict(torch.load(sys.argv[1]), strict=True))
`, filepath.Join(dir, "go.pt"))
}

func TestLoadStateDictErrors(t *testing.T) {
	net := NewNet()
	sd := nn.StateDict(net)
	// missing key, strict
	err := nn.LoadStateDict(net, sd[1:], true)
	var se *nn.StateDictError
	require.ErrorAs(t, err, &se)
	require.Equal(t, []string{"features.0.weight"}, se.Missing)
	require.ErrorContains(t, err, "missing keys: features.0.weight")
	// non-strict accepts missing and unexpected keys
	extra := append(append([]bridge.Named(nil), sd[1:]...), bridge.Named{Name: "bogus", Tensor: bridge.Ones(bridge.Shape{1})})
	require.NoError(t, nn.LoadStateDict(net, extra, false))
	err = nn.LoadStateDict(net, extra, true)
	require.ErrorContains(t, err, "unexpected keys: bogus")
	// shape mismatch always fails, and nothing is copied
	before := net.Head.At(5).(*nn.Linear).Bias.Float32s()
	bad := append([]bridge.Named(nil), sd...)
	for i := range bad {
		switch bad[i].Name {
		case "head.1.weight":
			bad[i].Tensor = bridge.Zeros(bridge.Shape{3, 3})
		case "head.5.bias":
			bad[i].Tensor = bridge.Zeros(bridge.Shape{5})
		}
	}
	err = nn.LoadStateDict(net, bad, false)
	require.ErrorContains(t, err, "head.1.weight: checkpoint [3, 3] vs model [32, 64]")
	require.Equal(t, before, net.Head.At(5).(*nn.Linear).Bias.Float32s(), "nothing copied on failure")
}

func TestForwardHooks(t *testing.T) {
	net := NewNet()
	x := bridge.Randn(bridge.Shape{2, 3, 16, 16})
	var seen []string
	var shapes []bridge.Shape
	h, err := nn.RegisterForwardHook(net, "features.*", func(name string, m nn.Module, in, out *bridge.Tensor) {
		seen = append(seen, name+":"+nn.Kind(m))
		shapes = append(shapes, out.Shape())
	})
	require.NoError(t, err)
	y1 := net.Forward(x)
	require.Equal(t, []string{"features.0:Conv2d", "features.1:BatchNorm2d", "features.2:ReLU", "features.3:MaxPool2d",
		"features.4:Conv2d", "features.5:GELU", "features.6:AvgPool2d", "features.7:AdaptiveAvgPool2d"}, seen)
	require.Equal(t, bridge.Shape{2, 8, 16, 16}, shapes[0])
	require.Equal(t, bridge.Shape{2, 16, 2, 2}, shapes[7])

	var convs []string
	h2, err := nn.RegisterForwardHook(net, "features.0", func(name string, m nn.Module, in, out *bridge.Tensor) {
		require.True(t, in.Shape().Equal(bridge.Shape{2, 3, 16, 16}))
		convs = append(convs, name)
	})
	require.NoError(t, err)
	seen = nil
	net.Forward(x)
	require.Len(t, seen, 8)
	require.Equal(t, []string{"features.0"}, convs)

	h.Remove()
	h.Remove() // twice is fine
	seen = nil
	y2 := net.Forward(x)
	require.Empty(t, seen, "removed hooks stop")
	require.Equal(t, []string{"features.0", "features.0"}, convs, "the other hook still fires")
	h2.Remove()
	nn.Eval(net)
	require.Equal(t, y1.Shape(), y2.Shape())

	_, err = nn.RegisterForwardHook(net, "nothing.here", func(string, nn.Module, *bridge.Tensor, *bridge.Tensor) {})
	require.ErrorContains(t, err, `no module matches "nothing.here"`)
	_, err = nn.RegisterForwardHook(net, "features.[", func(string, nn.Module, *bridge.Tensor, *bridge.Tensor) {})
	require.ErrorContains(t, err, "bad module pattern")
	all, err := nn.Match(net, "head.**")
	require.NoError(t, err)
	require.Len(t, all, 8)
}

func TestBadInputsNameTheLayer(t *testing.T) {
	net := NewNet()
	cases := []struct {
		f    func()
		want string
	}{
		{func() { net.Forward(bridge.Randn(bridge.Shape{2, 1, 16, 16})) }, "nn.Conv2d(features.0): input of shape [2, 1, 16, 16] has 1 channels, expected 3"},
		{func() { net.Forward(bridge.Randn(bridge.Shape{3, 16, 16, 1, 1})) }, "nn.Conv2d(features.0): input of shape [3, 16, 16, 1, 1]: expected [N, C, H, W]"},
		{func() { net.Head.Forward(bridge.Randn(bridge.Shape{2, 16, 3, 3})) }, "nn.Linear(head.1): input of shape [2, 144]: expected the last dim to be 64 features"},
		{func() { nn.NewBatchNorm2d(4).Forward(bridge.Randn(bridge.Shape{2, 4})) }, "nn.BatchNorm2d: input of shape [2, 4]: expected a 4-D"},
		{func() { nn.NewLayerNorm(bridge.Shape{8}).Forward(bridge.Randn(bridge.Shape{2, 4})) }, "does not end with the normalized shape [8]"},
		{func() { nn.NewEmbedding(4, 2).Forward(bridge.Randn(bridge.Shape{2})) }, "indices must be int64 or int32, got float32"},
		{func() { nn.NewEmbedding(4, 2).Forward(bridge.FromSlice([]int64{9})) }, "index out of range"},
		{func() { nn.NewDropout(1.5) }, "dropout probability 1.5 is not in [0, 1]"},
	}
	for _, c := range cases {
		err := bridge.Try(c.f)
		require.Error(t, err, c.want)
		require.Contains(t, err.Error(), c.want)
	}
}

func TestDefaultInitialisationDistribution(t *testing.T) {
	bridge.ManualSeed(0)
	l := nn.NewLinear(400, 300)
	w := l.Weight.Float64s()
	bound := 1 / 20.0 // 1/sqrt(400)
	lo, hi := 0.0, 0.0
	for _, v := range w {
		require.True(t, v >= -bound && v <= bound)
		lo, hi = min(lo, v), max(hi, v)
	}
	require.InDelta(t, -bound, lo, 0.001)
	require.InDelta(t, bound, hi, 0.001)
	require.InDelta(t, bound*bound/3, l.Weight.Var(false).Item(), 1e-5) // U(-b,b) has variance b²/3
	c := nn.NewConv2d(6, 4, 3, nn.Conv2dOptions{Groups: 2})
	cb := 1 / 3.0 // 1/sqrt(6/2*3*3)
	require.LessOrEqual(t, c.Weight.Abs().Max().Item(), cb)
	e := nn.NewEmbedding(1000, 50, nn.EmbeddingOptions{PaddingIdx: ptr(int64(-1))})
	require.InDelta(t, 1, e.Weight.Std(true).Item(), 0.02)
	require.Equal(t, 0.0, e.Weight.Narrow(0, 999, 1).Abs().Sum().Item())
	bn := nn.NewBatchNorm2d(3)
	require.Equal(t, []float32{1, 1, 1}, bn.Weight.Float32s())
	require.Equal(t, []float32{1, 1, 1}, bn.RunningVar.Float32s())
}

func ptr[T any](v T) *T { return &v }

func TestTrainEvalToAndZeroGrad(t *testing.T) {
	net := NewNet()
	require.True(t, net.Features.At(1).(*nn.BatchNorm2d).Training())
	nn.Eval(net)
	require.False(t, net.Head.At(4).(*nn.Dropout).Training())
	x := bridge.Randn(bridge.Shape{2, 3, 8, 8})
	require.Equal(t, net.Forward(x).Float32s(), net.Forward(x).Float32s(), "eval mode is deterministic")
	nn.Train(net, true)
	require.True(t, net.Head.At(4).(*nn.Dropout).Training())

	params := nn.Parameters(net)
	w := params[0]
	nn.To(net, bridge.Float64)
	require.Equal(t, bridge.Float64, w.DType(), "the same tensor object is converted in place")
	require.True(t, w.RequiresGrad())
	require.Equal(t, bridge.Int64, net.Features.At(1).(*nn.BatchNorm2d).NumBatchesTracked.DType(), "integer buffers keep their dtype")
	net.Forward(x.To(bridge.Float64)).Sum().Backward()
	require.NotNil(t, w.Grad())
	nn.ZeroGrad(net)
	require.Nil(t, w.Grad())
	if !bridge.CUDAIsAvailable() {
		err := bridge.Try(func() { nn.To(net, bridge.CUDA(0)) })
		require.Error(t, err, "moving to a missing CUDA device is an error, not a crash")
	}
}

type customConv struct{ nn.Node }

func (c *customConv) Forward(x *bridge.Tensor) *bridge.Tensor { return x }

// A custom module reports "Module" until it names its kind.
func TestSetKind(t *testing.T) {
	c := &customConv{}
	require.Equal(t, "Module", nn.Kind(c))
	c.SetKind("Conv2d")
	require.Equal(t, "Conv2d", nn.Kind(c))
}
