package nn_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// The sequence layers' cross-check with PyTorch (rnn, attention, transformer and embedding-bag
// cases): each case builds a Go module, saves its state dict and inputs, runs the forward and a
// backward of a fixed weighting of its results; one Python run builds the same PyTorch module
// for every case, loads the Go state dict strictly, runs the same computation and saves the
// results and the gradients of the inputs and of every parameter, which must agree within
// 1e-5 (float32; 1e-10 float64). The Python run also saves each freshly built PyTorch
// module's state dict, which the Go module must load strictly, in the same order of names.

// seqIn is a case's named inputs.
type seqIn = map[string]*bridge.Tensor

// seqCase is one cross-check.
type seqCase struct {
	name  string
	build func() nn.Module // nil: a function, no module
	py    string           // a Python expression making the module (torch, nn, F in scope)
	train bool             // training mode (dropout 0 only), else evaluation mode
	in    seqIn
	grad  []string // inputs whose gradients are compared (float ones)
	run   func(m nn.Module, in seqIn) []*bridge.Tensor
	pyRun string // Python statements: with m, inp (a dict) and sdpa_ref, set out to a list (None for a missing result)
}

// seqWeight is the fixed weighting of result k: cos(0.29 i + 0.7 k), in the result's dtype.
func seqWeight(o *bridge.Tensor, k int) *bridge.Tensor {
	w := make([]float64, o.Numel())
	for i := range w {
		w[i] = math.Cos(0.29*float64(i) + 0.7*float64(k))
	}
	return bridge.FromSlice(w).Reshape(o.Shape()...).To(o.DType())
}

type seqGo struct {
	outs   []*bridge.Tensor
	grads  seqIn // "in.x", "p.weight_ih_l0"
	params []string
}

// runSeqGo runs c's Go side and adds what Python needs to save.
func runSeqGo(t *testing.T, c seqCase, save seqIn) seqGo {
	var r seqGo
	var m nn.Module
	if c.build != nil {
		m = c.build()
		nn.Train(m, c.train)
		for _, p := range nn.StateDict(m) {
			save[c.name+".sd."+p.Name] = p.Tensor.Clone()
		}
	}
	v := seqIn{}
	for k, x := range c.in {
		save[c.name+".in."+k] = x
		v[k] = x.Clone()
	}
	for _, g := range c.grad {
		v[g].SetRequiresGrad(true)
	}
	require.NoError(t, bridge.Try(func() { r.outs = c.run(m, v) }), c.name)
	var loss *bridge.Tensor
	for k, o := range r.outs {
		if o == nil || !o.RequiresGrad() {
			continue
		}
		w := seqWeight(o, k)
		save[fmt.Sprintf("%s.w.%d", c.name, k)] = w
		term := aten.Sum(aten.Mul(o, w), nil).To(bridge.Float64)
		if loss == nil {
			loss = term
		} else {
			loss = loss.Add(term)
		}
	}
	r.grads = seqIn{}
	if loss == nil {
		return r
	}
	loss.Backward()
	for _, g := range c.grad {
		if gr := v[g].Grad(); gr != nil {
			r.grads["in."+g] = gr
		}
	}
	if m != nil {
		for _, p := range nn.NamedParameters(m) {
			r.params = append(r.params, p.Name)
			if gr := p.Tensor.Grad(); gr != nil {
				r.grads["p."+p.Name] = gr
			}
		}
	}
	return r
}

const seqPy = `
import sys, json, math, traceback, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)

def sdpa_ref(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    # PyTorch 2's F.scaled_dot_product_attention, as its documentation defines it
    L, S = q.size(-2), k.size(-2)
    s = 1 / math.sqrt(q.size(-1)) if scale is None else scale
    bias = torch.zeros(L, S, dtype=q.dtype)
    if is_causal:
        assert attn_mask is None
        bias = bias.masked_fill(torch.ones(L, S, dtype=torch.bool).tril().logical_not(), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            bias = bias.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            bias = attn_mask + bias
    w = torch.softmax(q @ k.transpose(-2, -1) * s + bias, dim=-1)
    if dropout_p > 0:
        w = torch.dropout(w, dropout_p, train=True)
    return w @ v

d = torch.load(sys.argv[1])
cases = json.load(open(sys.argv[2]))
res, info = {}, {}
for c in cases:
    n = c["name"]
    p = n + "."
    try:
        m = None
        if c["py"]:
            m = eval(c["py"])
            info[n] = {"names": list(m.state_dict().keys())}
            for k, v in m.state_dict().items():
                res[p + "pysd." + k] = v
            m.load_state_dict({k[len(p + "sd."):]: v for k, v in d.items() if k.startswith(p + "sd.")}, strict=True)
            m.train(c["train"])
        inp = {k[len(p + "in."):]: v.clone() for k, v in d.items() if k.startswith(p + "in.")}
        for g in c["grad"]:
            inp[g].requires_grad_(True)
        ns = dict(globals(), m=m, inp=inp)
        exec(c["pyrun"], ns)
        out = ns["out"]
        loss = None
        for i, o in enumerate(out):
            if o is None:
                continue
            res[p + "out.%d" % i] = o.detach()
            w = d.get(p + "w.%d" % i)
            if w is not None:
                term = (o * w).sum().double()
                loss = term if loss is None else loss + term
        if loss is not None:
            loss.backward()
            for g in c["grad"]:
                if inp[g].grad is not None:
                    res[p + "grad.in." + g] = inp[g].grad
            if m is not None:
                for k, prm in m.named_parameters():
                    if prm.grad is not None:
                        res[p + "grad.p." + k] = prm.grad
    except Exception:
        info.setdefault(n, {})["error"] = traceback.format_exc()
torch.save(res, sys.argv[3])
json.dump(info, open(sys.argv[4], "w"))
`

