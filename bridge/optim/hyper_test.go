package optim_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
)

func twoGroupAdam(t *testing.T) *optim.Optimizer {
	t.Helper()
	a := bridge.Zeros(bridge.Shape{2}).SetRequiresGrad(true)
	b := bridge.Zeros(bridge.Shape{3}).SetRequiresGrad(true)
	opt, err := optim.NewAdam([]optim.Group{{Params: []*bridge.Tensor{a}}, {Params: []*bridge.Tensor{b}, Hyper: map[string]any{"lr": 0.1}}},
		optim.DefaultAdam())
	require.NoError(t, err)
	return opt
}

func twoGroupSGD(t *testing.T) *optim.Optimizer {
	t.Helper()
	a := bridge.Zeros(bridge.Shape{2}).SetRequiresGrad(true)
	b := bridge.Zeros(bridge.Shape{3}).SetRequiresGrad(true)
	opt, err := optim.NewSGD([]optim.Group{{Params: []*bridge.Tensor{a}}, {Params: []*bridge.Tensor{b}, Hyper: map[string]any{"nesterov": true}}},
		optim.SGDOptions{LR: 0.1, Momentum: 0.9})
	require.NoError(t, err)
	return opt
}

func TestSetGoodValues(t *testing.T) {
	cases := []struct {
		name  string
		opt   func(*testing.T) *optim.Optimizer
		group int
		key   string
		value any
		want  []any // per group afterwards
		other string
	}{
		{"lr everywhere", twoGroupAdam, optim.AllGroups, "lr", 3e-4, []any{3e-4, 3e-4}, ""},
		{"lr one group", twoGroupAdam, 1, "lr", 0.5, []any{1e-3, 0.5}, ""},
		{"lr from json.Number", twoGroupAdam, 0, "lr", json.Number("3e-4"), []any{3e-4, 0.1}, ""},
		{"lr from int", twoGroupAdam, 0, "lr", 1, []any{1.0, 0.1}, ""},
		{"lr zero", twoGroupAdam, 0, "lr", 0.0, []any{0.0, 0.1}, ""},
		{"betas from []any", twoGroupAdam, optim.AllGroups, "betas", []any{0.8, 0.99},
			[]any{[2]float64{0.8, 0.99}, [2]float64{0.8, 0.99}}, ""},
		{"betas from [2]float64", twoGroupAdam, 1, "betas", [2]float64{0, 0.5},
			[]any{[2]float64{0.9, 0.999}, [2]float64{0, 0.5}}, ""},
		{"beta1 alone", twoGroupAdam, 0, "beta1", 0.5, []any{0.5, 0.9}, "beta1"},
		{"beta2 alone", twoGroupAdam, 0, "beta2", float32(0.5), []any{0.5, 0.999}, "beta2"},
		{"eps", twoGroupAdam, optim.AllGroups, "eps", 1e-6, []any{1e-6, 1e-6}, ""},
		{"amsgrad", twoGroupAdam, 0, "amsgrad", true, []any{true, false}, ""},
		{"momentum", twoGroupSGD, 0, "momentum", 0.5, []any{0.5, 0.9}, ""},
		{"momentum zero without nesterov", twoGroupSGD, 0, "momentum", 0, []any{0.0, 0.9}, ""},
		{"dampening", twoGroupSGD, 0, "dampening", 0.1, []any{0.1, 0.0}, ""},
		{"weight_decay", twoGroupSGD, optim.AllGroups, "weight_decay", 5e-4, []any{5e-4, 5e-4}, ""},
		{"nesterov", twoGroupSGD, 0, "nesterov", true, []any{true, true}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opt := c.opt(t)
			require.NoError(t, opt.Set(c.group, c.key, c.value))
			got, err := opt.GetAll(c.key)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
			if c.other == "beta1" || c.other == "beta2" {
				b, err := opt.Get(0, "betas")
				require.NoError(t, err)
				v, _ := opt.Get(0, c.other)
				require.Contains(t, b.([2]float64), v, "beta1/beta2 are the two halves of betas")
			}
		})
	}
}

