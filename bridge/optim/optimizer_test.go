package optim_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// stepScript replays runs of torch.optim on given weights and gradients (a list of stepInput)
// and prints, for each, the parameters after each step.
const stepScript = `
import json, sys, torch
def fix(d):
    d = dict(d)
    if "betas" in d:
        d["betas"] = tuple(d["betas"])
    return d
def run(cfg):
    ps = [torch.tensor(p["data"], dtype=torch.float32).reshape(p["shape"]).requires_grad_() for p in cfg["params"]]
    groups = []
    for g in cfg["groups"]:
        d = fix(g["hyper"])
        d["params"] = [ps[i] for i in g["params"]]
        groups.append(d)
    opt = getattr(torch.optim, cfg["opt"])(groups, **fix(cfg["kwargs"]))
    out = []
    for k, grads in enumerate(cfg["grads"]):
        for s in cfg["sets"] or []:
            if s["before_step"] != k:
                continue
            gs = opt.param_groups if s["group"] < 0 else [opt.param_groups[s["group"]]]
            for g in gs:
                for key, v in fix(s["params"]).items():
                    g[key] = v
        for p, g in zip(ps, grads):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float32).reshape(p.shape)
        opt.step()
        out.append([p.detach().reshape(-1).tolist() for p in ps])
        if cfg["save"] and k + 1 == cfg["save_after"]:
            torch.save(opt.state_dict(), cfg["save"])
    return out
print(json.dumps([run(cfg) for cfg in json.load(sys.stdin)]))
`

type groupJSON struct {
	Params []int          `json:"params"`
	Hyper  map[string]any `json:"hyper"`
}

type setJSON struct {
	BeforeStep int            `json:"before_step"`
	Group      int            `json:"group"`
	Params     map[string]any `json:"params"`
}

type stepInput struct {
	Opt       string         `json:"opt"` // torch.optim class name
	Kwargs    map[string]any `json:"kwargs"`
	Groups    []groupJSON    `json:"groups"`
	Params    []tensorJSON   `json:"params"`
	Grads     [][][]float64  `json:"grads"`      // [step][param] (nil: no gradient)
	Sets      []setJSON      `json:"sets"`       // live changes before a step
	Save      string         `json:"save"`       // where to torch.save the state dict…
	SaveAfter int            `json:"save_after"` // …after this many steps
}

// newRun makes random weights and gradients for params of the given shapes.
func newRun(seed uint64, steps int, shapes ...[]int64) stepInput {
	r := rand.New(rand.NewPCG(seed, 1))
	in := stepInput{}
	for _, s := range shapes {
		n := bridge.Shape(s).Numel()
		in.Params = append(in.Params, tensorJSON{Shape: s, Data: randValues(r, n, 1)})
	}
	for range steps {
		var gs [][]float64
		for _, p := range in.Params {
			gs = append(gs, randValues(r, int64(len(p.Data)), 0.5))
		}
		in.Grads = append(in.Grads, gs)
	}
	return in
}

func (in stepInput) allInOneGroup() stepInput {
	g := groupJSON{Hyper: map[string]any{}}
	for i := range in.Params {
		g.Params = append(g.Params, i)
	}
	in.Groups = []groupJSON{g}
	return in
}

