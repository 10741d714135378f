package optim_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// lbfgsScript runs torch.optim.LBFGS on the loss of lbfgsLoss (the same operations in Python)
// and prints, after each step, the parameters, the loss the step returned and the state's
// counters; it can torch.save the state dict after a step, or load one before the first.
const lbfgsScript = `
import json, sys, torch
def run(cfg):
    ps = [torch.tensor(p["data"], dtype=torch.float32).reshape(p["shape"]).requires_grad_() for p in cfg["params"]]
    M = torch.tensor(cfg["m"], dtype=torch.float32).reshape(4, 2)
    c = torch.tensor(cfg["c"], dtype=torch.float32).reshape(4, 3)
    opt = torch.optim.LBFGS(ps, **cfg["kwargs"])
    if cfg.get("load"):
        opt.load_state_dict(torch.load(cfg["load"]))
    def closure():
        opt.zero_grad()
        x, w = ps
        a, b = x[1:], x[:-1]
        rosen = ((a - b ** 2) ** 2 * 100 + (1 - b) ** 2).sum()
        fit = ((M @ w - c) ** 2).mean()
        loss = rosen + fit
        loss.backward()
        return loss
    out = []
    for k in range(cfg["steps"]):
        for key, v in (cfg.get("sets") or {}).get(str(k), {}).items():
            opt.param_groups[0][key] = v
        loss = opt.step(closure)
        st = opt.state[ps[0]]
        out.append({"params": [p.detach().reshape(-1).tolist() for p in ps], "loss": float(loss),
                    "func_evals": st["func_evals"], "n_iter": st["n_iter"]})
        if cfg.get("save") and k + 1 == cfg["save_after"]:
            torch.save(opt.state_dict(), cfg["save"])
    return out
print(json.dumps([run(cfg) for cfg in json.load(sys.stdin)]))
`

type lbfgsCase struct {
	Params    []tensorJSON              `json:"params"`
	M         []float64                 `json:"m"`
	C         []float64                 `json:"c"`
	Kwargs    map[string]any            `json:"kwargs"`
	Steps     int                       `json:"steps"`
	Sets      map[string]map[string]any `json:"sets"` // before step k (from 0): keys of the group
	Save      string                    `json:"save"`
	SaveAfter int                       `json:"save_after"`
	Load      string                    `json:"load"`
}

type lbfgsOut struct {
	Params    [][]float64 `json:"params"`
	Loss      float64     `json:"loss"`
	FuncEvals int         `json:"func_evals"`
	NIter     int         `json:"n_iter"`
}

func newLBFGSCase(seed uint64, steps int, kw map[string]any) lbfgsCase {
	r := rand.New(rand.NewPCG(seed, 2))
	return lbfgsCase{
		Params: []tensorJSON{{Shape: []int64{5}, Data: randValues(r, 5, 1.5)}, {Shape: []int64{2, 3}, Data: randValues(r, 6, 1)}},
		M:      randValues(r, 8, 1), C: randValues(r, 12, 1), Kwargs: kw, Steps: steps,
	}
}

// lbfgsLoss is the Python closure's loss: a Rosenbrock function of x plus a least-squares fit
// of w, with the same operations in the same order.
func lbfgsLoss(ps []*bridge.Tensor, m, c *bridge.Tensor) *bridge.Tensor {
	x, w := ps[0], ps[1]
	n := x.Size(0)
	a, b := x.Narrow(0, 1, n-1), x.Narrow(0, 0, n-1)
	rosen := a.Sub(b.Square()).Square().MulScalar(100).Add(b.RSubScalar(1).Square()).Sum()
	fit := m.MatMul(w).Sub(c).Square().Mean()
	return rosen.Add(fit)
}