// Values are read as package params reads them: a number's text is the number (hotcb's CLI
// writes lr=1e-3 as the string "1e-3"), an integer may come as any Go integer or an integral
// float, a bool as 0/1 or its word.
func TestSetLooseValues(t *testing.T) {
	opt := twoGroupAdam(t)
	require.NoError(t, opt.SetParams(optim.AllGroups, map[string]any{"lr": "1e-3", "eps": json.Number("1e-6"),
		"weight_decay": float32(0.5), "betas": []any{"0.8", 0.9}, "amsgrad": "true"}))
	for g := 0; g < 2; g++ {
		h := opt.Hyper(g)
		require.Equal(t, 1e-3, h["lr"])
		require.Equal(t, 1e-6, h["eps"])
		require.Equal(t, 0.5, h["weight_decay"])
		require.Equal(t, [2]float64{0.8, 0.9}, h["betas"])
		require.Equal(t, true, h["amsgrad"])
	}
	require.NoError(t, opt.SetParams(0, map[string]any{"betas": "0.7, 0.95", "amsgrad": 0}))
	require.Equal(t, [2]float64{0.7, 0.95}, opt.Hyper(0)["betas"])
	require.Equal(t, false, opt.Hyper(0)["amsgrad"])
}

func TestSetBadValuesKeepOldValue(t *testing.T) {
	cases := []struct {
		name   string
		opt    func(*testing.T) *optim.Optimizer
		group  int
		params map[string]any
		key    string // the key the error must name
		reason string
	}{
		{"negative lr", twoGroupAdam, optim.AllGroups, map[string]any{"lr": -3e-4}, "lr", "must be >= 0"},
		{"NaN lr", twoGroupAdam, 0, map[string]any{"lr": math.NaN()}, "lr", "must be finite"},
		{"infinite lr", twoGroupAdam, 0, map[string]any{"lr": math.Inf(1)}, "lr", "must be finite"},
		{"lr as text that is no number", twoGroupAdam, 0, map[string]any{"lr": "abc"}, "lr", `want a number, got "abc"`},
		{"lr as bool", twoGroupAdam, 0, map[string]any{"lr": true}, "lr", "want a number"},
		{"lr nil", twoGroupAdam, 0, map[string]any{"lr": nil}, "lr", "want a number, got null"},
		{"beta1 one", twoGroupAdam, 0, map[string]any{"beta1": 1.0}, "beta1", "must be in [0, 1)"},
		{"beta2 negative", twoGroupAdam, 0, map[string]any{"beta2": -0.1}, "beta2", "must be in [0, 1)"},
		{"betas second out of range", twoGroupAdam, 1, map[string]any{"betas": []any{0.9, 1.5}}, "betas", "betas[1] must be in [0, 1)"},
		{"betas too short", twoGroupAdam, 0, map[string]any{"betas": []float64{0.9}}, "betas", "want a pair of numbers"},
		{"betas not numbers", twoGroupAdam, 0, map[string]any{"betas": []any{"a", "b"}}, "betas", "want a pair"},
		{"betas scalar", twoGroupAdam, 0, map[string]any{"betas": 0.9}, "betas", "want a pair"},
		{"negative eps", twoGroupAdam, 0, map[string]any{"eps": -1e-8}, "eps", "must be >= 0"},
		{"negative weight decay", twoGroupAdam, 0, map[string]any{"weight_decay": -0.1}, "weight_decay", "must be >= 0"},
		{"momentum on adam", twoGroupAdam, 0, map[string]any{"momentum": 0.9}, "momentum", "adam has no such hyper-parameter"},
		{"unknown name", twoGroupAdam, optim.AllGroups, map[string]any{"learning_rate": 0.1}, "learning_rate", "no such hyper-parameter"},
		{"betas on sgd", twoGroupSGD, 0, map[string]any{"betas": []any{0.9, 0.9}}, "betas", "sgd has no such"},
		{"amsgrad as 2", twoGroupAdam, 0, map[string]any{"amsgrad": 2}, "amsgrad", "want a bool, got 2"},
		{"amsgrad as text", twoGroupAdam, 0, map[string]any{"amsgrad": "maybe"}, "amsgrad", `want a bool, got "maybe"`},
		{"negative momentum", twoGroupSGD, 0, map[string]any{"momentum": -0.9}, "momentum", "must be >= 0"},
		{"momentum zero under nesterov", twoGroupSGD, 1, map[string]any{"momentum": 0.0}, "momentum", "nesterov momentum needs"},
		{"dampening under nesterov", twoGroupSGD, optim.AllGroups, map[string]any{"dampening": 0.5}, "dampening", "nesterov momentum needs"},
		{"dampening above one", twoGroupSGD, 0, map[string]any{"dampening": 2.0}, "dampening", "must be in [0, 1]"},
		{"no such group", twoGroupSGD, 2, map[string]any{"lr": 0.1}, "lr", "no parameter group 2"},
		{"negative group", twoGroupSGD, -2, map[string]any{"lr": 0.1}, "lr", "no parameter group -2"},
		{"all or nothing", twoGroupAdam, optim.AllGroups, map[string]any{"lr": 0.5, "eps": -1.0}, "eps", "must be >= 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opt := c.opt(t)
			before := []map[string]any{opt.Hyper(0), opt.Hyper(1)}
			err := opt.SetParams(c.group, c.params)
			require.Error(t, err)
			var he *optim.HyperError
			require.True(t, errors.As(err, &he), "%T", err)
			require.Equal(t, c.key, he.Key)
			require.Contains(t, err.Error(), `"`+c.key+`"`)
			require.Contains(t, err.Error(), c.reason)
			require.Equal(t, before, []map[string]any{opt.Hyper(0), opt.Hyper(1)}, "old values kept")
		})
	}
}

