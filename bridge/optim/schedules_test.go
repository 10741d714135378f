package optim_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// schedule2Script builds an optimizer (SGD or Adam) with the groups' rates, the schedulers of
// each case, and prints after construction and after each step the rates and the momenta
// (momentum, or beta1 of betas). ReduceLROnPlateau steps on the case's metrics.
const schedule2Script = `
import json, math, sys, warnings, torch
from torch.optim import lr_scheduler as S
warnings.simplefilter("ignore")
lambdas = {
    "pow": lambda e: 0.95 ** e,
    "inv": lambda e: 1 / (1 + e),
    "warm": lambda e: min(1.0, (e + 1) / 5),
}
def make(opt, s):
    a, k = s["args"], s["kind"]
    if k == "StepLR": return S.StepLR(opt, a["step_size"], a["gamma"])
    if k == "MultiStepLR": return S.MultiStepLR(opt, a["milestones"], a["gamma"])
    if k == "ExponentialLR": return S.ExponentialLR(opt, a["gamma"])
    if k == "LambdaLR": return S.LambdaLR(opt, [lambdas[n] for n in a["fns"]] if len(a["fns"]) > 1 else lambdas[a["fns"][0]])
    if k == "CyclicLR": return S.CyclicLR(opt, **a)
    if k == "OneCycleLR": return S.OneCycleLR(opt, **a)
    if k == "ReduceLROnPlateau": return S.ReduceLROnPlateau(opt, **a)
    raise ValueError(k)
def momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]
out = []
for c in json.load(sys.stdin):
    ps = [torch.zeros(1, requires_grad=True) for _ in c["lrs"]]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(ps, c["lrs"])]
    opt = torch.optim.Adam(groups) if c["opt"] == "Adam" else torch.optim.SGD(groups, lr=1.0, momentum=0.5)
    scheds = [make(opt, s) for s in c["scheds"]]
    sched = scheds[0] if len(scheds) == 1 else S.SequentialLR(opt, scheds, c["milestones"])
    plateau = isinstance(sched, S.ReduceLROnPlateau)
    rows = [{"lrs": [g["lr"] for g in opt.param_groups], "m": momenta(opt)}]
    for k in range(1, c["steps"] + 1):
        opt.step()
        if str(k) in (c["sets"] or {}):
            for g in opt.param_groups:
                g["lr"] = c["sets"][str(k)]
        if plateau:
            sched.step(c["metrics"][k - 1])
        else:
            sched.step()
        rows.append({"lrs": [g["lr"] for g in opt.param_groups], "m": momenta(opt)})
    out.append({"rows": rows, "groups": [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]})
print(json.dumps(out, default=str))
`

type schedule2Case struct {
	Opt        string             `json:"opt"` // "SGD" (momentum 0.5) or "Adam"
	LRs        []float64          `json:"lrs"`
	Scheds     []schedSpec        `json:"scheds"`
	Milestones []int              `json:"milestones"`
	Steps      int                `json:"steps"`
	Sets       map[string]float64 `json:"sets"`
	Metrics    []float64          `json:"metrics"`
}

type schedule2Out struct {
	Rows []struct {
		LRs []float64 `json:"lrs"`
		M   []float64 `json:"m"`
	} `json:"rows"`
	Groups []map[string]any `json:"groups"`
}

// goLambdas are the Python lambdas in Go; "pow" uses Go's math.Pow, which may differ from
// Python's ** in the last bit (the only rates here that are not bit for bit PyTorch's).
var goLambdas = map[string]func(int) float64{
	"pow":  func(e int) float64 { return math.Pow(0.95, float64(e)) },
	"inv":  func(e int) float64 { return 1 / float64(1+e) },
	"warm": func(e int) float64 { return math.Min(1, float64(e+1)/5) },
}

func floats(v any) []float64 {
	switch x := v.(type) {
	case float64:
		return []float64{x}
	case []any:
		out := make([]float64, len(x))
		for i, e := range x {
			out[i] = floats(e)[0]
		}
		return out
	case int:
		return []float64{float64(x)}
	}
	panic("not numbers")
}

