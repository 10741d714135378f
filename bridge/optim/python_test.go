package optim_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

// tensorJSON is a tensor as the Python scripts exchange it.
type tensorJSON struct {
	Shape []int64   `json:"shape"`
	Data  []float64 `json:"data"`
}

// randValues returns n float32 values (as float64, exactly) in [-scale, scale).
func randValues(r *rand.Rand, n int64, scale float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(float32((r.Float64()*2 - 1) * scale))
	}
	return out
}

func toF32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

// newParam makes a float32 leaf tensor that requires grad.
func newParam(v tensorJSON) *bridge.Tensor {
	return bridge.FromSlice(toF32(v.Data), v.Shape...).SetRequiresGrad(true)
}

// setGrads gives each parameter exactly the gradient in grads (nil: none), by backward through
// sum(p * g): d/dp = 1 * g, exact.
func setGrads(t *testing.T, ps []*bridge.Tensor, grads [][]float64) {
	t.Helper()
	var loss *bridge.Tensor
	for i, p := range ps {
		p.ZeroGrad()
		if grads[i] == nil {
			continue
		}
		g := bridge.FromSlice(toF32(grads[i]), p.Shape()...)
		term := p.Mul(g).Sum()
		if loss == nil {
			loss = term
		} else {
			loss = loss.Add(term)
		}
	}
	if loss != nil {
		loss.Backward()
	}
}

// maxAbsDiff compares a tensor with expected values.
func maxAbsDiff(t *testing.T, got *bridge.Tensor, want []float64) float64 {
	t.Helper()
	g := got.Float64s()
	require.Len(t, g, len(want))
	d := 0.0
	for i := range g {
		d = max(d, abs(g[i]-want[i]))
	}
	return d
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
