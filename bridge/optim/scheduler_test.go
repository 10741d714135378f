package optim_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// schedScript builds torch.optim.SGD groups with the given rates and the schedulers of each
// case, and prints get_last_lr() after construction and after every step.
const schedScript = `
import json, sys, warnings, torch
from torch.optim import lr_scheduler as S
warnings.simplefilter("ignore")
def make(opt, s):
    a = s["args"]
    if s["kind"] == "StepLR":
        return S.StepLR(opt, a["step_size"], a["gamma"])
    if s["kind"] == "CosineAnnealingLR":
        return S.CosineAnnealingLR(opt, a["t_max"], a["eta_min"])
    if s["kind"] == "LinearLR":
        return S.LinearLR(opt, a["start_factor"], a["end_factor"], a["total_iters"])
    raise ValueError(s["kind"])
out = []
for c in json.load(sys.stdin):
    ps = [torch.zeros(1, requires_grad=True) for _ in c["lrs"]]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, c["lrs"])], lr=1.0)
    scheds = [make(opt, s) for s in c["scheds"]]
    sched = scheds[0] if len(scheds) == 1 else S.SequentialLR(opt, scheds, c["milestones"])
    lrs = [sched.get_last_lr()]
    for k in range(1, c["steps"] + 1):
        opt.step()
        if str(k) in (c["sets"] or {}):
            for g in opt.param_groups:
                g["lr"] = c["sets"][str(k)]
        sched.step()
        lrs.append(sched.get_last_lr())
        assert lrs[-1] == [g["lr"] for g in opt.param_groups]
    out.append(lrs)
print(json.dumps(out))
`

type schedSpec struct {
	Kind string         `json:"kind"`
	Args map[string]any `json:"args"`
}

type schedCase struct {
	LRs        []float64          `json:"lrs"`
	Scheds     []schedSpec        `json:"scheds"`
	Milestones []int              `json:"milestones"`
	Steps      int                `json:"steps"`
	Sets       map[string]float64 `json:"sets"` // before scheduler step k: lr of every group
}

func goScheduler(t *testing.T, opt *optim.Optimizer, c schedCase) optim.Scheduler {
	t.Helper()
	var ss []*optim.LRScheduler
	for _, s := range c.Scheds {
		a := s.Args
		var sc *optim.LRScheduler
		var err error
		switch s.Kind {
		case "StepLR":
			sc, err = optim.NewStepLR(opt, int(a["step_size"].(float64)), a["gamma"].(float64))
		case "CosineAnnealingLR":
			sc, err = optim.NewCosineAnnealingLR(opt, int(a["t_max"].(float64)), a["eta_min"].(float64))
		case "LinearLR":
			sc, err = optim.NewLinearLR(opt, a["start_factor"].(float64), a["end_factor"].(float64), int(a["total_iters"].(float64)))
		}
		require.NoError(t, err)
		require.Equal(t, s.Kind, sc.Name())
		ss = append(ss, sc)
	}
	if len(ss) == 1 {
		return ss[0]
	}
	q, err := optim.NewSequentialLR(opt, ss, c.Milestones)
	require.NoError(t, err)
	return q
}

func TestSchedulersMatchPyTorch(t *testing.T) {
	step := func(size int, gamma float64) schedSpec {
		return schedSpec{"StepLR", map[string]any{"step_size": float64(size), "gamma": gamma}}
	}
	cosine := func(tMax int, etaMin float64) schedSpec {
		return schedSpec{"CosineAnnealingLR", map[string]any{"t_max": float64(tMax), "eta_min": etaMin}}
	}
	linear := func(start, end float64, total int) schedSpec {
		return schedSpec{"LinearLR", map[string]any{"start_factor": start, "end_factor": end, "total_iters": float64(total)}}
	}
	cases := []struct {
		name string
		c    schedCase
	}{
		{"StepLR", schedCase{LRs: []float64{0.1, 0.01}, Scheds: []schedSpec{step(3, 0.5)}, Steps: 20}},
		{"StepLR with a live lr change", schedCase{LRs: []float64{0.1}, Scheds: []schedSpec{step(4, 0.1)}, Steps: 20,
			Sets: map[string]float64{"7": 0.05}}},
		{"CosineAnnealingLR past T_max", schedCase{LRs: []float64{0.1, 0.03}, Scheds: []schedSpec{cosine(10, 0.001)}, Steps: 25}},
		{"CosineAnnealingLR eta_min 0", schedCase{LRs: []float64{1}, Scheds: []schedSpec{cosine(20, 0)}, Steps: 20}},
		{"LinearLR warmup", schedCase{LRs: []float64{0.1, 0.2}, Scheds: []schedSpec{linear(0.1, 1, 5)}, Steps: 20}},
		{"LinearLR decay", schedCase{LRs: []float64{0.3}, Scheds: []schedSpec{linear(1, 0.05, 12)}, Steps: 20}},
		{"warmup then cosine", schedCase{LRs: []float64{3e-4, 1e-3}, Scheds: []schedSpec{linear(0.01, 1, 5), cosine(15, 1e-6)},
			Milestones: []int{5}, Steps: 20}},
		{"three stages", schedCase{LRs: []float64{0.1}, Scheds: []schedSpec{linear(0.25, 1, 4), step(3, 0.5), cosine(8, 1e-4)},
			Milestones: []int{4, 10}, Steps: 22}},
	}
	in := make([]schedCase, len(cases))
	for i, c := range cases {
		in[i] = c.c
	}
	var want [][][]float64
	torchpy.RunJSON(t, schedScript, in, &want)
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var groups []optim.Group
			for _, lr := range c.c.LRs {
				groups = append(groups, optim.Group{Params: []*bridge.Tensor{bridge.Zeros(bridge.Shape{1}).SetRequiresGrad(true)},
					Hyper: map[string]any{"lr": lr}})
			}
			opt, err := optim.NewSGD(groups, optim.SGDOptions{LR: 1})
			require.NoError(t, err)
			s := goScheduler(t, opt, c.c)
			got := [][]float64{s.LastLR()}
			for k := 1; k <= c.c.Steps; k++ {
				opt.Step()
				if lr, ok := c.c.Sets[itoa(k)]; ok {
					require.NoError(t, opt.SetLR(optim.AllGroups, lr))
				}
				s.Step()
				require.Equal(t, k, s.LastEpoch())
				got = append(got, s.LastLR())
				lrs, err := opt.GetAll("lr")
				require.NoError(t, err)
				for g := range lrs {
					require.Equal(t, got[k][g], lrs[g], "the scheduler drives the group rates")
				}
			}
			require.Len(t, got, len(want[ci]))
			worst, exact := 0.0, true
			for k := range got {
				for g := range got[k] {
					w := want[ci][k][g]
					rel := math.Abs(got[k][g]-w) / math.Max(math.Abs(w), 1e-300)
					require.LessOrEqual(t, rel, 1e-12, "step %d group %d: got %v, PyTorch %v", k, g, got[k][g], w)
					worst = max(worst, rel)
					exact = exact && got[k][g] == w
				}
			}
			t.Logf("largest relative difference from PyTorch: %g (bitwise equal: %v)", worst, exact)
		})
	}
}