// goOptimizer builds our optimizer for in, on fresh parameters.
func goOptimizer(t *testing.T, in stepInput) (*optim.Optimizer, []*bridge.Tensor) {
	t.Helper()
	ps := make([]*bridge.Tensor, len(in.Params))
	for i, p := range in.Params {
		ps[i] = newParam(p)
	}
	var groups []optim.Group
	for _, g := range in.Groups {
		og := optim.Group{Hyper: g.Hyper}
		for _, i := range g.Params {
			og.Params = append(og.Params, ps[i])
		}
		groups = append(groups, og)
	}
	kw := in.Kwargs
	f := func(k string, def float64) float64 {
		if v, ok := kw[k]; ok {
			return v.(float64)
		}
		return def
	}
	b := func(k string) bool { v, _ := kw[k].(bool); return v }
	var opt *optim.Optimizer
	var err error
	switch in.Opt {
	case "SGD":
		opt, err = optim.NewSGD(groups, optim.SGDOptions{LR: f("lr", 0), Momentum: f("momentum", 0),
			Dampening: f("dampening", 0), WeightDecay: f("weight_decay", 0), Nesterov: b("nesterov"), Maximize: b("maximize")})
	case "Adam", "AdamW":
		o := optim.DefaultAdam()
		if in.Opt == "AdamW" {
			o = optim.DefaultAdamW()
		}
		o.LR, o.Eps, o.WeightDecay = f("lr", o.LR), f("eps", o.Eps), f("weight_decay", o.WeightDecay)
		if v, ok := kw["betas"]; ok {
			o.Betas = v.([2]float64)
		}
		o.AMSGrad, o.Maximize = b("amsgrad"), b("maximize")
		if in.Opt == "Adam" {
			opt, err = optim.NewAdam(groups, o)
		} else {
			opt, err = optim.NewAdamW(groups, o)
		}
	case "RMSprop":
		o := optim.DefaultRMSprop()
		o.LR, o.Alpha, o.Eps = f("lr", o.LR), f("alpha", o.Alpha), f("eps", o.Eps)
		o.WeightDecay, o.Momentum, o.Centered, o.Maximize = f("weight_decay", 0), f("momentum", 0), b("centered"), b("maximize")
		opt, err = optim.NewRMSprop(groups, o)
	case "Adagrad":
		o := optim.DefaultAdagrad()
		o.LR, o.LRDecay, o.WeightDecay = f("lr", o.LR), f("lr_decay", 0), f("weight_decay", 0)
		o.InitialAccumulatorValue, o.Eps, o.Maximize = f("initial_accumulator_value", 0), f("eps", o.Eps), b("maximize")
		opt, err = optim.NewAdagrad(groups, o)
	case "Adadelta":
		o := optim.DefaultAdadelta()
		o.LR, o.Rho, o.Eps, o.WeightDecay, o.Maximize = f("lr", o.LR), f("rho", o.Rho), f("eps", o.Eps), f("weight_decay", 0), b("maximize")
		opt, err = optim.NewAdadelta(groups, o)
	case "Adamax":
		o := optim.DefaultAdamax()
		o.LR, o.Eps, o.WeightDecay, o.Maximize = f("lr", o.LR), f("eps", o.Eps), f("weight_decay", 0), b("maximize")
		if v, ok := kw["betas"]; ok {
			o.Betas = v.([2]float64)
		}
		opt, err = optim.NewAdamax(groups, o)
	case "NAdam":
		o := optim.DefaultNAdam()
		o.LR, o.Eps, o.WeightDecay, o.MomentumDecay = f("lr", o.LR), f("eps", o.Eps), f("weight_decay", 0), f("momentum_decay", o.MomentumDecay)
		if v, ok := kw["betas"]; ok {
			o.Betas = v.([2]float64)
		}
		opt, err = optim.NewNAdam(groups, o)
	case "RAdam":
		o := optim.DefaultRAdam()
		o.LR, o.Eps, o.WeightDecay = f("lr", o.LR), f("eps", o.Eps), f("weight_decay", 0)
		if v, ok := kw["betas"]; ok {
			o.Betas = v.([2]float64)
		}
		opt, err = optim.NewRAdam(groups, o)
	default:
		t.Fatalf("unknown optimizer %s", in.Opt)
	}
	require.NoError(t, err)
	require.Equal(t, in.Opt, opt.TorchName())
	return opt, ps
}

// runGo replays in with our optimizer from step `from` on and returns the parameters after
// each step.
func runGo(t *testing.T, opt *optim.Optimizer, ps []*bridge.Tensor, in stepInput, from int) [][]*bridge.Tensor {
	t.Helper()
	var out [][]*bridge.Tensor
	for k := from; k < len(in.Grads); k++ {
		for _, s := range in.Sets {
			if s.BeforeStep == k {
				require.NoError(t, opt.SetParams(s.Group, s.Params))
			}
		}
		setGrads(t, ps, in.Grads[k])
		opt.Step()
		snap := make([]*bridge.Tensor, len(ps))
		for i, p := range ps {
			snap[i] = p.Detach().Clone()
		}
		out = append(out, snap)
	}
	return out
}