func (c lbfgsCase) goOptimizer(t *testing.T) (*optim.Optimizer, []*bridge.Tensor, func() *bridge.Tensor) {
	t.Helper()
	ps := []*bridge.Tensor{newParam(c.Params[0]), newParam(c.Params[1])}
	m := bridge.FromSlice(toF32(c.M), 4, 2)
	cc := bridge.FromSlice(toF32(c.C), 4, 3)
	o := optim.DefaultLBFGS()
	for k, v := range c.Kwargs {
		switch k {
		case "lr":
			o.LR = v.(float64)
		case "max_iter":
			o.MaxIter = v.(int)
		case "max_eval":
			o.MaxEval = v.(int)
		case "history_size":
			o.HistorySize = v.(int)
		case "tolerance_grad":
			o.ToleranceGrad = v.(float64)
		case "tolerance_change":
			o.ToleranceChange = v.(float64)
		case "line_search_fn":
			o.LineSearch = v.(string)
		default:
			t.Fatalf("unknown LBFGS option %s", k)
		}
	}
	opt, err := optim.NewLBFGS(ps, o)
	require.NoError(t, err)
	var closure func() *bridge.Tensor
	closure = func() *bridge.Tensor {
		opt.ZeroGrad()
		loss := lbfgsLoss(ps, m, cc)
		loss.Backward()
		return loss
	}
	return opt, ps, closure
}

func lbfgsCases() []struct {
	name string
	c    lbfgsCase
} {
	type tc = struct {
		name string
		c    lbfgsCase
	}
	live := newLBFGSCase(5, 6, map[string]any{"lr": 0.8, "max_iter": 6, "history_size": 4})
	live.Sets = map[string]map[string]any{
		"2": {"lr": 0.5, "max_eval": 4}, // PyTorch fails when history_size changes after the second iteration
		"4": {"line_search_fn": "strong_wolfe", "max_iter": 9, "tolerance_change": 1e-6},
	}
	return []tc{
		{"defaults", newLBFGSCase(1, 5, map[string]any{})},
		{"strong wolfe", newLBFGSCase(2, 5, map[string]any{"line_search_fn": "strong_wolfe", "max_iter": 10, "history_size": 5})},
		{"short history, max_eval, lr", newLBFGSCase(3, 6, map[string]any{"lr": 0.5, "history_size": 3, "max_iter": 12, "max_eval": 7})},
		{"strong wolfe, lr and tolerances", newLBFGSCase(4, 5, map[string]any{"lr": 0.3, "line_search_fn": "strong_wolfe",
			"tolerance_grad": 1e-4, "tolerance_change": 1e-6, "history_size": 2, "max_iter": 25})},
		{"strong wolfe, overshooting lr (zoom)", newLBFGSCase(6, 5, map[string]any{"lr": 8.0, "line_search_fn": "strong_wolfe", "max_iter": 15})},
		{"strong wolfe, lr 3", newLBFGSCase(7, 5, map[string]any{"lr": 3.0, "line_search_fn": "strong_wolfe", "history_size": 3})},
		{"live changes", live},
	}
}

// TestLBFGSMatchesPyTorch: the parameters after each step, the loss each step returns and the
// closure calls counted agree with torch.optim.LBFGS (with and without the strong Wolfe line
// search, and with hyper-parameters changed between steps).
func TestLBFGSMatchesPyTorch(t *testing.T) {
	cases := lbfgsCases()
	in := make([]lbfgsCase, len(cases))
	for i, c := range cases {
		in[i] = c.c
	}
	var want [][]lbfgsOut
	torchpy.RunJSON(t, lbfgsScript, in, &want)
	total, exact := 0, 0
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opt, ps, closure := c.c.goOptimizer(t)
			worst := 0.0
			for k := range c.c.Steps {
				if s, ok := c.c.Sets[itoa(k)]; ok {
					require.NoError(t, opt.SetParams(optim.AllGroups, s))
				}
				loss := closure
				l := opt.StepClosure(loss)
				w := want[ci][k]
				require.Equal(t, w.Loss, l.Item(), "step %d: the loss of the first closure call", k+1)
				sd := map[string]*bridge.Tensor{}
				for _, it := range opt.StateDict() {
					sd[it.Name] = it.Tensor
				}
				require.Equal(t, int64(w.FuncEvals), sd["state.0.func_evals"].ItemInt(), "step %d: func_evals", k+1)
				require.Equal(t, int64(w.NIter), sd["state.0.n_iter"].ItemInt(), "step %d: n_iter", k+1)
				for i, p := range ps {
					g := p.Float64s()
					for j := range g {
						d := math.Abs(g[j] - w.Params[i][j])
						require.LessOrEqual(t, d, 1e-5, "step %d param %d element %d", k+1, i, j)
						worst = max(worst, d)
						total++
						if d == 0 {
							exact++
						}
					}
				}
			}
			require.Empty(t, opt.TakeRollbacks())
			t.Logf("largest difference from PyTorch over %d steps: %g", c.c.Steps, worst)
		})
	}
	t.Logf("%d cases: %d of %d parameter values after each step bit for bit equal to PyTorch's", len(cases), exact, total)
}