func itoa(k int) string {
	if k < 10 {
		return string(rune('0' + k))
	}
	return itoa(k/10) + string(rune('0'+k%10))
}

func TestSchedulerErrors(t *testing.T) {
	newOpt := func() *optim.Optimizer {
		opt, err := optim.NewSGD(optim.Params(bridge.Zeros(bridge.Shape{1}).SetRequiresGrad(true)), optim.SGDOptions{LR: 0.1})
		require.NoError(t, err)
		return opt
	}
	opt := newOpt()
	_, err := optim.NewStepLR(opt, 0, 0.1)
	require.ErrorContains(t, err, "step_size")
	_, err = optim.NewStepLR(opt, 1, math.NaN())
	require.ErrorContains(t, err, "gamma")
	_, err = optim.NewCosineAnnealingLR(opt, 0, 0)
	require.ErrorContains(t, err, "T_max")
	_, err = optim.NewCosineAnnealingLR(opt, 10, -1)
	require.ErrorContains(t, err, "eta_min")
	_, err = optim.NewLinearLR(opt, 0, 1, 5)
	require.ErrorContains(t, err, "start_factor")
	_, err = optim.NewLinearLR(opt, 0.5, 1.5, 5)
	require.ErrorContains(t, err, "end_factor")
	_, err = optim.NewLinearLR(opt, 0.5, 1, 0)
	require.ErrorContains(t, err, "total_iters")
	_, err = optim.NewWarmupCosine(opt, 0.1, 5, 0, 0)
	require.ErrorContains(t, err, "T_max")
	require.Equal(t, 0.1, opt.LR(0), "failed constructors leave the rate alone")

	a, err := optim.NewStepLR(opt, 2, 0.5)
	require.NoError(t, err)
	b, err := optim.NewStepLR(newOpt(), 2, 0.5)
	require.NoError(t, err)
	_, err = optim.NewSequentialLR(opt, []*optim.LRScheduler{a, b}, []int{3})
	require.ErrorContains(t, err, "scheduler 1 does not drive this optimizer")
	_, err = optim.NewSequentialLR(opt, []*optim.LRScheduler{a, a}, nil)
	require.ErrorContains(t, err, "need 1 milestones")
	_, err = optim.NewSequentialLR(opt, nil, nil)
	require.ErrorContains(t, err, "no schedulers")
}

func TestWarmupCosine(t *testing.T) {
	opt, err := optim.NewAdamW(optim.Params(bridge.Zeros(bridge.Shape{1}).SetRequiresGrad(true)), optim.DefaultAdamW())
	require.NoError(t, err)
	s, err := optim.NewWarmupCosine(opt, 0.1, 4, 6, 0)
	require.NoError(t, err)
	lrs := []float64{s.LastLR()[0]}
	for range 10 {
		s.Step()
		lrs = append(lrs, opt.LR(0))
	}
	require.InDelta(t, 1e-4, lrs[0], 1e-15, "starts at start_factor * lr")
	require.InDelta(t, 1e-3, lrs[4], 1e-15, "reaches lr after the warmup")
	for k := 1; k <= 4; k++ {
		require.Greater(t, lrs[k], lrs[k-1], "rises during warmup")
	}
	for k := 5; k <= 10; k++ {
		require.Less(t, lrs[k], lrs[k-1], "falls during cosine")
	}
	require.InDelta(t, 0, lrs[10], 1e-15, "ends at eta_min")
}