// goSchedule builds the case's schedulers on opt; plateau is set for ReduceLROnPlateau.
func goSchedule(t *testing.T, opt *optim.Optimizer, c schedule2Case) (s optim.Scheduler, plateau *optim.ReduceLROnPlateau) {
	t.Helper()
	var ss []*optim.LRScheduler
	for _, sp := range c.Scheds {
		a := sp.Args
		num := func(k string, def float64) float64 {
			if v, ok := a[k]; ok {
				return floats(v)[0]
			}
			return def
		}
		var sc *optim.LRScheduler
		var err error
		switch sp.Kind {
		case "StepLR":
			sc, err = optim.NewStepLR(opt, int(num("step_size", 0)), num("gamma", 0.1))
		case "MultiStepLR":
			var ms []int
			for _, m := range floats(a["milestones"]) {
				ms = append(ms, int(m))
			}
			sc, err = optim.NewMultiStepLR(opt, ms, num("gamma", 0.1))
		case "ExponentialLR":
			sc, err = optim.NewExponentialLR(opt, num("gamma", 0))
		case "LambdaLR":
			var fns []func(int) float64
			for _, n := range a["fns"].([]any) {
				fns = append(fns, goLambdas[n.(string)])
			}
			sc, err = optim.NewLambdaLR(opt, fns...)
		case "CyclicLR":
			o := optim.DefaultCyclic(0, 0)
			o.BaseLR, o.MaxLR = floats(a["base_lr"]), floats(a["max_lr"])
			o.StepSizeUp, o.StepSizeDown = num("step_size_up", 2000), num("step_size_down", 0)
			if m, ok := a["mode"]; ok {
				o.Mode = m.(string)
			}
			o.Gamma = num("gamma", 1)
			if cm, ok := a["cycle_momentum"]; ok {
				o.CycleMomentum = cm.(bool)
			}
			o.BaseMomentum, o.MaxMomentum = num("base_momentum", 0.8), num("max_momentum", 0.9)
			sc, err = optim.NewCyclicLR(opt, o)
		case "OneCycleLR":
			o := optim.DefaultOneCycle(0, int(num("total_steps", 0)))
			o.MaxLR = floats(a["max_lr"])
			o.PctStart = num("pct_start", 0.3)
			if s, ok := a["anneal_strategy"]; ok {
				o.AnnealStrategy = s.(string)
			}
			if cm, ok := a["cycle_momentum"]; ok {
				o.CycleMomentum = cm.(bool)
			}
			o.BaseMomentum, o.MaxMomentum = num("base_momentum", 0.85), num("max_momentum", 0.95)
			o.DivFactor, o.FinalDivFactor = num("div_factor", 25), num("final_div_factor", 1e4)
			o.ThreePhase, _ = a["three_phase"].(bool)
			sc, err = optim.NewOneCycleLR(opt, o)
		case "ReduceLROnPlateau":
			o := optim.DefaultPlateau()
			if m, ok := a["mode"]; ok {
				o.Mode = m.(string)
			}
			if m, ok := a["threshold_mode"]; ok {
				o.ThresholdMode = m.(string)
			}
			o.Factor, o.Threshold = num("factor", o.Factor), num("threshold", o.Threshold)
			o.Patience, o.Cooldown = int(num("patience", 10)), int(num("cooldown", 0))
			if v, ok := a["min_lr"]; ok {
				o.MinLR = floats(v)
			}
			o.Eps = num("eps", o.Eps)
			p, err := optim.NewReduceLROnPlateau(opt, o)
			require.NoError(t, err)
			return nil, p
		default:
			t.Fatalf("unknown scheduler %s", sp.Kind)
		}
		require.NoError(t, err)
		require.Equal(t, sp.Kind, sc.Name())
		ss = append(ss, sc)
	}
	if len(ss) == 1 {
		return ss[0], nil
	}
	q, err := optim.NewSequentialLR(opt, ss, c.Milestones)
	require.NoError(t, err)
	return q, nil
}

func momentaOf(t *testing.T, opt *optim.Optimizer) []float64 {
	key := "momentum"
	if opt.Name() == "adam" {
		key = "beta1"
	}
	vs, err := opt.GetAll(key)
	require.NoError(t, err)
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = v.(float64)
	}
	return out
}

