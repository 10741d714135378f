package optim

import (
	"math"

	"github.com/hotcb/hotcb/bridge"
)

// ClipGradNorm scales the gradients of params in place so that their total normType-norm (the
// norm of the vector of all gradient elements; math.Inf(1) for the largest magnitude) is at most
// maxNorm, and returns the total norm before clipping — torch.nn.utils.clip_grad_norm_ in
// PyTorch 1.13, with error_if_nonfinite=False: a NaN or infinite norm makes the gradients NaN.
// Parameters without a gradient are skipped; with none at all it returns 0. Tensor failures
// panic with *bridge.Error.
func ClipGradNorm(params []*bridge.Tensor, maxNorm, normType float64) (totalNorm float64) {
	bridge.NoGrad(func() {
		grads := make([]*bridge.Tensor, 0, len(params))
		for _, p := range params {
			if g := p.Grad(); g != nil {
				grads = append(grads, g)
			}
		}
		if len(grads) == 0 {
			return
		}
		defer freeAll(grads)
		dev := grads[0].Device()
		norms := make([]*bridge.Tensor, len(grads))
		defer freeAll(norms)
		for i, g := range grads {
			if math.IsInf(normType, 1) {
				a := g.Abs()
				norms[i] = a.Max()
				a.Free()
			} else {
				norms[i] = g.Norm(normType)
			}
			if d := norms[i].Device(); d != dev {
				n := norms[i].To(dev)
				norms[i].Free()
				norms[i] = n
			}
		}
		var total *bridge.Tensor
		if len(norms) == 1 {
			total = norms[0]
		} else {
			st := bridge.Stack(norms, 0)
			if math.IsInf(normType, 1) {
				total = st.Max()
			} else {
				total = st.Norm(normType)
			}
			st.Free()
			defer total.Free()
		}
		totalNorm = total.Item()
		// clip_coef = max_norm / (total_norm + 1e-6), clamped to 1, computed in the norm's dtype
		// as torch does (tensor ops; a / t is t.reciprocal() * a).
		var coef float64
		if total.DType() == bridge.Float64 {
			coef = (1 / (totalNorm + 1e-6)) * maxNorm
		} else {
			r := 1 / (float32(totalNorm) + float32(1e-6))
			coef = float64(r * float32(maxNorm))
		}
		if coef > 1 {
			coef = 1
		}
		if coef == 1 {
			return // multiplying by one changes nothing
		}
		for _, g := range grads {
			g.MulScalarInPlace(coef)
		}
	})
	return totalNorm
}

func freeAll(ts []*bridge.Tensor) {
	for _, t := range ts {
		if t != nil && !t.IsFreed() {
			t.Free()
		}
	}
}

// ClipGradValue clamps every gradient element of params to [-clipValue, clipValue] in place —
// torch.nn.utils.clip_grad_value_ in PyTorch 1.13. Parameters without a gradient are skipped.
// Tensor failures panic with *bridge.Error.
func ClipGradValue(params []*bridge.Tensor, clipValue float64) {
	bridge.NoGrad(func() {
		for _, p := range params {
			if g := p.Grad(); g != nil {
				g.ClampInPlace(-clipValue, clipValue)
				g.Free()
			}
		}
	})
}
