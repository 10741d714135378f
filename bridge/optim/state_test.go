package optim_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

func stateCases() []struct {
	name string
	in   stepInput
} {
	shapes := [][]int64{{3, 4}, {4}, {2, 2}}
	mk := func(seed uint64, opt string, kw map[string]any) stepInput {
		in := newRun(seed, 6, shapes...)
		in.Opt, in.Kwargs = opt, kw
		in.Groups = []groupJSON{{Params: []int{0, 2}, Hyper: map[string]any{}}, {Params: []int{1}, Hyper: map[string]any{"lr": 0.05}}}
		in.Sets = []setJSON{{BeforeStep: 2, Group: 0, Params: map[string]any{"lr": 0.02}}}
		return in
	}
	return []struct {
		name string
		in   stepInput
	}{
		{"sgd", mk(21, "SGD", map[string]any{"lr": 0.1, "momentum": 0.9, "nesterov": true, "weight_decay": 1e-3})},
		{"adam", mk(22, "Adam", map[string]any{"lr": 1e-2, "weight_decay": 1e-2, "amsgrad": true})},
		{"adamw", mk(23, "AdamW", map[string]any{"lr": 1e-2, "betas": [2]float64{0.8, 0.9}})},
		{"rmsprop", mk(24, "RMSprop", map[string]any{"lr": 1e-2, "momentum": 0.9, "centered": true, "weight_decay": 1e-2})},
		{"adagrad", mk(25, "Adagrad", map[string]any{"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1})},
		{"adadelta", mk(26, "Adadelta", map[string]any{"lr": 1.0, "rho": 0.8})},
		{"adamax", mk(27, "Adamax", map[string]any{"lr": 1e-2, "weight_decay": 1e-2})},
		{"nadam", mk(28, "NAdam", map[string]any{"lr": 1e-2, "momentum_decay": 0.1})},
		{"radam", mk(29, "RAdam", map[string]any{"lr": 1e-2, "betas": [2]float64{0.9, 0.99}})},
	}
}

// TestStateDictRoundTripContinuesIdentically: optimizer B, restored from A's state (through a
// file, or directly), takes exactly A's steps afterwards.
func TestStateDictRoundTripContinuesIdentically(t *testing.T) {
	for _, c := range stateCases() {
		for _, viaFile := range []bool{true, false} {
			name := c.name + map[bool]string{true: " via file", false: " directly"}[viaFile]
			t.Run(name, func(t *testing.T) {
				in := c.in
				a, pa := goOptimizer(t, in)
				first := in
				first.Grads = in.Grads[:3]
				runGo(t, a, pa, first, 0)

				sd := a.StateDict()
				if viaFile {
					path := filepath.Join(t.TempDir(), "opt.pt")
					require.NoError(t, bridge.SaveNamed(path, sd))
					var err error
					sd, err = bridge.LoadNamed(path)
					require.NoError(t, err)
				}
				// B: same params (copied), different hyper-parameters until the load.
				b, pb := goOptimizer(t, in)
				for i := range pb {
					bridge.NoGrad(func() { pb[i].CopyFrom(pa[i]) })
				}
				require.NoError(t, b.Set(optim.AllGroups, "lr", 0.5))
				require.NoError(t, b.LoadStateDict(sd))
				for g := range a.NumGroups() {
					require.Equal(t, a.Hyper(g), b.Hyper(g), "hyper-parameters restored, group %d", g)
				}

				rest := in
				rest.Sets = nil
				ga := runGo(t, a, pa, rest, 3)
				gb := runGo(t, b, pb, rest, 3)
				for k := range ga {
					for i := range ga[k] {
						require.Equal(t, ga[k][i].Float32s(), gb[k][i].Float32s(), "step %d param %d", k+4, i)
					}
				}
			})
		}
	}
}

func TestStateDictLayout(t *testing.T) {
	in := stateCases()[1].in // adam, amsgrad
	opt, ps := goOptimizer(t, in)
	setGrads(t, ps, [][]float64{in.Grads[0][0], nil, in.Grads[0][2]})
	opt.Step()
	var names []string
	for _, it := range opt.StateDict() {
		names = append(names, it.Name)
	}
	// Params are numbered across groups: group 0 holds tensors 0 and 2 of the run, which are
	// the optimizer's params 0 and 1; param 2 (group 1) had no gradient and has no state.
	require.Equal(t, []string{
		"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq",
		"state.1.step", "state.1.exp_avg", "state.1.exp_avg_sq", "state.1.max_exp_avg_sq",
		"param_groups.0.lr", "param_groups.0.betas.0", "param_groups.0.betas.1", "param_groups.0.eps",
		"param_groups.0.weight_decay", "param_groups.0.amsgrad", "param_groups.0.maximize",
		"param_groups.0.params.0", "param_groups.0.params.1",
		"param_groups.1.lr", "param_groups.1.betas.0", "param_groups.1.betas.1", "param_groups.1.eps",
		"param_groups.1.weight_decay", "param_groups.1.amsgrad", "param_groups.1.maximize",
		"param_groups.1.params.0",
	}, names)
	m := map[string]*bridge.Tensor{}
	for _, it := range opt.StateDict() {
		m[it.Name] = it.Tensor
	}
	require.Equal(t, bridge.Float32, m["state.0.step"].DType())
	require.Equal(t, 0, m["state.0.step"].Dim())
	require.Equal(t, 1.0, m["state.0.step"].Item())
	require.Equal(t, bridge.Float64, m["param_groups.1.lr"].DType())
	require.Equal(t, 0.05, m["param_groups.1.lr"].Item())
	require.Equal(t, bridge.Bool, m["param_groups.0.amsgrad"].DType())
	require.Equal(t, int64(2), m["param_groups.1.params.0"].ItemInt())
	require.Equal(t, bridge.Shape{2, 2}, m["state.1.exp_avg"].Shape())

	_, err := optim.NewStepLR(opt, 2, 0.5)
	require.NoError(t, err)
	found := false
	for _, it := range opt.StateDict() {
		found = found || it.Name == "param_groups.1.initial_lr"
	}
	require.True(t, found, "a scheduler adds initial_lr, as in PyTorch")
}

// TestLoadPyTorchStateDict: a state dict saved by Python's torch.save(opt.state_dict()) after
// three steps, loaded into our optimizer, continues exactly as PyTorch does.
func TestLoadPyTorchStateDict(t *testing.T) {
	cases := stateCases()
	dir := t.TempDir()
	ins := make([]stepInput, len(cases))
	for i, c := range cases {
		ins[i] = c.in
		ins[i].Save = filepath.Join(dir, c.name+".pt")
		ins[i].SaveAfter = 3
	}
	var want [][][][]float64
	torchpy.RunJSON(t, stepScript, ins, &want)
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := ins[ci]
			opt, ps := goOptimizer(t, in)
			for i, p := range ps {
				bridge.NoGrad(func() { p.CopyFrom(bridge.FromSlice(toF32(want[ci][2][i]), p.Shape()...)) })
			}
			require.NoError(t, opt.Set(optim.AllGroups, "lr", 0.9)) // the load must restore it
			sd, err := bridge.LoadNamed(in.Save)
			require.NoError(t, err)
			require.NoError(t, opt.LoadStateDict(sd))
			got := runGo(t, opt, ps, in, 3)
			for k := range got {
				for i := range ps {
					d := maxAbsDiff(t, got[k][i], want[ci][3+k][i])
					require.LessOrEqual(t, d, 1e-5, "step %d param %d", k+4, i)
					require.Zero(t, d, "bitwise, step %d param %d", k+4, i)
				}
			}
		})
	}
}

