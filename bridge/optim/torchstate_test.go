package optim_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// torchStateScript receives TorchStateDict values as files Go wrote (bridge.SaveValue) and, for
// each:
//   - torch.loads the file, replays the run in torch.optim for the same steps and checks that
//     the optimizer's own state_dict() is the value Go wrote: the same keys, the same types (a
//     float where PyTorch has a float, a tuple, a list, an int key, None), equal numbers and
//     tensors;
//   - builds a fresh optimizer with other hyper-parameters on Go's parameters,
//     load_state_dict()s the file's value, and prints the parameters after each of the
//     remaining steps.
const torchStateScript = `
import json, math, sys, torch
def same(a, b, where):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), (where, type(a), type(b))
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), (where, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a.keys()) == set(b.keys()), (where, list(a.keys()), list(b.keys()) if isinstance(b, dict) else b)
        for k in a: same(a[k], b[k], where + "." + str(k))
    elif isinstance(a, (list, tuple)):
        assert type(a) == type(b) and len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b)): same(x, y, where + "." + str(i))
    elif a is None or isinstance(a, (bool, str)):
        assert type(a) == type(b) and a == b, (where, a, b)
    else:  # numbers: PyTorch keeps some defaults as ints (weight_decay 0), Go writes floats
        assert isinstance(b, (int, float)) and not isinstance(b, bool) and a == b, (where, a, b)
def fix(d):
    d = dict(d)
    if "betas" in d: d["betas"] = tuple(d["betas"])
    return d
def params_of(c):
    return [torch.tensor(p["data"], dtype=torch.float32).reshape(p["shape"]).requires_grad_() for p in c["params"]]
def make(c, ps, kwargs):
    if c["opt"] == "LBFGS":
        return torch.optim.LBFGS(ps, **kwargs)
    groups = []
    for g in c["groups"]:
        d = fix(g["hyper"]); d["params"] = [ps[i] for i in g["params"]]; groups.append(d)
    return getattr(torch.optim, c["opt"])(groups, **fix(kwargs))
def run_steps(c, ps, opt, first, last):
    out = []
    if c["opt"] == "LBFGS":
        M = torch.tensor(c["m"], dtype=torch.float32).reshape(4, 2)
        C = torch.tensor(c["c"], dtype=torch.float32).reshape(4, 3)
        def closure():
            opt.zero_grad()
            x, w = ps
            a, b = x[1:], x[:-1]
            loss = ((a - b ** 2) ** 2 * 100 + (1 - b) ** 2).sum() + ((M @ w - C) ** 2).mean()
            loss.backward()
            return loss
    for k in range(first, last):
        for s in c.get("sets") or []:
            if s["before_step"] == k:
                for g in (opt.param_groups if s["group"] < 0 else [opt.param_groups[s["group"]]]):
                    for key, v in fix(s["params"]).items(): g[key] = v
        if c["opt"] == "LBFGS":
            opt.step(closure)
        else:
            for p, g in zip(ps, c["grads"][k]):
                p.grad = None if g is None else torch.tensor(g, dtype=torch.float32).reshape(p.shape)
            opt.step()
        out.append([p.detach().reshape(-1).tolist() for p in ps])
    return out
out = []
for c in json.load(sys.stdin):
    sd = torch.load(c["path"])  # written by Go
    ps = params_of(c)
    ref = make(c, ps, c["kwargs"])
    for s in c.get("scheds") or []:
        getattr(torch.optim.lr_scheduler, s["kind"])(ref, **s["args"])
    run_steps(c, ps, ref, 0, c["save_after"])
    same(ref.state_dict(), sd, "state_dict")
    ps = [torch.tensor(p, dtype=torch.float32).reshape(q["shape"]).requires_grad_() for p, q in zip(c["go_params"], c["params"])]
    opt = make(c, ps, c["other_kwargs"])
    opt.load_state_dict(sd)
    same(opt.state_dict()["param_groups"], sd["param_groups"], "loaded param_groups")
    out.append(run_steps(dict(c, sets=None), ps, opt, c["save_after"], c["steps"]))
print(json.dumps(out))
`

type torchStateCase struct {
	stepInput
	Steps       int            `json:"steps"`
	M           []float64      `json:"m"` // LBFGS's closure
	C           []float64      `json:"c"`
	Scheds      []schedSpec    `json:"scheds"`
	OtherKwargs map[string]any `json:"other_kwargs"`
	Path        string         `json:"path"`
	GoParams    [][]float64    `json:"go_params"`
}

