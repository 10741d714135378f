package optim_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
)

func paramOf(dt bridge.DType) *bridge.Tensor {
	return bridge.Ones(bridge.Shape{3}, dt).SetRequiresGrad(true)
}

func TestSetParamsRefusesValuesThatOverflowTheDType(t *testing.T) {
	adam := func(dts ...bridge.DType) func() (*optim.Optimizer, error) {
		return func() (*optim.Optimizer, error) {
			var gs []optim.Group
			for _, dt := range dts {
				gs = append(gs, optim.Group{Params: []*bridge.Tensor{paramOf(dt)}})
			}
			return optim.NewAdam(gs, optim.DefaultAdam())
		}
	}
	sgd := func(dt bridge.DType) func() (*optim.Optimizer, error) {
		return func() (*optim.Optimizer, error) {
			return optim.NewSGD(optim.Params(paramOf(dt)), optim.SGDOptions{LR: 0.1, Momentum: 0.9})
		}
	}
	cases := []struct {
		name   string
		opt    func() (*optim.Optimizer, error)
		group  int
		params map[string]any
		key    string
		reason string // "" when the change is valid
	}{
		{"lr 1e308 on float32", adam(bridge.Float32), optim.AllGroups, map[string]any{"lr": 1e308},
			"lr", `"lr": lr=1e+308 overflows float32 (max 3.4e+38)`},
		{"lr 1e308 on float64", adam(bridge.Float64), optim.AllGroups, map[string]any{"lr": 1e308}, "lr", ""},
		{"lr 1e5 on float16", sgd(bridge.Float16), 0, map[string]any{"lr": 1e5},
			"lr", "lr=100000 overflows float16 (max 65504)"},
		{"lr 6e4 on float16", sgd(bridge.Float16), 0, map[string]any{"lr": 6e4}, "lr", ""},
		{"momentum on bfloat16", sgd(bridge.BFloat16), 0, map[string]any{"momentum": 1e39},
			"momentum", "momentum=1e+39 overflows bfloat16 (max 3.4e+38)"},
		{"weight decay on float32", adam(bridge.Float32), 0, map[string]any{"weight_decay": 1e39},
			"weight_decay", "weight_decay=1e+39 overflows float32"},
		{"eps on float16", adam(bridge.Float16), 0, map[string]any{"eps": 7e4, "lr": 0.5},
			"eps", "eps=70000 overflows float16 (max 65504)"},
		{"the narrowest group decides", adam(bridge.Float32, bridge.Float16), optim.AllGroups, map[string]any{"lr": 1e5},
			"lr", "lr=100000 overflows float16 (max 65504) in group 1"},
		{"only the group changed counts", adam(bridge.Float32, bridge.Float16), 0, map[string]any{"lr": 1e5}, "lr", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opt, err := c.opt()
			require.NoError(t, err)
			before := make([]map[string]any, opt.NumGroups())
			for g := range before {
				before[g] = opt.Hyper(g)
			}
			err = opt.SetParams(c.group, c.params)
			if c.reason == "" {
				require.NoError(t, err)
				require.Equal(t, int64(1), opt.Revision())
				return
			}
			var he *optim.HyperError
			require.True(t, errors.As(err, &he), "%v", err)
			require.Equal(t, c.key, he.Key)
			require.ErrorContains(t, err, c.reason)
			for g := range before {
				require.Equal(t, before[g], opt.Hyper(g), "all or nothing")
			}
			require.Equal(t, int64(0), opt.Revision())
		})
	}

	// The constructor applies the same rule.
	_, err := optim.NewSGD(optim.Params(paramOf(bridge.Float16)), optim.SGDOptions{LR: 1e5})
	require.ErrorContains(t, err, "lr=100000 overflows float16 (max 65504)")
}

// Each value fits, but the update they make does not: Adam's first step size lr/(1-beta1) is
// 1e39 for lr=1e38, which libtorch cannot convert to float32. The trial update on a scratch
// tensor finds it; after enough steps the bias correction is near 1 and the same lr passes.
func TestSetParamsTriesTheUpdate(t *testing.T) {
	p := paramOf(bridge.Float32)
	opt, err := optim.NewAdam(optim.Params(p), optim.DefaultAdam())
	require.NoError(t, err)
	err = opt.SetParams(optim.AllGroups, map[string]any{"lr": 1e38})
	var he *optim.HyperError
	require.True(t, errors.As(err, &he), "%v", err)
	require.Equal(t, "lr", he.Key)
	require.EqualError(t, err, `optim: hyper-parameter "lr": a trial adam update of a float32 parameter on cpu at step 1 `+
		`failed: torch: addcdiv_: value cannot be converted to type float without overflow`)
	require.Equal(t, 1e-3, opt.LR(0))

	err = opt.SetParams(optim.AllGroups, map[string]any{"lr": 1e38, "betas": []any{0.9, 0.99}})
	require.ErrorContains(t, err, `hyper-parameter "betas,lr": a trial adam update`, "several keys: all are named")

	for range 30 {
		p.Sum().Backward()
		opt.Step()
		opt.ZeroGrad()
	}
	require.NoError(t, opt.SetParams(optim.AllGroups, map[string]any{"lr": 1e38}), "at step 31 lr/(1-0.9^31) fits")
	require.Equal(t, []float32{1, 1, 1}, p.Detach().Sign().Float32s(), "the trial left the parameter alone")
}

// The change passes every check, then the parameter moves to float16 (SetData), where lr=1e5
// overflows: the next Step finds it before touching the parameter, restores lr and takes the
// step with it — bitwise the step of an optimizer that never saw the change.
func TestStepRollsBackAChangeLibtorchRefuses(t *testing.T) {
	p, q := paramOf(bridge.Float32), paramOf(bridge.Float32)
	changed, err := optim.NewSGD(optim.Params(p), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	twin, err := optim.NewSGD(optim.Params(q), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	step := func() {
		for _, x := range []struct {
			o *optim.Optimizer
			p *bridge.Tensor
		}{{changed, p}, {twin, q}} {
			x.p.Mul(x.p).Sum().Backward()
			x.o.Step()
			x.o.ZeroGrad()
		}
	}
	step()
	require.NoError(t, changed.SetParams(optim.AllGroups, map[string]any{"lr": 1e5}))
	require.Equal(t, int64(1), changed.Revision())
	require.Nil(t, changed.TakeRollbacks())
	p.SetData(p.To(bridge.Float16))
	q.SetData(q.To(bridge.Float16))
	step()
	require.Equal(t, 0.1, changed.LR(0))
	rbs := changed.TakeRollbacks()
	require.Len(t, rbs, 1)
	rb := rbs[0]
	require.Equal(t, 0, rb.Group)
	require.Equal(t, []int64{1}, rb.Revisions)
	require.Equal(t, map[string]any{"lr": 0.1}, rb.Restored)
	require.EqualError(t, rb.Err, "torch: add_: value cannot be converted to type at::Half without overflow")
	require.Empty(t, rb.Left, "found before the update wrote anything")
	require.Equal(t, q.Float32s(), p.Float32s())
	require.Nil(t, changed.TakeRollbacks(), "taken once")
	step()
	require.Equal(t, q.Float32s(), p.Float32s(), "training goes on")
}