// closeEnough reports the first element where |got - want| > atol + rtol·|want| (NaN equals
// NaN) and the largest difference.
func closeEnough(got, want []float64, atol, rtol float64) (bad int, maxDiff float64) {
	bad = -1
	for i := range want {
		g, w := got[i], want[i]
		if math.IsNaN(g) && math.IsNaN(w) || g == w {
			continue
		}
		d := math.Abs(g - w)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		maxDiff = max(maxDiff, d)
		if d > atol+rtol*math.Abs(w) && bad < 0 {
			bad = i
		}
	}
	return bad, maxDiff
}

func requireClose(t *testing.T, what string, want, got *bridge.Tensor) float64 {
	t.Helper()
	require.NotNil(t, got, "%s: Go has none, PyTorch has one", what)
	require.Equal(t, want.Shape(), got.Shape(), "%s: shape", what)
	require.Equal(t, want.DType(), got.DType(), "%s: dtype", what)
	tol := 1e-5
	if want.DType() == bridge.Float64 {
		tol = 1e-10
	}
	if !want.DType().IsFloat() {
		tol = 0
	}
	g, w := got.Float64s(), want.Float64s()
	bad, d := closeEnough(g, w, tol, tol)
	require.Less(t, bad, 0, "%s: element %d: Go %v, PyTorch %v (max diff %g)", what, bad, g[max(bad, 0)], w[max(bad, 0)], d)
	return d
}

func allSeqCases() []seqCase {
	var all []seqCase
	for _, f := range []func() []seqCase{rnnCases, attentionCases, transformerCases, embeddingBagCases} {
		all = append(all, f()...)
	}
	return all
}

// TestSequenceLayersMatchPyTorch is the cross-check (see the top of this file).
func TestSequenceLayersMatchPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	start := time.Now()
	cases := allSeqCases()
	dir := t.TempDir()
	save := seqIn{}
	goRes := map[string]seqGo{}
	type pyCase struct {
		Name  string   `json:"name"`
		Py    string   `json:"py"`
		PyRun string   `json:"pyrun"`
		Train bool     `json:"train"`
		Grad  []string `json:"grad"`
	}
	var list []pyCase
	seen := map[string]bool{}
	for i, c := range cases {
		require.False(t, seen[c.name], "duplicate case %s", c.name)
		require.NotContains(t, c.name, ".")
		seen[c.name] = true
		bridge.ManualSeed(uint64(1000 + i))
		goRes[c.name] = runSeqGo(t, c, save)
		list = append(list, pyCase{c.name, c.py, c.pyRun, c.train, append([]string{}, c.grad...)})
	}
	goTime := time.Since(start)
	in, js, out, infoPath := filepath.Join(dir, "in.pt"), filepath.Join(dir, "cases.json"), filepath.Join(dir, "out.pt"), filepath.Join(dir, "info.json")
	require.NoError(t, bridge.SaveMap(in, save))
	b, err := json.Marshal(list)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(js, b, 0o644))
	pyStart := time.Now()
	torchpy.Run(t, seqPy, in, js, out, infoPath)
	pyTime := time.Since(pyStart)
	ref, err := bridge.LoadMap(out)
	require.NoError(t, err)
	var info map[string]struct {
		Names []string `json:"names"`
		Error string   `json:"error"`
	}
	b, err = os.ReadFile(infoPath)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &info))

	worst := 0.0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Empty(t, info[c.name].Error, "PyTorch failed")
			p := c.name + "."
			r := goRes[c.name]
			for k, o := range r.outs {
				want, ok := ref[fmt.Sprintf("%sout.%d", p, k)]
				if o == nil {
					require.False(t, ok, "result %d: Go has none, PyTorch has one", k)
					continue
				}
				require.True(t, ok, "result %d: PyTorch has none", k)
				worst = max(worst, requireClose(t, fmt.Sprintf("result %d", k), want, o))
			}
			n := 0
			for k, want := range ref {
				if g, ok := strings.CutPrefix(k, p+"grad."); ok {
					worst = max(worst, requireClose(t, "gradient of "+g, want, r.grads[g]))
					n++
				}
			}
			require.Equal(t, len(r.grads), n, "PyTorch has gradients for fewer tensors than Go")
			if c.build == nil {
				return
			}
			require.Len(t, r.grads, len(r.params)+len(c.grad), "every parameter and input gets a gradient")
			// Python → Go: a fresh PyTorch module's state dict loads strictly, in the same order
			m := c.build()
			require.Equal(t, info[c.name].Names, seqNames(nn.StateDict(m)), "state dict names and order")
			var items []bridge.Named
			for _, k := range info[c.name].Names {
				items = append(items, bridge.Named{Name: k, Tensor: ref[p+"pysd."+k]})
			}
			require.NoError(t, nn.LoadStateDict(m, items, true))
		})
	}
	t.Logf("%d cases: Go %v, PyTorch %v; largest difference %.3g", len(cases), goTime.Round(time.Millisecond), pyTime.Round(time.Millisecond), worst)
}

func seqNames(items []bridge.Named) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Name
	}
	return out
}

// seqRandn is a float32 N(0, 1) tensor; seqRandn64 a float64 one.
func seqRandn(shape ...int64) *bridge.Tensor { return bridge.Randn(shape) }

func seqRandn64(shape ...int64) *bridge.Tensor { return bridge.Randn(shape, bridge.Float64) }

func seqPtr[V any](v V) *V { return &v }