func TestLoadStateDictErrors(t *testing.T) {
	in := stateCases()[1].in // adam: groups {0, 2} and {1}
	src, ps := goOptimizer(t, in)
	setGrads(t, ps, in.Grads[0])
	src.Step()
	good := src.StateDict()

	without := func(name string) []bridge.Named {
		return slices.DeleteFunc(slices.Clone(good), func(it bridge.Named) bool { return it.Name == name })
	}
	replace := func(name string, v *bridge.Tensor) []bridge.Named {
		out := slices.Clone(good)
		for i := range out {
			if out[i].Name == name {
				out[i].Tensor = v
			}
		}
		return out
	}
	plus := func(name string, v *bridge.Tensor) []bridge.Named {
		return append(slices.Clone(good), bridge.Named{Name: name, Tensor: v})
	}
	f64 := func(v float64) *bridge.Tensor { return bridge.Scalar(v, bridge.Float64) }
	i64 := func(v int64) *bridge.Tensor { return bridge.FromSlice([]int64{v}).Reshape() }

	cases := []struct {
		name  string
		items []bridge.Named
		want  string
	}{
		{"missing lr", without("param_groups.0.lr"), "missing key param_groups.0.lr"},
		{"missing beta", without("param_groups.1.betas.1"), "missing key param_groups.1.betas.0 / param_groups.1.betas.1"},
		{"missing amsgrad", without("param_groups.0.amsgrad"), "missing key param_groups.0.amsgrad"},
		{"missing exp_avg_sq", without("state.1.exp_avg_sq"), "state.1.exp_avg_sq is missing"},
		{"wrong shape", replace("state.0.exp_avg", bridge.Zeros(bridge.Shape{5})),
			"state.0.exp_avg: shape [5] does not match parameter 0's shape [3, 4]"},
		{"too many params in a group", plus("param_groups.1.params.1", i64(7)),
			"param_groups.1.params: the state dict has 2 parameters in group 1, the optimizer has 1"},
		{"too few params in a group", without("param_groups.0.params.1"),
			"the state dict has 1 parameters in group 0, the optimizer has 2"},
		{"extra group", plus("param_groups.2.lr", f64(0.1)), "state dict has 3 parameter groups, the optimizer has 2"},
		{"sgd state in adam", plus("state.0.momentum_buffer", bridge.Zeros(bridge.Shape{3, 4})), `adam keeps no state "momentum_buffer"`},
		{"state of unknown param", plus("state.9.exp_avg", bridge.Zeros(bridge.Shape{3, 4})), "no parameter with id 9"},
		{"negative lr", replace("param_groups.1.lr", f64(-1)), `param_groups.1.lr: optim: hyper-parameter "lr" (group 1): must be >= 0`},
		{"bool as number", replace("param_groups.0.amsgrad", f64(1)), "param_groups.0.amsgrad: want a bool"},
		{"lr not a scalar", replace("param_groups.0.lr", bridge.Zeros(bridge.Shape{2})), "param_groups.0.lr: want a single value"},
		{"duplicate id", replace("param_groups.1.params.0", i64(0)), "parameter id 0 appears twice"},
		{"other key", plus("model.weight", f64(1)), `unexpected key "model.weight"`},
		{"nil tensor", replace("state.0.exp_avg", nil), "state.0.exp_avg: nil tensor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst, _ := goOptimizer(t, in)
			require.NoError(t, dst.Set(optim.AllGroups, "lr", 0.123))
			err := dst.LoadStateDict(c.items)
			require.Error(t, err)
			require.Contains(t, err.Error(), "optim: load adam state dict: ")
			require.Contains(t, err.Error(), c.want)
			lrs, _ := dst.GetAll("lr")
			require.Equal(t, []any{0.123, 0.123}, lrs, "nothing changes on error")
			for _, it := range dst.StateDict() {
				require.NotContains(t, it.Name, "state.", "no state loaded on error")
			}
		})
	}

	t.Run("converts dtype", func(t *testing.T) {
		dst, _ := goOptimizer(t, in)
		items := replace("state.0.exp_avg", bridge.Zeros(bridge.Shape{3, 4}, bridge.Float64))
		require.NoError(t, dst.LoadStateDict(items))
		for _, it := range dst.StateDict() {
			if it.Name == "state.0.exp_avg" {
				require.Equal(t, bridge.Float32, it.Tensor.DType())
			}
		}
	})
	t.Run("maximize is optional", func(t *testing.T) {
		dst, _ := goOptimizer(t, in)
		require.NoError(t, dst.LoadStateDict(without("param_groups.0.maximize")))
	})
}