// TestLBFGSLoadsPyTorchState: the state torch.optim.LBFGS saved after 3 steps, loaded into ours,
// continues as PyTorch does.
func TestLBFGSLoadsPyTorchState(t *testing.T) {
	dir := t.TempDir()
	var in []lbfgsCase
	for i, c := range lbfgsCases()[:4] {
		c.c.Save, c.c.SaveAfter = filepath.Join(dir, itoa(i)+".pt"), 3
		in = append(in, c.c)
	}
	var want [][]lbfgsOut
	torchpy.RunJSON(t, lbfgsScript, in, &want)
	for ci, c := range in {
		t.Run(lbfgsCases()[ci].name, func(t *testing.T) {
			opt, ps, closure := c.goOptimizer(t)
			for i, p := range ps {
				bridge.NoGrad(func() { p.CopyFrom(bridge.FromSlice(toF32(want[ci][2].Params[i]), p.Shape()...)) })
			}
			sd, err := bridge.LoadNamed(c.Save)
			require.NoError(t, err)
			require.NoError(t, opt.LoadStateDict(sd))
			for k := 3; k < c.Steps; k++ {
				opt.StepClosure(closure)
				for i, p := range ps {
					require.Equal(t, toF32(want[ci][k].Params[i]), p.Float32s(), "step %d param %d", k+1, i)
				}
			}
		})
	}
}

// TestLBFGSStateDictRoundTrip: LBFGS's flat state dict, through a file, restores an optimizer
// that continues exactly as the original — the history, the step and H_diag as tensors or
// Python numbers, al with its None entries.
func TestLBFGSStateDictRoundTrip(t *testing.T) {
	for _, c := range lbfgsCases()[:2] {
		t.Run(c.name, func(t *testing.T) {
			a, pa, ca := c.c.goOptimizer(t)
			for range 2 {
				a.StepClosure(ca)
			}
			path := filepath.Join(t.TempDir(), "lbfgs.pt")
			require.NoError(t, bridge.SaveNamed(path, a.StateDict()))
			b, pb, cb := c.c.goOptimizer(t)
			for i := range pb {
				bridge.NoGrad(func() { pb[i].CopyFrom(pa[i]) })
			}
			sd, err := bridge.LoadNamed(path)
			require.NoError(t, err)
			require.NoError(t, b.LoadStateDict(sd))
			require.Equal(t, a.TorchStateDict().String(), b.TorchStateDict().String())
			for range 3 {
				a.StepClosure(ca)
				b.StepClosure(cb)
				for i := range pa {
					require.Equal(t, pa[i].Float32s(), pb[i].Float32s())
				}
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		a, _, ca := lbfgsCases()[0].c.goOptimizer(t)
		a.StepClosure(ca)
		good := a.StateDict()
		drop := func(name string) []bridge.Named {
			var out []bridge.Named
			for _, it := range good {
				if it.Name != name {
					out = append(out, it)
				}
			}
			return out
		}
		b, _, _ := lbfgsCases()[0].c.goOptimizer(t)
		require.ErrorContains(t, b.LoadStateDict(drop("state.0.prev_flat_grad")), "state.0.prev_flat_grad is missing")
		require.ErrorContains(t, b.LoadStateDict(append(drop(""), bridge.Named{Name: "state.1.d", Tensor: bridge.Zeros(bridge.Shape{11})})),
			"state.1.d: LBFGS keeps its state under the first parameter (id 0)")
		require.ErrorContains(t, b.LoadStateDict(append(drop(""), bridge.Named{Name: "state.0.x", Tensor: bridge.Zeros(bridge.Shape{1})})),
			`lbfgs keeps no state "x"`)
	})
}
