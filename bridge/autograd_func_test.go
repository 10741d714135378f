package bridge_test

import (
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

// legendre3 is P3(x) = (5x³ - 3x)/2 with its derivative written by hand (PyTorch's custom
// function tutorial).
type legendre3 struct{ backwardCalls int }

func (l *legendre3) Forward(ctx *bridge.FunctionCtx, in ...*bridge.Tensor) []*bridge.Tensor {
	x := in[0]
	ctx.SaveForBackward(x)
	return []*bridge.Tensor{x.PowScalar(3).MulScalar(5).Sub(x.MulScalar(3)).MulScalar(0.5)}
}

func (l *legendre3) Backward(ctx *bridge.FunctionCtx, g ...*bridge.Tensor) []*bridge.Tensor {
	l.backwardCalls++
	x := ctx.SavedTensors()[0]
	return []*bridge.Tensor{g[0].Mul(x.Square().MulScalar(5).SubScalar(1).MulScalar(1.5))}
}

func TestCustomFunction(t *testing.T) {
	x := bridge.FromSlice([]float64{-1, 0.5, 2}).SetRequiresGrad(true)
	f := &legendre3{}
	y := bridge.ApplyFunction(f, x)[0]
	require.True(t, y.RequiresGrad())
	require.InDeltaSlice(t, []float64{-1, -0.4375, 17}, y.Float64s(), 1e-12)
	y.Mul(y).Sum().Backward() // d/dx y² = 2 y P3'(x)
	want := make([]float64, 3)
	for k, v := range []float64{-1, 0.5, 2} {
		p := 0.5 * (5*v*v*v - 3*v)
		want[k] = 2 * p * 1.5 * (5*v*v - 1)
	}
	require.InDeltaSlice(t, want, x.Grad().Float64s(), 1e-12)
	require.Equal(t, 1, f.backwardCalls)
}

// pair has two inputs and two outputs; only a requires grad.
type pair struct{}

func (pair) Forward(ctx *bridge.FunctionCtx, in ...*bridge.Tensor) []*bridge.Tensor {
	ctx.SaveForBackward(in...)
	return []*bridge.Tensor{in[0].Mul(in[1]), in[0].Add(in[1])}
}

func (pair) Backward(ctx *bridge.FunctionCtx, g ...*bridge.Tensor) []*bridge.Tensor {
	a, b := ctx.SavedTensors()[0], ctx.SavedTensors()[1]
	var ga, gb *bridge.Tensor
	if ctx.NeedsInputGrad[0] {
		ga = g[0].Mul(b).Add(g[1])
	}
	if ctx.NeedsInputGrad[1] {
		gb = g[0].Mul(a).Add(g[1])
	}
	return []*bridge.Tensor{ga, gb}
}

func TestCustomFunctionSeveralInputsAndOutputs(t *testing.T) {
	a := bridge.FromSlice([]float32{1, 2}).SetRequiresGrad(true)
	b := bridge.FromSlice([]float32{3, 4})
	out := bridge.ApplyFunction(pair{}, a, b)
	require.Len(t, out, 2)
	out[0].Sum().Add(out[1].MulScalar(2).Sum()).Backward()
	require.Equal(t, []float32{5, 6}, a.Grad().Float32s(), "b + 2")
	require.Nil(t, b.Grad())
}

type failing struct{ mode string }

func (f failing) Forward(ctx *bridge.FunctionCtx, in ...*bridge.Tensor) []*bridge.Tensor {
	return []*bridge.Tensor{in[0].MulScalar(2)}
}

func (f failing) Backward(ctx *bridge.FunctionCtx, g ...*bridge.Tensor) []*bridge.Tensor {
	switch f.mode {
	case "panic":
		panic("the backward exploded")
	case "arity":
		return []*bridge.Tensor{g[0], g[0]}
	case "nan":
		return []*bridge.Tensor{g[0].MulScalar(math.NaN())}
	}
	return []*bridge.Tensor{g[0].MulScalar(2)}
}

// A Go backward that panics or returns the wrong number of gradients fails the Backward call
// with an error, never the process; anomaly mode names a backward that returns NaN.
func TestCustomFunctionFailures(t *testing.T) {
	for mode, want := range map[string]string{"panic": "panic: the backward exploded", "arity": "returned 2 gradients for 1 inputs"} {
		x := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
		y := bridge.ApplyFunction(failing{mode}, x)[0]
		err := bridge.Try(func() { y.Sum().Backward() })
		require.ErrorContains(t, err, "backward of a Go function", mode)
		require.ErrorContains(t, err, want, mode)
	}
	x := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	y := bridge.ApplyFunction(failing{"nan"}, x)[0]
	require.NoError(t, bridge.Try(func() { y.Sum().Backward(bridge.BackwardOptions{RetainGraph: true}) }), "without anomaly mode NaN passes")
	var err error
	bridge.DetectAnomaly(func() { err = bridge.Try(func() { y.Sum().Backward() }) })
	require.ErrorContains(t, err, "returned nan values")
	require.ErrorContains(t, err, "GoFunctionBackward")
}

func TestGradientHooks(t *testing.T) {
	x := bridge.FromSlice([]float32{1, 2, 3}).SetRequiresGrad(true)
	var seen []float32
	remove, err := x.RegisterHook(func(g *bridge.Tensor) *bridge.Tensor {
		seen = g.Float32s()
		return g.MulScalar(2)
	})
	require.NoError(t, err)
	x.Square().Sum().Backward()
	require.Equal(t, []float32{2, 4, 6}, seen, "the hook sees the gradient")
	require.Equal(t, []float32{4, 8, 12}, x.Grad().Float32s(), "and replaces it")
	remove()
	remove() // twice is fine
	x.ZeroGrad()
	x.Square().Sum().Backward()
	require.Equal(t, []float32{2, 4, 6}, x.Grad().Float32s(), "removed")

	// On an intermediate tensor: what flows upstream changes; nil keeps the gradient.
	w := bridge.FromSlice([]float32{1, 1}).SetRequiresGrad(true)
	h := w.MulScalar(3)
	_, err = h.RegisterHook(func(g *bridge.Tensor) *bridge.Tensor { return nil })
	require.NoError(t, err)
	_, err = h.RegisterHook(func(g *bridge.Tensor) *bridge.Tensor { return g.AddScalar(1) })
	require.NoError(t, err)
	h.Sum().Backward()
	require.Equal(t, []float32{6, 6}, w.Grad().Float32s(), "(1+1)*3")

	_, err = bridge.Ones(bridge.Shape{2}).RegisterHook(func(g *bridge.Tensor) *bridge.Tensor { return g })
	require.ErrorContains(t, err, "does not require grad")
	p := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	_, err = p.RegisterHook(func(g *bridge.Tensor) *bridge.Tensor { panic("hook failed") })
	require.NoError(t, err)
	require.ErrorContains(t, bridge.Try(func() { p.Sum().Backward() }), "gradient hook: panic: hook failed")
}

// Gradients with CreateGraph gives a gradient penalty its own gradient.
func TestGradientsAndAPenalty(t *testing.T) {
	x := bridge.FromSlice([]float64{1, -2, 0.5}).SetRequiresGrad(true)
	y := x.PowScalar(3).Sum()
	g, err := bridge.Gradients([]*bridge.Tensor{y}, []*bridge.Tensor{x}, bridge.GradOptions{CreateGraph: true})
	require.NoError(t, err)
	require.InDeltaSlice(t, []float64{3, 12, 0.75}, g[0].Float64s(), 1e-12)
	require.Nil(t, x.Grad(), "not accumulated")
	penalty := g[0].Square().Sum() // Σ 9x⁴ → d/dx = 36x³
	penalty.Backward()
	require.InDeltaSlice(t, []float64{36, -288, 4.5}, x.Grad().Float64s(), 1e-9)

	z := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	u := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	_, err = bridge.Gradients([]*bridge.Tensor{z.Sum()}, []*bridge.Tensor{u}, bridge.GradOptions{})
	require.ErrorContains(t, err, "One of the differentiated Tensors appears to not have been used in the graph")
	g, err = bridge.Gradients([]*bridge.Tensor{z.Sum()}, []*bridge.Tensor{u, z}, bridge.GradOptions{AllowUnused: true})
	require.NoError(t, err)
	require.Nil(t, g[0])
	require.Equal(t, []float32{1, 1}, g[1].Float32s())
}

// Checkpointed dropout MLP: the same gradients as without checkpointing, parameters included.
func TestCheckpoint(t *testing.T) {
	run := func(ckpt bool) (xg, wg []float32) {
		bridge.ManualSeed(7)
		w := bridge.Randn(bridge.Shape{4, 4}).SetRequiresGrad(true)
		x := bridge.Randn(bridge.Shape{3, 4}).SetRequiresGrad(true)
		f := func(in ...*bridge.Tensor) []*bridge.Tensor {
			return []*bridge.Tensor{bridge.Dropout(in[0].MatMul(w).Tanh(), 0.5, true).MatMul(w)}
		}
		var y *bridge.Tensor
		if ckpt {
			y = bridge.Checkpoint(f, x)[0]
		} else {
			y = f(x)[0]
		}
		y.Square().Sum().Backward()
		return x.Grad().Float32s(), w.Grad().Float32s()
	}
	xa, wa := run(false)
	xb, wb := run(true)
	require.Equal(t, xa, xb)
	require.Equal(t, wa, wb)
}

// The Go side forgets functions and hooks once libtorch drops them.
func TestFunctionsAreReleased(t *testing.T) {
	before := bridge.LiveFunctions()
	for i := 0; i < 200; i++ {
		x := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
		y := bridge.ApplyFunction(&legendre3{}, x)[0]
		_, err := y.RegisterHook(func(g *bridge.Tensor) *bridge.Tensor { return nil })
		require.NoError(t, err)
		s := y.Sum()
		s.Backward()
		for _, u := range []*bridge.Tensor{s, y, x} {
			require.NoError(t, u.Free())
		}
	}
	// Tensors the collector frees (the gradients handed to Backward) hold none of the graph,
	// but give their cleanups a chance to run anyway.
	require.Eventually(t, func() bool {
		runtime.GC()
		bridge.ReleaseUnreachable()
		return bridge.LiveFunctions()-before < 20
	}, 5*time.Second, 10*time.Millisecond, "released as their graphs die (%d left)", bridge.LiveFunctions()-before)
}

// Under Autocast on the CPU, a matmul runs in bfloat16; outside it is float32 again.
func TestAutocastCPU(t *testing.T) {
	a := bridge.Randn(bridge.Shape{4, 8})
	b := bridge.Randn(bridge.Shape{8, 3})
	var inside *bridge.Tensor
	require.NoError(t, bridge.Autocast(bridge.CPU, bridge.BFloat16, func() { inside = a.MatMul(b) }))
	require.Equal(t, bridge.BFloat16, inside.DType())
	require.Equal(t, bridge.Float32, a.MatMul(b).DType())
	diff := inside.To(bridge.Float32).Sub(a.MatMul(b)).Abs().Max().Item()
	require.Less(t, diff, 0.2, "bfloat16's precision")
	require.False(t, strings.Contains(inside.DType().String(), "float32"))

	// Nested: the inner scope ends, the outer one is still on; a refused dtype changes nothing.
	require.NoError(t, bridge.Autocast(bridge.CPU, bridge.BFloat16, func() {
		require.NoError(t, bridge.Autocast(bridge.CPU, bridge.BFloat16, func() {}))
		require.Equal(t, bridge.BFloat16, a.MatMul(b).DType())
		require.ErrorContains(t, bridge.Autocast(bridge.CPU, bridge.Float16, func() { t.Fatal("ran") }), "bfloat16 only, not float16")
		require.Equal(t, bridge.BFloat16, a.MatMul(b).DType())
	}))
	require.ErrorContains(t, bridge.Autocast(bridge.CUDA(0), bridge.Float64, func() {}), "not float64")
	require.Equal(t, bridge.Float32, a.MatMul(b).DType())
}