// TestMoreSchedulersMatchPyTorch: MultiStepLR, ExponentialLR, LambdaLR, CyclicLR (three modes,
// momentum), OneCycleLR (cos and linear, two and three phases, momentum or beta1) and
// ReduceLROnPlateau set the rates — and the momenta — PyTorch sets, at every step.
func TestMoreSchedulersMatchPyTorch(t *testing.T) {
	sp := func(kind string, args map[string]any) schedSpec { return schedSpec{kind, args} }
	cyc := func(mode string, extra map[string]any) schedSpec {
		a := map[string]any{"base_lr": []any{0.01, 0.02}, "max_lr": 0.1, "step_size_up": 4.0, "mode": mode}
		for k, v := range extra {
			a[k] = v
		}
		return sp("CyclicLR", a)
	}
	plateau := func(args map[string]any, metrics ...float64) schedule2Case {
		return schedule2Case{LRs: []float64{0.1, 0.05}, Scheds: []schedSpec{sp("ReduceLROnPlateau", args)},
			Steps: len(metrics), Metrics: metrics}
	}
	falling := []float64{1, 0.9, 0.9, 0.9, 0.89995, 0.9, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.7, 0.7, 0.7, 0.7}
	rising := []float64{1, 2, 2, 2.0001, 2, 3, 3, 3, 3, 3, 3, 3.2, 3.2, 3.2}
	cases := []struct {
		name string
		c    schedule2Case
	}{
		{"MultiStepLR, repeated milestone", schedule2Case{LRs: []float64{0.1, 0.3}, Steps: 14,
			Scheds: []schedSpec{sp("MultiStepLR", map[string]any{"milestones": []any{3, 7, 7, 11}, "gamma": 0.5})}}},
		{"MultiStepLR with a live lr change", schedule2Case{LRs: []float64{0.1}, Steps: 12, Sets: map[string]float64{"5": 0.04},
			Scheds: []schedSpec{sp("MultiStepLR", map[string]any{"milestones": []any{4, 8}, "gamma": 0.1})}}},
		{"ExponentialLR", schedule2Case{LRs: []float64{0.1, 1}, Steps: 15, Scheds: []schedSpec{sp("ExponentialLR", map[string]any{"gamma": 0.9})}}},
		{"LambdaLR one function", schedule2Case{LRs: []float64{0.1, 0.2}, Steps: 12,
			Scheds: []schedSpec{sp("LambdaLR", map[string]any{"fns": []any{"pow"}})}}},
		{"LambdaLR per group, live change lasts one step", schedule2Case{LRs: []float64{0.1, 0.2}, Steps: 12, Sets: map[string]float64{"4": 0.5},
			Scheds: []schedSpec{sp("LambdaLR", map[string]any{"fns": []any{"inv", "warm"}})}}},
		{"warmup lambda then exponential then multistep", schedule2Case{LRs: []float64{0.3}, Steps: 20, Milestones: []int{5, 10},
			Scheds: []schedSpec{sp("LambdaLR", map[string]any{"fns": []any{"warm"}}), sp("ExponentialLR", map[string]any{"gamma": 0.8}),
				sp("MultiStepLR", map[string]any{"milestones": []any{3, 6}, "gamma": 0.5})}}},
		{"CyclicLR triangular", schedule2Case{LRs: []float64{0.5, 0.5}, Steps: 20, Scheds: []schedSpec{cyc("triangular", nil)}}},
		{"CyclicLR triangular2 asymmetric", schedule2Case{LRs: []float64{0.5, 0.5}, Steps: 24,
			Scheds: []schedSpec{cyc("triangular2", map[string]any{"step_size_down": 2.0, "base_momentum": 0.7, "max_momentum": 0.95})}}},
		{"CyclicLR exp_range", schedule2Case{LRs: []float64{0.5, 0.5}, Steps: 20, Scheds: []schedSpec{cyc("exp_range", map[string]any{"gamma": 0.9})}}},
		{"CyclicLR on Adam without momentum", schedule2Case{Opt: "Adam", LRs: []float64{0.5, 0.5}, Steps: 12,
			Scheds: []schedSpec{cyc("triangular", map[string]any{"cycle_momentum": false})}}},
		{"OneCycleLR cos", schedule2Case{LRs: []float64{1, 1}, Steps: 20,
			Scheds: []schedSpec{sp("OneCycleLR", map[string]any{"max_lr": []any{0.1, 0.5}, "total_steps": 20})}}},
		{"OneCycleLR linear three phase", schedule2Case{LRs: []float64{1}, Steps: 30,
			Scheds: []schedSpec{sp("OneCycleLR", map[string]any{"max_lr": 0.2, "total_steps": 30, "anneal_strategy": "linear",
				"three_phase": true, "pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0})}}},
		{"OneCycleLR on Adam cycles beta1", schedule2Case{Opt: "Adam", LRs: []float64{1, 1}, Steps: 16,
			Scheds: []schedSpec{sp("OneCycleLR", map[string]any{"max_lr": 0.01, "total_steps": 16, "base_momentum": 0.8, "max_momentum": 0.9})}}},
		{"OneCycleLR without momentum", schedule2Case{LRs: []float64{1}, Steps: 10,
			Scheds: []schedSpec{sp("OneCycleLR", map[string]any{"max_lr": 0.3, "total_steps": 10, "cycle_momentum": false, "pct_start": 0.5})}}},
		{"ReduceLROnPlateau defaults", plateau(map[string]any{"patience": 2}, falling...)},
		{"ReduceLROnPlateau abs, cooldown, min_lr per group", plateau(map[string]any{"patience": 1, "threshold_mode": "abs",
			"threshold": 0.01, "cooldown": 2, "min_lr": []any{0.01, 0.004}, "factor": 0.5}, falling...)},
		{"ReduceLROnPlateau max rel", plateau(map[string]any{"mode": "max", "patience": 1, "factor": 0.3, "threshold": 0.01}, rising...)},
		{"ReduceLROnPlateau max abs, eps skips small cuts", plateau(map[string]any{"mode": "max", "threshold_mode": "abs", "patience": 0,
			"eps": 0.02, "factor": 0.9}, rising...)},
	}
	in := make([]schedule2Case, len(cases))
	for i, c := range cases {
		if c.c.Opt == "" {
			cases[i].c.Opt = "SGD"
		}
		in[i] = cases[i].c
	}
	var want []schedule2Out
	torchpy.RunJSON(t, schedule2Script, in, &want)
	exact, total := 0, 0
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var groups []optim.Group
			for _, lr := range c.c.LRs {
				groups = append(groups, optim.Group{Params: []*bridge.Tensor{bridge.Zeros(bridge.Shape{1}).SetRequiresGrad(true)},
					Hyper: map[string]any{"lr": lr}})
			}
			var opt *optim.Optimizer
			var err error
			if c.c.Opt == "Adam" {
				opt, err = optim.NewAdam(groups, optim.DefaultAdam())
			} else {
				opt, err = optim.NewSGD(groups, optim.SGDOptions{LR: 1, Momentum: 0.5})
			}
			require.NoError(t, err)
			s, plateau := goSchedule(t, opt, c.c)
			lrs := func() []float64 {
				vs, err := opt.GetAll("lr")
				require.NoError(t, err)
				out := make([]float64, len(vs))
				for i, v := range vs {
					out[i] = v.(float64)
				}
				return out
			}
			check := func(k int) {
				w := want[ci].Rows[k]
				got, m := lrs(), momentaOf(t, opt)
				for g := range got {
					for _, pair := range [][2]float64{{got[g], w.LRs[g]}, {m[g], w.M[g]}} {
						rel := math.Abs(pair[0]-pair[1]) / math.Max(math.Abs(pair[1]), 1e-300)
						require.LessOrEqual(t, rel, 1e-12, "step %d group %d: got %v, PyTorch %v", k, g, pair[0], pair[1])
						total++
						if pair[0] == pair[1] {
							exact++
						}
					}
				}
			}
			check(0)
			for k := 1; k <= c.c.Steps; k++ {
				opt.Step()
				if lr, ok := c.c.Sets[itoa(k)]; ok {
					require.NoError(t, opt.SetLR(optim.AllGroups, lr))
				}
				if plateau != nil {
					plateau.Step(c.c.Metrics[k-1])
					require.Equal(t, lrs(), plateau.LastLR())
					require.Equal(t, k, plateau.LastEpoch())
				} else {
					s.Step()
					require.Equal(t, lrs(), s.LastLR())
					require.Equal(t, k, s.LastEpoch())
				}
				check(k)
			}
			// The keys schedulers add to the groups are in the state dict, as in PyTorch's.
			sd := map[string]*bridge.Tensor{}
			for _, it := range opt.StateDict() {
				sd[it.Name] = it.Tensor
			}
			for g, pg := range want[ci].Groups {
				for _, key := range []string{"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"} {
					if v, ok := pg[key]; ok {
						got, ok := sd["param_groups."+itoa(g)+"."+key]
						require.True(t, ok, "param_groups.%d.%s", g, key)
						require.InDelta(t, v.(float64), got.Item(), 1e-15, "param_groups.%d.%s", g, key)
					}
				}
			}
		})
	}
	t.Logf("%d schedules: %d of %d rates and momenta bit for bit equal to PyTorch's", len(cases), exact, total)
}

func TestSchedulerArgumentErrors(t *testing.T) {
	sgd := func() *optim.Optimizer {
		opt, err := optim.NewSGD(optim.Params(bridge.Zeros(bridge.Shape{1}).SetRequiresGrad(true)), optim.SGDOptions{LR: 0.1})
		require.NoError(t, err)
		return opt
	}
	adagrad := func() *optim.Optimizer {
		opt, err := optim.NewAdagrad(optim.Params(bridge.Zeros(bridge.Shape{1}).SetRequiresGrad(true)), optim.DefaultAdagrad())
		require.NoError(t, err)
		return opt
	}
	cases := []struct {
		name string
		f    func() error
		want string
	}{
		{"exponential gamma", func() error { _, err := optim.NewExponentialLR(sgd(), math.NaN()); return err }, "gamma must be finite"},
		{"lambda count", func() error {
			_, err := optim.NewLambdaLR(sgd(), goLambdas["inv"], goLambdas["pow"])
			return err
		}, "want 1 function or 1 (one per group), got 2"},
		{"cyclic mode", func() error {
			o := optim.DefaultCyclic(0.1, 1)
			o.Mode = "square"
			_, err := optim.NewCyclicLR(sgd(), o)
			return err
		}, `mode "square"`},
		{"cyclic without momentum", func() error { _, err := optim.NewCyclicLR(adagrad(), optim.DefaultCyclic(0.1, 1)); return err },
			"adagrad has no momentum to cycle"},
		{"onecycle without momentum", func() error { _, err := optim.NewOneCycleLR(adagrad(), optim.DefaultOneCycle(0.1, 10)); return err },
			"adagrad has no momentum or betas to cycle"},
		{"onecycle steps", func() error { _, err := optim.NewOneCycleLR(sgd(), optim.DefaultOneCycle(0.1, 0)); return err },
			"total steps must be > 0"},
		{"onecycle max_lr count", func() error {
			o := optim.DefaultOneCycle(0.1, 10)
			o.MaxLR = []float64{0.1, 0.2, 0.3}
			_, err := optim.NewOneCycleLR(sgd(), o)
			return err
		}, "expected 1 or 1 values for max_lr, got 3"},
		{"plateau factor", func() error {
			o := optim.DefaultPlateau()
			o.Factor = 1
			_, err := optim.NewReduceLROnPlateau(sgd(), o)
			return err
		}, "factor must be in [0, 1)"},
		{"plateau mode", func() error {
			o := optim.DefaultPlateau()
			o.Mode = "up"
			_, err := optim.NewReduceLROnPlateau(sgd(), o)
			return err
		}, `mode "up" is unknown`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.f()
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

// Past total_steps PyTorch's OneCycleLR raises; ours keeps the last rates.
func TestOneCycleHoldsPastTheEnd(t *testing.T) {
	opt, err := optim.NewSGD(optim.Params(bridge.Zeros(bridge.Shape{1}).SetRequiresGrad(true)), optim.SGDOptions{LR: 1})
	require.NoError(t, err)
	s, err := optim.NewOneCycleLR(opt, optim.DefaultOneCycle(0.1, 5))
	require.NoError(t, err)
	for range 5 {
		s.Step()
	}
	last := s.LastLR()
	s.Step()
	s.Step()
	require.Equal(t, last, s.LastLR())
}