func TestStepsMatchPyTorch(t *testing.T) {
	shapes := [][]int64{{3, 4}, {4}, {2, 2}}
	base := func(seed uint64) stepInput { return newRun(seed, 3, shapes...).allInOneGroup() }
	withGrads := func(in stepInput, f func(in *stepInput)) stepInput { f(&in); return in }
	twoGroups := func(in stepInput, hyper map[string]any) stepInput {
		in.Groups = []groupJSON{{Params: []int{0, 2}, Hyper: map[string]any{}}, {Params: []int{1}, Hyper: hyper}}
		return in
	}
	type tc struct {
		name string
		in   stepInput
	}
	var cases []tc
	add := func(name, opt string, kw map[string]any, in stepInput) {
		in.Opt, in.Kwargs = opt, kw
		cases = append(cases, tc{name, in})
	}
	add("sgd plain", "SGD", map[string]any{"lr": 0.1}, base(1))
	add("sgd momentum nesterov weight decay", "SGD",
		map[string]any{"lr": 0.1, "momentum": 0.9, "nesterov": true, "weight_decay": 1e-2}, base(2))
	add("sgd momentum dampening maximize", "SGD",
		map[string]any{"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 1e-3, "maximize": true}, base(3))
	add("adam", "Adam", map[string]any{"lr": 1e-2}, base(4))
	add("adam weight decay amsgrad", "Adam",
		map[string]any{"lr": 1e-2, "betas": [2]float64{0.8, 0.95}, "eps": 1e-6, "weight_decay": 0.1, "amsgrad": true}, base(5))
	add("adam maximize", "Adam", map[string]any{"lr": 3e-3, "maximize": true}, base(6))
	add("adamw", "AdamW", map[string]any{"lr": 1e-2}, base(7))
	add("adamw amsgrad strong decay", "AdamW",
		map[string]any{"lr": 5e-2, "weight_decay": 0.5, "amsgrad": true, "betas": [2]float64{0.5, 0.9}}, base(8))
	add("sgd groups with different lrs", "SGD", map[string]any{"lr": 0.1, "momentum": 0.9},
		twoGroups(base(9), map[string]any{"lr": 0.01, "momentum": 0.5}))
	add("adam groups with different lrs and betas", "Adam", map[string]any{"lr": 1e-2},
		twoGroups(base(10), map[string]any{"lr": 1e-1, "betas": []any{0.5, 0.6}, "weight_decay": 0.01}))
	add("adam skips params without grad", "Adam", map[string]any{"lr": 1e-2},
		withGrads(base(11), func(in *stepInput) { in.Grads[0][1] = nil; in.Grads[2][0] = nil }))
	add("sgd skips params without grad", "SGD", map[string]any{"lr": 0.1, "momentum": 0.9},
		withGrads(base(12), func(in *stepInput) { in.Grads[0][2] = nil }))
	add("live lr and weight decay change", "SGD", map[string]any{"lr": 0.1, "momentum": 0.9},
		withGrads(base(13), func(in *stepInput) {
			in.Sets = []setJSON{
				{BeforeStep: 1, Group: optim.AllGroups, Params: map[string]any{"lr": 0.37}},
				{BeforeStep: 2, Group: 0, Params: map[string]any{"weight_decay": 0.2, "momentum": 0.5}},
			}
		}))
	add("live adam betas, eps and lr per group", "Adam", map[string]any{"lr": 1e-2},
		withGrads(twoGroups(base(14), map[string]any{}), func(in *stepInput) {
			in.Sets = []setJSON{
				{BeforeStep: 1, Group: 1, Params: map[string]any{"lr": 0.2, "betas": []any{0.7, 0.77}}},
				{BeforeStep: 2, Group: optim.AllGroups, Params: map[string]any{"eps": 1e-3}},
			}
		}))

	ins := make([]stepInput, len(cases))
	for i, c := range cases {
		ins[i] = c.in
	}
	var wants [][][][]float64 // [case][step][param][element]
	torchpy.RunJSON(t, stepScript, ins, &wants)
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := wants[ci]
			opt, ps := goOptimizer(t, c.in)
			got := runGo(t, opt, ps, c.in, 0)
			require.Len(t, got, len(want))
			worst := 0.0
			for k := range got {
				for i := range ps {
					d := maxAbsDiff(t, got[k][i], want[k][i])
					require.LessOrEqual(t, d, 1e-5, "step %d param %d", k+1, i)
					worst = max(worst, d)
				}
			}
			t.Logf("largest difference from PyTorch over %d steps: %g", len(got), worst)
		})
	}
}

