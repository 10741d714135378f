package gpucheck

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/amp"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/models"
)

// Mixed precision as a CUDA user runs it: an MLP trained under float16 autocast with a
// GradScaler (bfloat16 with GPUCHECK_CPU=1, the CPU's autocast type). One step is poisoned with
// an infinite loss: it must be skipped and the scale halved; the rest must learn.
func TestMixedPrecision(t *testing.T) {
	dev := device(t)
	half := bridge.Float16
	if !dev.IsCUDA() {
		half = bridge.BFloat16
	}
	bridge.ManualSeed(1)
	m := models.MLP(64, 256, 10)
	nn.To(m, dev)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(m)...), optim.SGDOptions{LR: 0.05, Momentum: 0.9})
	require.NoError(t, err)
	scaler, err := amp.NewGradScaler(amp.Options{InitScale: 1 << 16, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 50})
	require.NoError(t, err)
	x := bridge.Randn(bridge.Shape{256, 64}, dev)
	y := bridge.RandInt(0, 10, bridge.Shape{256}, dev)
	const steps, poisoned = 200, 120
	var first, last float64
	skipped := 0
	for i := range steps {
		var loss *bridge.Tensor
		require.NoError(t, bridge.Autocast(dev, half, func() {
			out := m.Forward(x)
			require.Equal(t, half, out.DType(), "the Linear layers ran in %v", half)
			loss = bridge.CrossEntropy(out, y) // autocast runs it in float32
		}))
		require.Equal(t, bridge.Float32, loss.DType())
		if i == poisoned {
			loss = loss.MulScalar(math.Inf(1))
		}
		scaleBefore := scaler.CurrentScale()
		scaler.Scale(loss).Backward()
		ran, err := scaler.Step(opt)
		require.NoError(t, err)
		require.NoError(t, scaler.Update())
		opt.ZeroGrad()
		if !ran {
			skipped++
			require.Equal(t, scaleBefore/2, scaler.CurrentScale(), "step %d: a skipped step halves the scale", i)
		}
		if i == 0 {
			first = loss.Item()
		}
		if i != poisoned {
			last = loss.Item()
		}
	}
	require.Equal(t, 1, skipped, "only the poisoned step is skipped")
	require.Less(t, last, first/2, "the loss falls under mixed precision")
	record(t, map[string]any{"device": dev.String(), "dtype": half.String(), "loss_first": first,
		"loss_last": last, "skipped": skipped, "final_scale": scaler.CurrentScale()})
}

// square is x² with its backward in Go.
type square struct{}

func (square) Forward(ctx *bridge.FunctionCtx, in ...*bridge.Tensor) []*bridge.Tensor {
	ctx.SaveForBackward(in[0])
	return []*bridge.Tensor{in[0].Square()}
}

func (square) Backward(ctx *bridge.FunctionCtx, g ...*bridge.Tensor) []*bridge.Tensor {
	return []*bridge.Tensor{g[0].Mul(ctx.SavedTensors()[0]).MulScalar(2)}
}

// A Go autograd function and a gradient hook called back from libtorch's autograd engine, which
// on CUDA runs backward on its own device thread rather than the caller's.
func TestGoAutogradOnDevice(t *testing.T) {
	dev := device(t)
	x := bridge.Randn(bridge.Shape{1000}, dev).SetRequiresGrad(true)
	calls := 0
	remove, err := x.RegisterHook(func(g *bridge.Tensor) *bridge.Tensor { calls++; return nil })
	require.NoError(t, err)
	defer remove()
	bridge.ApplyFunction(square{}, x)[0].Sum().Backward()
	require.Equal(t, 1, calls)
	want := x.Detach().MulScalar(2).Float32s()
	require.Equal(t, want, x.Grad().Float32s())
	g, err := bridge.Gradients([]*bridge.Tensor{x.Square().Sum()}, []*bridge.Tensor{x}, bridge.GradOptions{})
	require.NoError(t, err)
	require.Equal(t, want, g[0].Float32s())
	record(t, map[string]any{"device": dev.String(), "hook_calls": calls})
}
