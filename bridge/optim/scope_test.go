package optim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
)

// Optimizer state is created lazily on the first Step. A Step inside bridge.Scope must keep it:
// the next steps use it, and they must compute exactly what steps outside a scope compute.
func TestStepInsideScopeKeepsState(t *testing.T) {
	build := map[string]func(ps []*bridge.Tensor) (*optim.Optimizer, error){
		"sgd-momentum": func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			return optim.NewSGD(optim.Params(ps...), optim.SGDOptions{LR: 0.1, Momentum: 0.9, Nesterov: true})
		},
		"adam-amsgrad": func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			o := optim.DefaultAdam()
			o.AMSGrad = true
			return optim.NewAdam(optim.Params(ps...), o)
		},
		"adamw": func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			return optim.NewAdamW(optim.Params(ps...), optim.DefaultAdamW())
		},
	}
	for name, mk := range build {
		t.Run(name, func(t *testing.T) {
			run := func(scoped bool) []float32 {
				bridge.ManualSeed(3)
				w := bridge.Randn(bridge.Shape{4, 3}).SetRequiresGrad(true)
				x := bridge.Randn(bridge.Shape{5, 3})
				opt, err := mk([]*bridge.Tensor{w})
				require.NoError(t, err)
				step := func() {
					opt.ZeroGrad()
					x.MatMul(w.Transpose(0, 1)).Tanh().Sum().Backward()
					opt.Step()
				}
				for range 4 {
					if scoped {
						bridge.Scope(step)
					} else {
						step()
					}
				}
				return w.Float32s()
			}
			require.Equal(t, run(false), run(true))
		})
	}
}