func TestSkippedParamHasNoState(t *testing.T) {
	a := bridge.FromSlice([]float32{1, 2}).SetRequiresGrad(true)
	b := bridge.FromSlice([]float32{3, 4}).SetRequiresGrad(true)
	opt, err := optim.NewAdam(optim.Params(a, b), optim.DefaultAdam())
	require.NoError(t, err)
	a.Mul(a).Sum().Backward()
	opt.Step()
	require.Equal(t, []float32{3, 4}, b.Float32s())
	for _, it := range opt.StateDict() {
		require.NotContains(t, it.Name, "state.1.", "no state for a parameter never updated")
	}
	opt.ZeroGrad()
	require.Nil(t, a.Grad(), "ZeroGrad sets gradients to None")
}

func TestLiveLRChangesNextStepExactly(t *testing.T) {
	// Dyadic values: p - lr*g is exact in float32, whatever the kernel's rounding.
	p := bridge.FromSlice([]float32{1, -2, 0.5}).SetRequiresGrad(true)
	opt, err := optim.NewSGD(optim.Params(p), optim.SGDOptions{LR: 0.25})
	require.NoError(t, err)
	g := []float64{0.5, 1, -2}
	setGrads(t, []*bridge.Tensor{p}, [][]float64{g})
	opt.Step()
	require.Equal(t, []float32{0.875, -2.25, 1}, p.Float32s())

	require.NoError(t, opt.Set(optim.AllGroups, "lr", 0.5))
	v, err := opt.Get(0, "lr")
	require.NoError(t, err)
	require.Equal(t, 0.5, v)
	opt.Step() // same gradient: Step does not consume it
	require.Equal(t, []float32{0.625, -2.75, 2}, p.Float32s())
}

func TestConstructorErrors(t *testing.T) {
	p := bridge.Zeros(bridge.Shape{2}).SetRequiresGrad(true)
	q := bridge.Zeros(bridge.Shape{2}).SetRequiresGrad(true)
	freed := bridge.Zeros(bridge.Shape{2})
	require.NoError(t, freed.Free())
	adam := func(f func(*optim.AdamOptions)) optim.AdamOptions { o := optim.DefaultAdam(); f(&o); return o }
	cases := []struct {
		name string
		make func() error
		want string
	}{
		{"negative lr", func() error { _, err := optim.NewSGD(optim.Params(p), optim.SGDOptions{LR: -1}); return err }, `"lr"`},
		{"nesterov without momentum", func() error {
			_, err := optim.NewSGD(optim.Params(p), optim.SGDOptions{LR: 1, Nesterov: true})
			return err
		}, "nesterov"},
		{"beta out of range", func() error {
			_, err := optim.NewAdam(optim.Params(p), adam(func(o *optim.AdamOptions) { o.Betas[1] = 1 }))
			return err
		}, `"betas"`},
		{"negative eps", func() error {
			_, err := optim.NewAdamW(optim.Params(p), adam(func(o *optim.AdamOptions) { o.Eps = -1 }))
			return err
		}, `"eps"`},
		{"bad group override", func() error {
			_, err := optim.NewAdam([]optim.Group{{Params: []*bridge.Tensor{p}, Hyper: map[string]any{"momentum": 0.9}}}, optim.DefaultAdam())
			return err
		}, `"momentum" (group 0): adam has no such hyper-parameter`},
		{"no groups", func() error { _, err := optim.NewSGD(nil, optim.SGDOptions{}); return err }, "no parameter groups"},
		{"nil param", func() error { _, err := optim.NewSGD(optim.Params(p, nil), optim.SGDOptions{}); return err }, "parameter 1 is nil"},
		{"freed param", func() error { _, err := optim.NewSGD(optim.Params(freed), optim.SGDOptions{}); return err }, "freed"},
		{"param in two groups", func() error {
			_, err := optim.NewSGD([]optim.Group{{Params: []*bridge.Tensor{p, q}}, {Params: []*bridge.Tensor{p}}}, optim.SGDOptions{})
			return err
		}, "group 1: parameter 0 is also parameter 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.make()
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}
