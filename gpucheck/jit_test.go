package gpucheck

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/jit"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
)

// TestTorchScriptOnDevice trains the scripted CNN of testdata/jit_cnn.pt
// (scripts/make-jit-fixtures.py) on the device and on the CPU from the same weights and batches:
// the losses agree, a hook on layer1.0.conv1 sees the device's tensors, and the module saved from
// the device loads on the CPU with the trained weights.
func TestTorchScriptOnDevice(t *testing.T) {
	dev := device(t)
	const steps = 5
	bridge.ManualSeed(3)
	x := bridge.Randn(bridge.Shape{16, 1, 16, 16})
	y := bridge.RandInt(0, 6, bridge.Shape{16})
	train := func(d bridge.Device) (*jit.Module, []float64, int) {
		m, err := jit.Load(filepath.Join("testdata", "jit_cnn.pt"), d)
		require.NoError(t, err)
		hooked := 0
		_, err = nn.RegisterForwardHook(m, "layer1.0.conv1", func(_ string, _ nn.Module, in, out *bridge.Tensor) {
			require.Equal(t, d, out.Device(), "the hook sees the module's device")
			require.Equal(t, bridge.Shape{16, 16, 16}, out.Shape()[1:])
			hooked++
		})
		require.NoError(t, err)
		opt, err := optim.NewSGD(optim.Params(nn.Parameters(m)...), optim.SGDOptions{LR: 0.05, Momentum: 0.9})
		require.NoError(t, err)
		xd, yd := x.To(d), y.To(d)
		var losses []float64
		for i := 0; i < steps; i++ {
			opt.ZeroGrad()
			loss := bridge.CrossEntropy(m.Forward(xd), yd)
			loss.Backward()
			opt.Step()
			losses = append(losses, loss.Item())
		}
		return m, losses, hooked
	}
	cpu, cpuLoss, _ := train(bridge.CPU)
	defer cpu.Free()
	onDev, devLoss, hooked := train(dev)
	defer onDev.Free()
	require.Equal(t, steps, hooked)
	var worst float64
	for i := range cpuLoss {
		worst = max(worst, maxRelDiff([]float32{float32(devLoss[i])}, []float32{float32(cpuLoss[i])}))
	}
	// cuDNN picks its own convolution algorithms (and TF32 where allowed): close, not equal.
	require.Less(t, worst, 1e-3, "losses on %s %v vs CPU %v", dev, devLoss, cpuLoss)

	out := filepath.Join(t.TempDir(), "trained.pt")
	require.NoError(t, onDev.Save(out))
	back, err := jit.Load(out, bridge.CPU)
	require.NoError(t, err)
	defer back.Free()
	nn.Eval(back)
	nn.Eval(onDev)
	probe := bridge.Randn(bridge.Shape{4, 1, 16, 16})
	want := onDev.Forward(probe.To(dev)).To(bridge.CPU).Float32s()
	got := back.Forward(probe).Float32s()
	rel := maxRelDiff(got, want)
	require.Less(t, rel, 1e-3, "the module saved from %s, loaded on the CPU", dev)
	record(t, map[string]any{"device": dev.String(), "losses_device": devLoss, "losses_cpu": cpuLoss,
		"loss_max_rel_diff": worst, "saved_reload_max_rel_diff": rel})
}
