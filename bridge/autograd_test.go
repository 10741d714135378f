package bridge_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/hotcb/hotcb/bridge"
)

// numericGrad estimates d f / d x by central differences (float64 throughout).
func numericGrad(x []float64, shape Shape, f func(*Tensor) *Tensor) []float64 {
	const h = 1e-6
	g := make([]float64, len(x))
	for i := range x {
		p := append([]float64(nil), x...)
		m := append([]float64(nil), x...)
		p[i] += h
		m[i] -= h
		fp := f(FromSlice(p, shape...)).Item()
		fm := f(FromSlice(m, shape...)).Item()
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

func analyticGrad(x []float64, shape Shape, f func(*Tensor) *Tensor) []float64 {
	xt := FromSlice(x, shape...).SetRequiresGrad(true)
	f(xt).Backward()
	return xt.Grad().Float64s()
}

func randData(n int, seed uint64) []float64 {
	ManualSeed(seed)
	return Randn(Shape{int64(n)}, Float64).Float64s()
}

func TestGradientsMatchFiniteDifferences(t *testing.T) {
	w := Randn(Shape{3, 4}, Float64)
	kernel := Randn(Shape{2, 2, 3, 3}, Float64)
	weights := FromSlice([]float64{0.3, 1.2, 0.5, 2})
	targets := FromSlice([]int64{1, 3, 0})
	probs := Rand(Shape{3, 4}, Float64).Softmax(1)
	cases := []struct {
		name  string
		shape Shape
		f     func(*Tensor) *Tensor
	}{
		{"matmul", Shape{2, 3}, func(x *Tensor) *Tensor { return x.MatMul(w).Square().Sum() }},
		{"matmul_rhs", Shape{4, 2}, func(x *Tensor) *Tensor { return w.MatMul(x).Tanh().Sum() }},
		{"conv2d", Shape{1, 2, 5, 5}, func(x *Tensor) *Tensor {
			return Conv2d(x, kernel, nil, Conv2dOptions{Padding: [2]int64{1, 1}, Stride: [2]int64{2, 1}}).Square().Sum()
		}},
		{"conv2d_weight", Shape{2, 2, 3, 3}, func(k *Tensor) *Tensor {
			x := FromSlice(randData(50, 7), 1, 2, 5, 5)
			return Conv2d(x, k, nil, Conv2dOptions{}).Sigmoid().Sum()
		}},
		{"log_softmax", Shape{3, 4}, func(x *Tensor) *Tensor {
			return x.LogSoftmax(1).Mul(FromSlice(randData(12, 3), 3, 4)).Sum()
		}},
		{"cross_entropy", Shape{3, 4}, func(x *Tensor) *Tensor { return CrossEntropy(x, targets) }},
		{"cross_entropy_weighted_smoothed", Shape{3, 4}, func(x *Tensor) *Tensor {
			return CrossEntropy(x, targets, LossOptions{Weight: weights, LabelSmoothing: 0.2})
		}},
		{"cross_entropy_probabilities", Shape{3, 4}, func(x *Tensor) *Tensor { return CrossEntropy(x, probs) }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := randData(int(c.shape.Numel()), uint64(100+i))
			num := numericGrad(x, c.shape, c.f)
			ana := analyticGrad(x, c.shape, c.f)
			require.InDeltaSlice(t, num, ana, 1e-5)
			nonZero := false
			for _, v := range ana {
				nonZero = nonZero || v != 0
			}
			require.True(t, nonZero, "gradient is identically zero: the check would be vacuous")
		})
	}
}

func TestBackwardOptionsAndGradLifecycle(t *testing.T) {
	x := FromSlice([]float64{1, 2, 3}).SetRequiresGrad(true)
	require.True(t, x.RequiresGrad())
	require.Nil(t, x.Grad(), "no gradient before backward")

	y := x.Square() // not a scalar: needs a gradient argument
	requireTorchError(t, func() { y.Backward() }, "backward", "grad can be implicitly created only for scalar outputs")
	y.Backward(BackwardOptions{Gradient: FromSlice([]float64{1, 1, 1}), RetainGraph: true})
	require.Equal(t, []float64{2, 4, 6}, x.Grad().Float64s())
	// gradients accumulate; the graph was retained
	y.Backward(BackwardOptions{Gradient: FromSlice([]float64{1, 0, 0})})
	require.Equal(t, []float64{4, 4, 6}, x.Grad().Float64s())
	// now it is freed
	requireTorchError(t, func() { y.Backward(BackwardOptions{Gradient: FromSlice([]float64{1, 1, 1})}) },
		"backward", "Trying to backward through the graph a second time")

	g := x.Grad()
	x.ZeroGradInPlace()
	require.Equal(t, []float64{0, 0, 0}, g.Float64s(), "in-place zeroing keeps the same memory")
	x.ZeroGrad()
	require.Nil(t, x.Grad())

	// create_graph gives second derivatives: d²/dx² x³ = 6x
	z := FromSlice([]float64{2}).SetRequiresGrad(true)
	z.PowScalar(3).Sum().Backward(BackwardOptions{CreateGraph: true})
	dz := z.Grad()
	require.InDelta(t, 12, dz.Item(), 1e-12)
	z.ZeroGrad()
	dz.Sum().Backward()
	require.InDelta(t, 12, z.Grad().Item(), 1e-12)

	d := x.Detach()
	require.False(t, d.RequiresGrad())
	requireTorchError(t, func() { FromSlice([]int64{1}).SetRequiresGrad(true) }, "set_requires_grad", "floating point")
}

func TestNoGradHoldsAcrossThreadsAndGoroutines(t *testing.T) {
	w := Ones(Shape{4}).SetRequiresGrad(true)
	require.True(t, GradEnabled())
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if g%2 == 0 {
					NoGrad(func() {
						if w.MulScalar(2).RequiresGrad() {
							errs <- "NoGrad result requires grad"
						}
						EnableGrad(func() {
							if !w.MulScalar(2).RequiresGrad() {
								errs <- "EnableGrad inside NoGrad did not record"
							}
						})
					})
				} else if !w.MulScalar(2).RequiresGrad() {
					errs <- "grad mode leaked from a NoGrad goroutine"
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		require.Fail(t, e)
	}
	require.True(t, GradEnabled())
}