// torchStateRuns runs every kind 3 steps (stateCases, Adam with OneCycleLR's keys, two LBFGS
// runs), takes TorchStateDict, then runs the rest; it returns the cases (for torchStateScript,
// their files in dir), their names, the values and Go's parameters after each later step.
func torchStateRuns(t *testing.T, dir string) ([]torchStateCase, []string, []*bridge.Value, [][][][]float32) {
	var cases []torchStateCase
	var names []string
	for _, c := range stateCases() {
		cases = append(cases, torchStateCase{stepInput: c.in, Steps: len(c.in.Grads)})
		names = append(names, c.name)
	}
	// With a scheduler (initial_lr) and OneCycleLR's keys.
	sched := stateCases()[1]
	sched.in.Sets = nil
	cases = append(cases, torchStateCase{stepInput: sched.in, Steps: len(sched.in.Grads),
		Scheds: []schedSpec{{"OneCycleLR", map[string]any{"max_lr": 0.05, "total_steps": 10}}}})
	names = append(names, "adam with OneCycleLR")
	for i, lc := range lbfgsCases()[:2] {
		c := torchStateCase{stepInput: stepInput{Opt: "LBFGS", Kwargs: lc.c.Kwargs, Params: lc.c.Params}, Steps: 5, M: lc.c.M, C: lc.c.C}
		cases = append(cases, c)
		names = append(names, "lbfgs "+lbfgsCases()[i].name)
	}
	const saveAfter = 3
	values := make([]*bridge.Value, len(cases))
	goAfter := make([][][][]float32, len(cases)) // Go's parameters after each later step
	for ci := range cases {
		c := &cases[ci]
		c.SaveAfter = saveAfter
		c.Path = filepath.Join(dir, fmt.Sprintf("%d.pt", ci))
		c.OtherKwargs = map[string]any{"lr": 0.5}
		var opt *optim.Optimizer
		var ps []*bridge.Tensor
		var step func(k int)
		if c.Opt == "LBFGS" {
			lc := lbfgsCase{Params: c.Params, M: c.M, C: c.C, Kwargs: c.Kwargs}
			var closure func() *bridge.Tensor
			opt, ps, closure = lc.goOptimizer(t)
			step = func(int) { opt.StepClosure(closure) }
		} else {
			opt, ps = goOptimizer(t, c.stepInput)
			step = func(k int) {
				for _, s := range c.Sets {
					if s.BeforeStep == k {
						require.NoError(t, opt.SetParams(s.Group, s.Params))
					}
				}
				setGrads(t, ps, c.Grads[k])
				opt.Step()
			}
			for _, s := range c.Scheds {
				_, err := optim.NewOneCycleLR(opt, optim.DefaultOneCycle(s.Args["max_lr"].(float64), s.Args["total_steps"].(int)))
				require.NoError(t, err)
			}
		}
		for k := range saveAfter {
			step(k)
		}
		values[ci] = opt.TorchStateDict()
		for i, ts := range values[ci].Tensors {
			values[ci].Tensors[i] = ts.Clone() // the state's own tensors change (or go) with the next steps
		}
		require.NoError(t, bridge.SaveValue(c.Path, values[ci]))
		for _, p := range ps {
			c.GoParams = append(c.GoParams, p.Float64s())
		}
		for k := saveAfter; k < c.Steps; k++ {
			step(k)
			var snap [][]float32
			for _, p := range ps {
				snap = append(snap, p.Float32s())
			}
			goAfter[ci] = append(goAfter[ci], snap)
		}
	}
	return cases, names, values, goAfter
}

// TestTorchStateDictLoadsIntoTorchOptim: for every kind, the state dict TorchStateDict builds
// after 3 steps is the one torch.optim's state_dict() has after the same steps, and a fresh
// torch.optim optimizer that load_state_dict()s it (after a torch.save round trip) continues
// exactly as ours does.
func TestTorchStateDictLoadsIntoTorchOptim(t *testing.T) {
	cases, names, values, goAfter := torchStateRuns(t, t.TempDir())
	t.Logf("adam's state dict: %v", values[1])
	var want [][][][]float64
	torchpy.RunJSON(t, torchStateScript, cases, &want)
	for ci := range cases {
		t.Run(names[ci], func(t *testing.T) {
			require.Len(t, want[ci], len(goAfter[ci]))
			for k := range goAfter[ci] {
				for i := range goAfter[ci][k] {
					require.Equal(t, toF32(want[ci][k][i]), goAfter[ci][k][i], "step %d param %d", cases[ci].SaveAfter+k+1, i)
				}
			}
		})
	}
}
