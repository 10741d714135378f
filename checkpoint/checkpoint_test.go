package checkpoint_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// fakeOpt stands in for an optimizer: a momentum buffer and a learning rate.
type fakeOpt struct{ buf, lr *bridge.Tensor }

func (f *fakeOpt) StateDict() []bridge.Named {
	return []bridge.Named{{Name: "state.0.momentum_buffer", Tensor: f.buf}, {Name: "param_groups.0.lr", Tensor: f.lr}}
}

func (f *fakeOpt) LoadStateDict(items []bridge.Named) error {
	for _, it := range items {
		switch it.Name {
		case "state.0.momentum_buffer":
			f.buf = it.Tensor
		case "param_groups.0.lr":
			f.lr = it.Tensor
		default:
			return errors.New("unexpected " + it.Name)
		}
	}
	return nil
}

func model() *nn.Sequential {
	return nn.NewSequential(nn.NewLinear(4, 3), nn.NewReLU(), nn.NewLinear(3, 2))
}

func TestSaveLoadRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ckpt.pt")
	bridge.ManualSeed(1)
	m := model()
	opt := &fakeOpt{buf: bridge.Ones(bridge.Shape{3, 4}), lr: bridge.Scalar(0.01, bridge.Float64)}
	require.NoError(t, checkpoint.Save(p, m, opt, checkpoint.Info{Step: 120, Epoch: 2.5},
		bridge.Named{Name: "best_acc", Tensor: bridge.Scalar(0.93, bridge.Float64)}))

	m2 := model() // different random weights
	opt2 := &fakeOpt{}
	info, extra, err := checkpoint.Load(p, m2, opt2)
	require.NoError(t, err)
	require.Equal(t, checkpoint.Info{Step: 120, Epoch: 2.5}, info)
	require.Len(t, extra, 1)
	require.Equal(t, "best_acc", extra[0].Name)
	x := bridge.Randn(bridge.Shape{5, 4})
	require.Equal(t, m.Forward(x).Float32s(), m2.Forward(x).Float32s())
	require.Equal(t, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, opt2.buf.Float32s())
	require.InDelta(t, 0.01, opt2.lr.Item(), 1e-12)

	// Errors: a model of another shape, a missing file, no optimizer state.
	_, _, err = checkpoint.Load(p, nn.NewSequential(nn.NewLinear(4, 5)), nil)
	require.ErrorContains(t, err, "unexpected keys: 2.weight, 2.bias")
	_, _, err = checkpoint.Load(filepath.Join(t.TempDir(), "none.pt"), m2, nil)
	require.Error(t, err)
	p2 := filepath.Join(t.TempDir(), "noopt.pt")
	require.NoError(t, checkpoint.Save(p2, m, nil, checkpoint.Info{}))
	_, _, err = checkpoint.Load(p2, m2, opt2)
	require.ErrorContains(t, err, "no optimizer state")
}

func TestPythonOpensTheCheckpoint(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "ckpt.pt")
	m := model()
	o, err := optim.NewAdam(optim.Params(nn.Parameters(m)...), optim.DefaultAdam())
	require.NoError(t, err)
	x := bridge.Randn(bridge.Shape{2, 4})
	m.Forward(x).Sum().Backward()
	o.Step()
	require.NoError(t, checkpoint.Save(p, m, o, checkpoint.Info{Step: 7, Epoch: 1}))
	require.NoError(t, bridge.Save(filepath.Join(dir, "x.pt"), x))
	// The optimizer state loads into torch.optim, and one more step there is Go's next step.
	xs := x.Clone()
	o.ZeroGrad()
	m.Forward(xs).Sum().Backward()
	o.Step()
	after := m.Forward(x).Float64s()
	out := torchpy.Run(t, `
import sys, torch
ck = torch.load(sys.argv[1])
m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
m.load_state_dict(ck["model"])
x = torch.load(sys.argv[2])
assert type(ck["step"]) is int and type(ck["epoch"]) is float, ck
before = m(x).flatten().tolist()
opt = torch.optim.Adam(m.parameters())
opt.load_state_dict(ck["optimizer"])
m(x).sum().backward()
opt.step()
print(ck["step"], ck["epoch"], " ".join("%.6f" % v for v in before + m(x).flatten().tolist()))
`, p, filepath.Join(dir, "x.pt"))
	fields := strings.Fields(out)
	require.Equal(t, "7", fields[0])
	require.Equal(t, "1.0", fields[1])
	m2 := model()
	o2, err := optim.NewAdam(optim.Params(nn.Parameters(m2)...), optim.DefaultAdam())
	require.NoError(t, err)
	_, _, err = checkpoint.Load(p, m2, o2)
	require.NoError(t, err, "Go reads the torch.optim layout back")
	want := append(m2.Forward(x).Float64s(), after...)
	require.Len(t, fields[2:], len(want))
	for i, f := range fields[2:] {
		var v float64
		_, err := fmt.Sscan(f, &v)
		require.NoError(t, err)
		require.InDelta(t, want[i], v, 1e-5)
	}

	// A plain state dict saved by Python loads into the model too.
	sd := filepath.Join(dir, "sd.pt")
	torchpy.Run(t, `
import sys, torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
torch.save(m.state_dict(), sys.argv[1])
`, sd)
	info, _, err := checkpoint.Load(sd, m, nil)
	require.NoError(t, err)
	require.Zero(t, info.Step)
}

// TestResumeWithARealOptimizer checks that a run restored from a checkpoint continues exactly
// as the original: same weights after one more step each.
func TestResumeWithARealOptimizer(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ckpt.pt")
	bridge.ManualSeed(2)
	x, y := bridge.Randn(bridge.Shape{8, 4}), bridge.RandInt(0, 2, bridge.Shape{8})
	step := func(m nn.Module, o *optim.Optimizer) {
		o.ZeroGrad()
		bridge.CrossEntropy(m.Forward(x), y).Backward()
		o.Step()
	}
	m := model()
	o, err := optim.NewAdam(optim.Params(nn.Parameters(m)...), optim.DefaultAdam())
	require.NoError(t, err)
	step(m, o)
	step(m, o)
	require.NoError(t, checkpoint.Save(p, m, o, checkpoint.Info{Step: 2}))

	m2 := model()
	o2, err := optim.NewAdam(optim.Params(nn.Parameters(m2)...), optim.DefaultAdam())
	require.NoError(t, err)
	info, _, err := checkpoint.Load(p, m2, o2)
	require.NoError(t, err)
	require.Equal(t, int64(2), info.Step)
	step(m, o)
	step(m2, o2)
	for i, w := range nn.Parameters(m) {
		require.Equal(t, w.Float32s(), nn.Parameters(m2)[i].Float32s())
	}
}

// clashOpt's state dict has a name that is both a tensor and a prefix of another.
type clashOpt struct{ fakeOpt }

func (c *clashOpt) StateDict() []bridge.Named {
	return []bridge.Named{{Name: "a", Tensor: bridge.Ones(bridge.Shape{1})}, {Name: "a.b", Tensor: bridge.Ones(bridge.Shape{1})}}
}

func TestSaveRefusesClashingNames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ckpt.pt")
	err := checkpoint.Save(p, model(), &clashOpt{}, checkpoint.Info{})
	require.ErrorContains(t, err, `state dict name "a.b" clashes with another under "a"`)
	require.NoFileExists(t, p)
}
