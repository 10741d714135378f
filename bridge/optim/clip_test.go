package optim_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// clipScript runs torch.nn.utils.clip_grad_norm_ for each case and prints the total norm and
// the clipped gradients.
const clipScript = `
import json, math, sys, torch
out = []
for c in json.load(sys.stdin):
    ps = []
    for g in c["grads"]:
        p = torch.zeros(g["shape"], requires_grad=True)
        if g["data"] is not None:
            p.grad = torch.tensor(g["data"], dtype=torch.float32).reshape(g["shape"])
        ps.append(p)
    nt = math.inf if c["norm_type"] == "inf" else float(c["norm_type"])
    total = torch.nn.utils.clip_grad_norm_(ps, c["max_norm"], nt)
    out.append({"total": float(total), "grads": [None if p.grad is None else p.grad.reshape(-1).tolist() for p in ps]})
print(json.dumps(out))
`

type clipCase struct {
	Grads    []tensorJSON `json:"grads"` // Data nil: no gradient
	MaxNorm  float64      `json:"max_norm"`
	NormType any          `json:"norm_type"` // a number or "inf"
}

func TestClipGradNormMatchesPyTorch(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 7))
	grads := func(scale float64, shapes ...[]int64) []tensorJSON {
		var out []tensorJSON
		for _, s := range shapes {
			out = append(out, tensorJSON{Shape: s, Data: randValues(r, bridge.Shape(s).Numel(), scale)})
		}
		return out
	}
	withMissing := grads(2, []int64{5, 3}, []int64{7}, []int64{2, 2})
	withMissing[1].Data = nil
	cases := []struct {
		name string
		c    clipCase
	}{
		{"l2 clipped", clipCase{grads(1, []int64{4, 3}, []int64{3}), 0.5, 2.0}},
		{"l2 not clipped", clipCase{grads(1, []int64{4, 3}, []int64{3}), 100, 2.0}},
		{"l1", clipCase{grads(1, []int64{10}, []int64{2, 5}), 1, 1.0}},
		{"l3", clipCase{grads(3, []int64{6}, []int64{6}), 2, 3.0}},
		{"inf clipped", clipCase{grads(5, []int64{3, 3}, []int64{4}), 1, "inf"}},
		{"inf not clipped", clipCase{grads(0.1, []int64{3, 3}, []int64{4}), 1, "inf"}},
		{"single param", clipCase{grads(1, []int64{8}), 0.25, 2.0}},
		{"param without grad", clipCase{withMissing, 1, 2.0}},
		{"no grads at all", clipCase{[]tensorJSON{{Shape: []int64{2}}}, 1, 2.0}},
	}
	in := make([]clipCase, len(cases))
	for i, c := range cases {
		in[i] = c.c
	}
	var want []struct {
		Total float64     `json:"total"`
		Grads [][]float64 `json:"grads"`
	}
	torchpy.RunJSON(t, clipScript, in, &want)
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ps []*bridge.Tensor
			var gs [][]float64
			for _, g := range c.c.Grads {
				ps = append(ps, bridge.Zeros(bridge.Shape(g.Shape)).SetRequiresGrad(true))
				gs = append(gs, g.Data)
			}
			setGrads(t, ps, gs)
			nt, ok := c.c.NormType.(float64)
			if !ok {
				nt = math.Inf(1)
			}
			total := optim.ClipGradNorm(ps, c.c.MaxNorm, nt)
			require.InDelta(t, want[ci].Total, total, 1e-5*max(1, want[ci].Total))
			require.Equal(t, want[ci].Total, total, "bitwise")
			for i, p := range ps {
				if want[ci].Grads[i] == nil {
					require.Nil(t, p.Grad())
					continue
				}
				require.LessOrEqual(t, maxAbsDiff(t, p.Grad(), want[ci].Grads[i]), 1e-6, "param %d", i)
				require.Equal(t, toF32(want[ci].Grads[i]), p.Grad().Float32s(), "bitwise, param %d", i)
			}
		})
	}
}

// clipValueScript runs torch.nn.utils.clip_grad_value_ for each case and prints the gradients.
const clipValueScript = `
import json, sys, torch
out = []
for c in json.load(sys.stdin):
    ps = []
    for g in c["grads"]:
        p = torch.zeros(g["shape"], requires_grad=True)
        if g["data"] is not None:
            p.grad = torch.tensor(g["data"], dtype=torch.float32).reshape(g["shape"])
        ps.append(p)
    torch.nn.utils.clip_grad_value_(ps, c["clip"])
    out.append([None if p.grad is None else p.grad.reshape(-1).tolist() for p in ps])
print(json.dumps(out))
`

func TestClipGradValueMatchesPyTorch(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 7))
	type valueCase struct {
		Grads []tensorJSON `json:"grads"`
		Clip  float64      `json:"clip"`
	}
	mk := func(clip float64, none bool) valueCase {
		c := valueCase{Clip: clip}
		for _, s := range [][]int64{{3, 4}, {5}, {2, 2}} {
			c.Grads = append(c.Grads, tensorJSON{Shape: s, Data: randValues(r, bridge.Shape(s).Numel(), 2)})
		}
		if none {
			c.Grads[1].Data = nil
		}
		return c
	}
	cases := []valueCase{mk(0.5, false), mk(1.5, true), mk(0, false), mk(10, false)}
	var want [][][]float64
	torchpy.RunJSON(t, clipValueScript, cases, &want)
	for ci, c := range cases {
		var ps []*bridge.Tensor
		for _, g := range c.Grads {
			p := bridge.Zeros(bridge.Shape(g.Shape)).SetRequiresGrad(true)
			if g.Data != nil {
				setGrads(t, []*bridge.Tensor{p}, [][]float64{g.Data})
			}
			ps = append(ps, p)
		}
		optim.ClipGradValue(ps, c.Clip)
		for i, p := range ps {
			g := p.Grad()
			if want[ci][i] == nil {
				require.Nil(t, g, "case %d param %d has no gradient", ci, i)
				continue
			}
			require.Equal(t, toF32(want[ci][i]), g.Float32s(), "case %d param %d", ci, i)
		}
	}
}
