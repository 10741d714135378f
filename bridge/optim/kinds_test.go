package optim_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// kindCases are runs of the optimizers beyond SGD and Adam: 8 steps each, over three parameters
// in one or two groups, with options, parameters without gradients and live changes.
func kindCases() []struct {
	name string
	in   stepInput
} {
	shapes := [][]int64{{3, 4}, {4}, {2, 2}}
	base := func(seed uint64) stepInput { return newRun(seed, 8, shapes...).allInOneGroup() }
	twoGroups := func(in stepInput, hyper map[string]any) stepInput {
		in.Groups = []groupJSON{{Params: []int{0, 2}, Hyper: map[string]any{}}, {Params: []int{1}, Hyper: hyper}}
		return in
	}
	with := func(in stepInput, f func(in *stepInput)) stepInput { f(&in); return in }
	skip := func(in *stepInput) { in.Grads[0][1] = nil; in.Grads[3][0] = nil; in.Grads[4][2] = nil }
	var cases []struct {
		name string
		in   stepInput
	}
	add := func(name, opt string, kw map[string]any, in stepInput) {
		in.Opt, in.Kwargs = opt, kw
		cases = append(cases, struct {
			name string
			in   stepInput
		}{name, in})
	}
	add("rmsprop", "RMSprop", map[string]any{}, base(31))
	add("rmsprop centered momentum weight decay", "RMSprop",
		map[string]any{"lr": 0.01, "alpha": 0.9, "momentum": 0.8, "centered": true, "weight_decay": 0.05}, base(32))
	add("rmsprop maximize eps", "RMSprop", map[string]any{"lr": 3e-3, "eps": 1e-3, "maximize": true, "momentum": 0.5}, base(33))
	add("rmsprop groups, skips, live alpha lr eps", "RMSprop", map[string]any{"lr": 0.01, "centered": true},
		with(twoGroups(base(34), map[string]any{"alpha": 0.5, "momentum": 0.9}), func(in *stepInput) {
			skip(in)
			in.Sets = []setJSON{
				{BeforeStep: 2, Group: 0, Params: map[string]any{"alpha": 0.7, "lr": 0.03}},
				{BeforeStep: 5, Group: optim.AllGroups, Params: map[string]any{"eps": 1e-4, "weight_decay": 0.1}},
			}
		}))
	add("adagrad", "Adagrad", map[string]any{}, base(41))
	add("adagrad lr decay weight decay initial accumulator", "Adagrad",
		map[string]any{"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.02, "initial_accumulator_value": 0.3, "eps": 1e-6}, base(42))
	add("adagrad maximize, groups, skips, live lr_decay", "Adagrad", map[string]any{"lr": 0.05, "maximize": true},
		with(twoGroups(base(43), map[string]any{"lr": 0.2, "lr_decay": 0.1}), func(in *stepInput) {
			skip(in)
			in.Sets = []setJSON{{BeforeStep: 3, Group: optim.AllGroups, Params: map[string]any{"lr_decay": 0.5, "eps": 1e-3}}}
		}))
	add("adadelta", "Adadelta", map[string]any{}, base(51))
	add("adadelta rho eps weight decay maximize", "Adadelta",
		map[string]any{"lr": 0.5, "rho": 0.6, "eps": 1e-4, "weight_decay": 0.1, "maximize": true}, base(52))
	add("adadelta groups, skips, live rho", "Adadelta", map[string]any{"lr": 2.0},
		with(twoGroups(base(53), map[string]any{"rho": 0.99}), func(in *stepInput) {
			skip(in)
			in.Sets = []setJSON{{BeforeStep: 4, Group: 1, Params: map[string]any{"rho": 0.3, "lr": 0.7}}}
		}))
	add("adamax", "Adamax", map[string]any{}, base(61))
	add("adamax betas weight decay maximize", "Adamax",
		map[string]any{"lr": 0.01, "betas": [2]float64{0.8, 0.95}, "eps": 1e-3, "weight_decay": 0.05, "maximize": true}, base(62))
	add("adamax groups, skips, live betas", "Adamax", map[string]any{"lr": 0.02},
		with(twoGroups(base(63), map[string]any{"betas": []any{0.5, 0.7}}), func(in *stepInput) {
			skip(in)
			in.Sets = []setJSON{{BeforeStep: 3, Group: 0, Params: map[string]any{"betas": []any{0.6, 0.9}}}}
		}))
	add("nadam", "NAdam", map[string]any{}, base(71))
	add("nadam momentum decay betas weight decay", "NAdam",
		map[string]any{"lr": 0.01, "betas": [2]float64{0.85, 0.98}, "momentum_decay": 0.3, "weight_decay": 0.01}, base(72))
	add("nadam groups, skips, live momentum_decay", "NAdam", map[string]any{"lr": 0.02},
		with(twoGroups(base(73), map[string]any{"momentum_decay": 0.1}), func(in *stepInput) {
			skip(in)
			in.Sets = []setJSON{{BeforeStep: 4, Group: optim.AllGroups, Params: map[string]any{"momentum_decay": 0.02, "lr": 0.05}}}
		}))
	// beta2 0.99: rho_t passes 5 at step 6, so both of RAdam's branches run.
	add("radam both branches", "RAdam", map[string]any{"lr": 0.01, "betas": [2]float64{0.9, 0.99}}, base(81))
	add("radam defaults", "RAdam", map[string]any{}, base(82))
	add("radam groups, skips, live betas and weight decay", "RAdam", map[string]any{"lr": 0.01, "weight_decay": 0.1},
		with(twoGroups(base(83), map[string]any{"betas": []any{0.5, 0.9}}), func(in *stepInput) {
			skip(in)
			in.Sets = []setJSON{{BeforeStep: 2, Group: 0, Params: map[string]any{"betas": []any{0.8, 0.95}, "weight_decay": 0}}}
		}))
	return cases
}

// TestNewKindsMatchPyTorch: RMSprop, Adagrad, Adadelta, Adamax, NAdam and RAdam take the steps
// torch.optim takes, within 1e-5 and in practice bit for bit (counted).
func TestNewKindsMatchPyTorch(t *testing.T) {
	cases := kindCases()
	ins := make([]stepInput, len(cases))
	for i, c := range cases {
		ins[i] = c.in
	}
	var wants [][][][]float64
	torchpy.RunJSON(t, stepScript, ins, &wants)
	total, exact := 0, 0
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := wants[ci]
			opt, ps := goOptimizer(t, c.in)
			got := runGo(t, opt, ps, c.in, 0)
			require.Len(t, got, len(want))
			require.GreaterOrEqual(t, len(got), 5)
			worst := 0.0
			for k := range got {
				for i := range ps {
					g := got[k][i].Float64s()
					for j := range g {
						d := math.Abs(g[j] - want[k][i][j])
						require.LessOrEqual(t, d, 1e-5, "step %d param %d element %d: Go %v, PyTorch %v", k+1, i, j, g[j], want[k][i][j])
						worst = max(worst, d)
						total++
						if d == 0 {
							exact++
						}
					}
				}
			}
			t.Logf("largest difference from PyTorch over %d steps: %g", len(got), worst)
		})
	}
	t.Logf("%d cases: %d of %d parameter values after each step bit for bit equal to PyTorch's", len(cases), exact, total)
}