func TestGetErrors(t *testing.T) {
	opt := twoGroupSGD(t)
	_, err := opt.Get(0, "eps")
	require.ErrorContains(t, err, `"eps"`)
	_, err = opt.Get(5, "lr")
	require.ErrorContains(t, err, "no parameter group 5")
	_, err = opt.GetAll("betas")
	require.ErrorContains(t, err, `"betas"`)
	require.Equal(t, []string{"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"}, opt.Keys())
	require.Equal(t, map[string]any{"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0,
		"nesterov": true, "maximize": false}, opt.Hyper(1))
	require.Equal(t, 0.1, opt.LR(1))
	require.Equal(t, "sgd", opt.Name())
	require.Equal(t, 2, opt.NumGroups())
	require.Len(t, opt.Params(), 2)
	require.Len(t, opt.GroupParams(1), 1)
}

// TestSetBetweenStepsFromAnotherGoroutine is the control plane's pattern: commands arrive on
// another goroutine and are handed to the training goroutine, which applies them between steps.
// Run with -race.
func TestSetBetweenStepsFromAnotherGoroutine(t *testing.T) {
	p := bridge.FromSlice([]float32{1, 2}).SetRequiresGrad(true)
	opt, err := optim.NewSGD(optim.Params(p), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	cmds := make(chan map[string]any, 4)
	go func() {
		cmds <- map[string]any{"lr": 0.2}
		cmds <- map[string]any{"lr": -1.0} // rejected, lr stays 0.2
		close(cmds)
	}()
	var errs []error
	apply := func(c map[string]any) {
		if err := opt.SetParams(optim.AllGroups, c); err != nil {
			errs = append(errs, err)
		}
	}
	for step := 0; step < 20; step++ {
		select {
		case c, ok := <-cmds:
			if ok {
				apply(c)
			}
		default:
		}
		p.Sum().Backward()
		opt.Step()
		opt.ZeroGrad()
	}
	for c := range cmds {
		apply(c)
	}
	require.Len(t, errs, 1)
	require.ErrorContains(t, errs[0], `"lr"`)
	require.Equal(t, 0.2, opt.LR(0))
}
