package jit_test

import (
	"archive/zip"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/jit"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// The cross-check of package jit with PyTorch 1.13: models defined, scripted (or traced) and
// saved in Python are trained from Go with Go's optimizers and losses, step for step as
// torch.optim trains the same file in Python; the trained modules Go saves load back in Python
// without a trace of hotcb and compute what Go computes; exported methods, a forward with two
// inputs and forward hooks on submodules give what Python gives.
//
// The Python scripts are written into the test's temporary directory with the files they make.
// Python trains a torch.jit.load of the file Go loads; references for Call and hooks come from
// the eager module the file was scripted from.
//
// Tolerances (float32 models):
//   - losses: |Go − PyTorch| ≤ lossTol·max(1, |PyTorch|), i.e. 1e-5 absolute for losses below 1,
//     relative above;
//   - outputs of the same weights (probe outputs, exported methods, hooks):
//     |Go − PyTorch| ≤ outTol·max(1, |PyTorch|);
//   - the weights after training, Go's against torch.optim's: stateTol in the same way;
//   - the state dict of the file Go saved against Go's nn.StateDict: exactly equal.

const (
	lossTol  = 1e-5
	outTol   = 1e-6
	stateTol = 1e-5
)

// pyModels defines the models; every Python script of this file starts with it.
const pyModels = `
import json, os, sys, zipfile
from typing import Dict, Tuple
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(ConvBN(3, 8), nn.MaxPool2d(2), ConvBN(8, 12), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


# CNN with exported methods (torch.jit.trace refuses a module that has them).
class CNNX(CNN):
    @torch.jit.export
    def embed(self, x: Tensor) -> Dict[str, Tensor]:
        f = torch.flatten(self.features(x), 1)
        return {"features": f, "logits": self.head(f)}

    @torch.jit.export
    def top(self, x: Tensor, k: int) -> Tuple[Tensor, Tensor]:
        return torch.topk(self.forward(x), k, dim=1)


class LSTMReg(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(5, 12)
        self.rnn = nn.LSTM(12, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.rnn(torch.tanh(self.inp(x)))
        return self.head(y[:, -1])

    @torch.jit.export
    def step(self, x: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        y, (h, c) = self.rnn(torch.tanh(self.inp(x)), state)
        return self.head(y[:, -1]), (h, c)


class GRUCls(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, tokens: Tensor) -> Tensor:
        y, _ = self.rnn(self.emb(tokens))
        return self.head(y[:, -1])


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 32)
        self.pos = nn.Parameter(0.1 * torch.randn(1, 8, 32))
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 3)

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        # mask: True at padding.
        h = self.emb(tokens) + self.pos[:, : tokens.size(1)]
        h = self.encoder(h, src_key_padding_mask=mask)
        keep = (~mask).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1))


def batch(kind):
    if kind in ("CNN", "CNNX"):
        return {"x": torch.randn(8, 3, 10, 10), "y": torch.randint(0, 5, (8,))}
    if kind == "LSTMReg":
        return {"x": torch.randn(6, 7, 5), "y": torch.randn(6, 3)}
    if kind == "GRUCls":
        return {"tokens": torch.randint(0, 20, (6, 7)), "y": torch.randint(0, 4, (6,))}
    if kind == "TinyTransformer":
        lengths = torch.randint(3, 9, (5,))
        lengths[0] = 8
        mask = torch.arange(8).unsqueeze(0) >= lengths.unsqueeze(1)
        return {"tokens": torch.randint(0, 30, (5, 8)), "mask": mask, "y": torch.randint(0, 3, (5,))}
    raise ValueError(kind)


def loss_of(kind, out, y):
    if kind == "ce":
        return F.cross_entropy(out, y)
    if kind == "mse":
        return F.mse_loss(out, y)
    raise ValueError(kind)
`

// pyTrain makes each case's module file and batch, then trains the module the file holds (a
// fresh torch.jit.load of it) and prints the losses; it saves the trained state dict for the
// comparison of weights.
const pyTrain = `
cfg = json.load(sys.stdin)
losses = {}
for c in cfg["cases"]:
    torch.manual_seed(c["seed"])
    model = globals()[c["model"]]()
    model.train()
    b = batch(c["model"])
    args = tuple(b[k] for k in c["inputs"])
    path = os.path.join(cfg["dir"], c["name"] + ".pt")
    if c["convert"] == "script":
        sm = torch.jit.script(model)
    else:
        # Traced in training mode, BatchNorm uses batch statistics and updates its running
        # ones in either mode: the trace fixes training=True.
        sm = torch.jit.trace(model, args)
    torch.jit.save(sm, path)
    probe = batch(c["model"])
    saved = dict(b)
    saved.update({"probe." + k: v for k, v in probe.items()})
    torch.save(saved, os.path.join(cfg["dir"], c["name"] + ".batch.pt"))

    m = torch.jit.load(path)
    m.train()
    opt = getattr(torch.optim, c["opt"])(m.parameters(), **c["kwargs"])
    ls = []
    for _ in range(c["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(c["loss"], m(*args), b["y"])
        ls.append(loss.item())
        loss.backward()
        opt.step()
    losses[c["name"]] = ls
    torch.save(dict(m.state_dict()), os.path.join(cfg["dir"], c["name"] + ".pytrained.pt"))
print(json.dumps(losses))
`

// pyVerify loads each module Go trained and saved, and compares it with what Go saved next to
// it (its state dict and its outputs on the probe batch in evaluation mode) and with the
// weights torch.optim reached. It prints the failures and what it checked.
const pyVerify = `
cfg = json.load(sys.stdin)
fails = []
checked = {}


def compare(what, ref, got, tol):
    """Returns (the largest scaled difference, a failure message or None): ref is the reference;
    floats agree within tol*max(1, |ref|), other dtypes exactly (tol 0)."""
    if ref.dtype != got.dtype or ref.shape != got.shape:
        return float("inf"), "%s: %s %s, Go has %s %s" % (what, ref.dtype, tuple(ref.shape), got.dtype, tuple(got.shape))
    if ref.numel() == 0:
        return 0.0, None
    r, g = ref.detach().double().reshape(-1), got.detach().double().reshape(-1)
    d = (r - g).abs() / r.abs().clamp(min=1)
    i = int(d.argmax())
    worst = d[i].item()
    if worst <= tol:
        return worst, None
    return worst, "%s: element %d of %d (shape %s): %.9g, Go %.9g (scaled |diff| %.3g > %g)" % (
        what, i, r.numel(), tuple(ref.shape), r[i].item(), g[i].item(), worst, tol)


for c in cfg["cases"]:
    name = c["name"]
    n = {"methods": 0, "state": 0, "outputs": 0, "state_diff": 0.0, "out_diff": 0.0}
    path = os.path.join(cfg["dir"], name + ".trained.pt")
    m = torch.jit.load(path)
    # No hotcb op anywhere: the graphs and code of every method of every module, and the file.
    for sub_name, sub in m.named_modules():
        for meth_name in sub._c._method_names():
            meth = sub._c._get_method(meth_name)
            n["methods"] += 1
            for what, text in (("graph", str(meth.graph)), ("inlined graph", str(meth.inlined_graph)), ("code", meth.code)):
                if "hotcb" in text:
                    fails.append("%s: the %s of %s.%s mentions hotcb:\n%s" % (name, what, sub_name or "<root>", meth_name, text))
    with zipfile.ZipFile(path) as z:
        for entry in z.namelist():
            if "/data/" not in entry and b"hotcb" in z.read(entry):
                fails.append("%s: %s in the saved file mentions hotcb" % (name, entry))

    # The state dict: as Go's nn.StateDict had it when saving (exactly), and as torch.optim
    # trained it (within state_tol).
    go = torch.load(os.path.join(cfg["dir"], name + ".go.pt"))
    sd = m.state_dict()
    go_sd = [(k[3:], v) for k, v in go.items() if k.startswith("sd.")]
    if [k for k, _ in go_sd] != list(sd.keys()):
        fails.append("%s: state dict names: torch.jit.load has %s, Go's nn.StateDict has %s" % (name, list(sd.keys()), [k for k, _ in go_sd]))
    py = torch.load(os.path.join(cfg["dir"], name + ".pytrained.pt"))
    for k, v in go_sd:
        if k not in sd:
            continue
        n["state"] += 1
        _, msg = compare("%s: %s in the file Go saved, against Go's nn.StateDict" % (name, k), sd[k], v, 0)
        if msg:
            fails.append(msg)
        if k not in py:
            fails.append("%s: %s is not in the state dict torch.optim trained" % (name, k))
            continue
        worst, msg = compare("%s: %s after training, torch.optim against Go" % (name, k), py[k], v, cfg["state_tol"])
        n["state_diff"] = max(n["state_diff"], worst)
        if msg:
            fails.append(msg)

    # The probe batch in evaluation mode.
    b = torch.load(os.path.join(cfg["dir"], name + ".batch.pt"))
    m.eval()
    out = m(*[b["probe." + k] for k in c["inputs"]])
    n["outputs"] += out.numel()
    n["out_diff"], msg = compare("%s: outputs on the probe batch in evaluation mode, the saved module against Go" % name, out, go["probe.out"], cfg["out_tol"])
    if msg:
        fails.append(msg)
    checked[name] = n
print(json.dumps({"failures": fails, "checked": checked}))
`

// trainCase is one model trained by both.
type trainCase struct {
	Name    string         `json:"name"`
	Model   string         `json:"model"`   // a class of pyModels
	Convert string         `json:"convert"` // "script" (torch.jit.script) or "trace" (torch.jit.trace)
	Inputs  []string       `json:"inputs"`  // the batch entries forward takes, in order
	Loss    string         `json:"loss"`    // "ce" (cross entropy) or "mse"
	Opt     string         `json:"opt"`     // a torch.optim class
	Kwargs  map[string]any `json:"kwargs"`  // its arguments
	Steps   int            `json:"steps"`
	Seed    int            `json:"seed"`
}

var trainCases = []trainCase{
	{Name: "cnn_script", Model: "CNNX", Convert: "script", Inputs: []string{"x"}, Loss: "ce", Steps: 6, Seed: 1,
		Opt: "SGD", Kwargs: map[string]any{"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}},
	{Name: "cnn_trace", Model: "CNN", Convert: "trace", Inputs: []string{"x"}, Loss: "ce", Steps: 6, Seed: 2,
		Opt: "SGD", Kwargs: map[string]any{"lr": 0.05, "momentum": 0.9, "nesterov": true}},
	{Name: "lstm", Model: "LSTMReg", Convert: "script", Inputs: []string{"x"}, Loss: "mse", Steps: 6, Seed: 3,
		Opt: "Adam", Kwargs: map[string]any{"lr": 0.01, "betas": []float64{0.9, 0.99}}},
	{Name: "gru", Model: "GRUCls", Convert: "script", Inputs: []string{"tokens"}, Loss: "ce", Steps: 6, Seed: 4,
		Opt: "AdamW", Kwargs: map[string]any{"lr": 0.01, "weight_decay": 0.05}},
	{Name: "transformer", Model: "TinyTransformer", Convert: "script", Inputs: []string{"tokens", "mask"}, Loss: "ce", Steps: 6, Seed: 5,
		Opt: "AdamW", Kwargs: map[string]any{"lr": 3e-3, "weight_decay": 0.01}},
}

// runPy writes pyModels+script into dir as name.py and runs it with in as JSON on stdin,
// decoding its stdout into out.
func runPy(t *testing.T, dir, name, script string, in, out any) {
	t.Helper()
	path := filepath.Join(dir, name+".py")
	require.NoError(t, os.WriteFile(path, []byte(pyModels+script), 0o644))
	torchpy.RunJSON(t, "import runpy; runpy.run_path("+strconv.Quote(path)+", run_name='__main__')", in, out)
}

// goOptimizer is c's torch.optim optimizer in Go, on params.
func goOptimizer(t *testing.T, c trainCase, params []*bridge.Tensor) *optim.Optimizer {
	t.Helper()
	known := map[string]bool{"lr": true, "momentum": true, "dampening": true, "weight_decay": true,
		"nesterov": true, "betas": true, "eps": true, "amsgrad": true}
	for k := range c.Kwargs {
		require.True(t, known[k], "%s: goOptimizer does not know %s's argument %q", c.Name, c.Opt, k)
	}
	f := func(k string, def float64) float64 {
		if v, ok := c.Kwargs[k]; ok {
			return v.(float64)
		}
		return def
	}
	b := func(k string) bool { v, _ := c.Kwargs[k].(bool); return v }
	var opt *optim.Optimizer
	var err error
	switch c.Opt {
	case "SGD":
		opt, err = optim.NewSGD(optim.Params(params...), optim.SGDOptions{LR: f("lr", 0), Momentum: f("momentum", 0),
			Dampening: f("dampening", 0), WeightDecay: f("weight_decay", 0), Nesterov: b("nesterov")})
	case "Adam", "AdamW":
		o := optim.DefaultAdam()
		if c.Opt == "AdamW" {
			o = optim.DefaultAdamW()
		}
		o.LR, o.Eps, o.WeightDecay, o.AMSGrad = f("lr", o.LR), f("eps", o.Eps), f("weight_decay", o.WeightDecay), b("amsgrad")
		if v, ok := c.Kwargs["betas"]; ok {
			bs := v.([]float64)
			o.Betas = [2]float64{bs[0], bs[1]}
		}
		if c.Opt == "Adam" {
			opt, err = optim.NewAdam(optim.Params(params...), o)
		} else {
			opt, err = optim.NewAdamW(optim.Params(params...), o)
		}
	default:
		t.Fatalf("%s: goOptimizer does not know %s", c.Name, c.Opt)
	}
	require.NoError(t, err)
	require.Equal(t, c.Opt, opt.TorchName())
	return opt
}

// forward runs m's forward on args: Forward for one, Call for more.
func forward(t *testing.T, m *jit.Module, args []*bridge.Tensor) *bridge.Tensor {
	t.Helper()
	if len(args) == 1 {
		var y *bridge.Tensor
		require.NoError(t, bridge.Try(func() { y = m.Forward(args[0]) }))
		return y
	}
	anys := make([]any, len(args))
	for i, a := range args {
		anys[i] = a
	}
	out, err := m.Call("forward", anys...)
	require.NoError(t, err)
	y, ok := out.(*bridge.Tensor)
	require.True(t, ok, "forward returned %T, not a tensor", out)
	return y
}

func lossOf(t *testing.T, kind string, out, y *bridge.Tensor) *bridge.Tensor {
	t.Helper()
	switch kind {
	case "ce":
		return bridge.CrossEntropy(out, y)
	case "mse":
		return bridge.MSELoss(out, y)
	}
	t.Fatalf("unknown loss %q", kind)
	return nil
}

func loadMap(t *testing.T, path string) map[string]*bridge.Tensor {
	t.Helper()
	m, err := bridge.LoadMap(path)
	require.NoError(t, err)
	return m
}

func pick(t *testing.T, m map[string]*bridge.Tensor, prefix string, names []string) []*bridge.Tensor {
	t.Helper()
	out := make([]*bridge.Tensor, len(names))
	for i, n := range names {
		x, ok := m[prefix+n]
		require.True(t, ok, "the batch has no %q", prefix+n)
		out[i] = x
	}
	return out
}

// requireClose compares got (Go's) with the reference want (PyTorch's, mostly): same shape and
// dtype, and floats within tol·max(1, |want|) (integers and booleans exactly).
func requireClose(t *testing.T, what string, want, got *bridge.Tensor, tol float64) {
	t.Helper()
	require.NotNil(t, got, "%s: Go has no tensor", what)
	require.Equal(t, want.Shape(), got.Shape(), "%s: shape", what)
	require.Equal(t, want.DType(), got.DType(), "%s: dtype", what)
	switch want.DType() {
	case bridge.Int64:
		require.Equal(t, want.Int64s(), got.Int64s(), "%s", what)
		return
	case bridge.Bool:
		require.Equal(t, want.Bools(), got.Bools(), "%s", what)
		return
	}
	w, g := want.To(bridge.Float64).Float64s(), got.To(bridge.Float64).Float64s()
	worst, at := 0.0, -1
	for i := range w {
		d := math.Abs(w[i]-g[i]) / math.Max(1, math.Abs(w[i]))
		if math.IsNaN(d) {
			worst, at = math.Inf(1), i
			break
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if worst > tol {
		require.Failf(t, what+": the values differ",
			"element %d of %d (shape %v): expected %.9g, got %.9g (scaled |diff| %.3g > %g)", at, len(w), want.Shape(), w[at], g[at], worst, tol)
	}
}

// TestJITTrainAgainstPyTorch trains scripted and traced models from Go as torch.optim trains
// them in Python: the same file (saved before Python trained), the same batch, the same optimizer
// and hyper-parameters, loss for loss. Then Python loads each module Go saved, finds no trace of
// hotcb in it, its state dict equal to Go's, its weights those torch.optim reached, and its
// outputs on a probe batch in evaluation mode those Go computes.
func TestJITTrainAgainstPyTorch(t *testing.T) {
	t.Parallel()
	torchpy.Interpreter(t)
	dir := t.TempDir()
	var pyLosses map[string][]float64
	runPy(t, dir, "train", pyTrain, map[string]any{"dir": dir, "cases": trainCases}, &pyLosses)

	var done []trainCase
	for _, c := range trainCases {
		ok := t.Run(c.Name, func(t *testing.T) {
			want := pyLosses[c.Name]
			require.Len(t, want, c.Steps, "PyTorch's losses")
			require.Less(t, want[c.Steps-1], want[0], "PyTorch's training should lower the loss (else the check proves little)")

			m, err := jit.Load(filepath.Join(dir, c.Name+".pt"), bridge.CPU)
			require.NoError(t, err)
			defer m.Free()
			b := loadMap(t, filepath.Join(dir, c.Name+".batch.pt"))
			args, y := pick(t, b, "", c.Inputs), b["y"]
			require.NotNil(t, y)

			nn.Train(m, true)
			opt := goOptimizer(t, c, nn.Parameters(m))
			got := make([]float64, 0, c.Steps)
			for range c.Steps {
				opt.ZeroGrad()
				loss := lossOf(t, c.Loss, forward(t, m, args), y)
				got = append(got, loss.Item())
				loss.Backward()
				opt.Step()
			}
			worst := 0.0
			for k := range want {
				worst = max(worst, math.Abs(got[k]-want[k])/math.Max(1, math.Abs(want[k])))
			}
			t.Logf("losses %.6g → %.6g; largest difference from PyTorch %.3g", want[0], want[c.Steps-1], worst)
			for k := range want {
				assert.LessOrEqual(t, math.Abs(got[k]-want[k]), lossTol*math.Max(1, math.Abs(want[k])),
					"step %d: Go's loss %.9g, PyTorch's %.9g (tolerance %g, relative above 1)\nGo:      %v\nPyTorch: %v",
					k, got[k], want[k], lossTol, got, want)
			}
			if t.Failed() {
				return
			}

			// Save, and give Python the state dict as saved and the outputs on the probe batch in
			// evaluation mode. The state dict is copied first: a module traced in training mode
			// keeps training its BatchNorm statistics in evaluation mode (as in Python).
			trained := filepath.Join(dir, c.Name+".trained.pt")
			require.NoError(t, m.Save(trained))
			requireNoHotcb(t, trained)
			var items []bridge.Named
			for _, it := range nn.StateDict(m) {
				items = append(items, bridge.Named{Name: "sd." + it.Name, Tensor: it.Tensor.Clone()})
			}
			nn.Eval(m)
			probe := pick(t, b, "probe.", c.Inputs)
			out := forward(t, m, probe)
			items = append(items, bridge.Named{Name: "probe.out", Tensor: out})

			// torch.optim's weights, loaded into the untrained file with nn.LoadStateDict, give
			// the outputs of Go's.
			fresh, err := jit.Load(filepath.Join(dir, c.Name+".pt"), bridge.CPU)
			require.NoError(t, err)
			defer fresh.Free()
			pyTrained, err := bridge.LoadNamed(filepath.Join(dir, c.Name+".pytrained.pt"))
			require.NoError(t, err)
			require.NoError(t, nn.LoadStateDict(fresh, pyTrained, true))
			nn.Eval(fresh)
			requireClose(t, "probe outputs of torch.optim's weights loaded with nn.LoadStateDict, against Go's",
				out, forward(t, fresh, probe), lossTol)
			require.NoError(t, bridge.SaveNamed(filepath.Join(dir, c.Name+".go.pt"), items))
		})
		if ok {
			done = append(done, c)
		}
	}
	if len(done) == 0 {
		return
	}

	var res struct {
		Failures []string                      `json:"failures"`
		Checked  map[string]map[string]float64 `json:"checked"`
	}
	runPy(t, dir, "verify", pyVerify, map[string]any{"dir": dir, "cases": done, "out_tol": outTol, "state_tol": stateTol}, &res)
	for _, f := range res.Failures {
		t.Error(f)
	}
	for _, c := range done {
		n := res.Checked[c.Name]
		assert.Positive(t, n["methods"], "%s: Python checked no method's code", c.Name)
		assert.Positive(t, n["state"], "%s: Python checked no state dict entry", c.Name)
		assert.Positive(t, n["outputs"], "%s: Python checked no output", c.Name)
		t.Logf("%s: weights after training within %.3g of torch.optim's; probe outputs within %.3g", c.Name, n["state_diff"], n["out_diff"])
	}
}

// requireNoHotcb fails if the TorchScript file at path mentions hotcb outside tensor data: the
// taps must be out of what Save writes.
func requireNoHotcb(t *testing.T, path string) {
	t.Helper()
	z, err := zip.OpenReader(path)
	require.NoError(t, err)
	defer z.Close()
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
		if strings.Contains(f.Name, "/data/") {
			continue
		}
		r, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(r)
		r.Close()
		require.NoError(t, err)
		require.NotContains(t, string(b), "hotcb", "%s: %s", path, f.Name)
	}
	require.True(t, slices.ContainsFunc(names, func(s string) bool { return strings.Contains(s, "/code/") }),
		"%s has no code/ entries: %v", path, names)
}

// pyRefs saves the modules of the Call and hook checks, in evaluation mode, and what Python
// computes with them: forward hooks (on the eager modules; TorchScript modules take none),
// exported methods returning a dict and a tuple, a method taking a tuple, a forward taking two
// inputs, a submodule's forward.
const pyRefs = `
cfg = json.load(sys.stdin)
d = cfg["dir"]
ref = {}
torch.manual_seed(11)
cnn = CNNX().eval()
x = torch.randn(4, 3, 10, 10)
ref["cnn.x"] = x
torch.jit.save(torch.jit.script(cnn), os.path.join(d, "cnn_script.pt"))
plain = CNN().eval()
plain.load_state_dict(cnn.state_dict())
torch.jit.save(torch.jit.trace(plain, (x,)), os.path.join(d, "cnn_trace.pt"))
mods = dict(cnn.named_modules())
handles = []
for name in cfg["hooks"]:
    def hook(mod, inp, out, name=name):
        assert "hook." + name + ".out" not in ref, name + " ran twice"
        ref["hook." + name + ".in"] = inp[0].detach().clone()
        ref["hook." + name + ".out"] = out.detach().clone()
    handles.append(mods[name].register_forward_hook(hook))
ref["cnn.forward"] = cnn(x).detach()
for h in handles:
    h.remove()
e = cnn.embed(x)
ref["cnn.embed.features"], ref["cnn.embed.logits"] = e["features"].detach(), e["logits"].detach()
v, i = cnn.top(x, 3)
ref["cnn.top.values"], ref["cnn.top.indices"] = v.detach(), i
ref["cnn.head"] = cnn.head(e["features"]).detach()

torch.manual_seed(12)
lstm = LSTMReg().eval()
torch.jit.save(torch.jit.script(lstm), os.path.join(d, "lstm.pt"))
xs, h0, c0 = torch.randn(3, 4, 5), torch.randn(2, 3, 16), torch.randn(2, 3, 16)
y, (h, c) = lstm.step(xs, (h0, c0))
ref.update({"lstm.x": xs, "lstm.h0": h0, "lstm.c0": c0, "lstm.y": y.detach(), "lstm.h": h.detach(), "lstm.c": c.detach()})

torch.manual_seed(13)
tr = TinyTransformer().eval()
torch.jit.save(torch.jit.script(tr), os.path.join(d, "transformer.pt"))
b = batch("TinyTransformer")
ref.update({"tr.tokens": b["tokens"], "tr.mask": b["mask"], "tr.out": tr(b["tokens"], b["mask"]).detach()})
with torch.no_grad():  # in evaluation mode, the encoder's fused fast path
    ref["tr.out_nograd"] = tr(b["tokens"], b["mask"])
torch.save(ref, os.path.join(d, "ref.pt"))
print(json.dumps(sorted(ref)))
`

// hookNames are the submodules of the CNN hooked in both: a block, a convolution inside it, and
// a ReLU whose type the other block's ReLU shares (only this one must fire).
var hookNames = []string{"features.0", "features.0.conv", "features.0.act", "features.2.bn"}

// TestJITCallAndHooksAgainstPyTorch checks Call on exported methods (a dict and a tuple, an int
// argument, a tuple argument and a nested tuple result), a forward with two inputs, a
// submodule's Forward, and forward hooks on submodules of scripted and traced modules, against
// what Python computes.
func TestJITCallAndHooksAgainstPyTorch(t *testing.T) {
	t.Parallel()
	torchpy.Interpreter(t)
	dir := t.TempDir()
	var keys []string
	runPy(t, dir, "refs", pyRefs, map[string]any{"dir": dir, "hooks": hookNames}, &keys)
	ref := loadMap(t, filepath.Join(dir, "ref.pt"))
	require.Len(t, ref, len(keys))
	r := func(k string) *bridge.Tensor {
		t.Helper()
		x, ok := ref[k]
		require.True(t, ok, "Python saved no %q", k)
		return x
	}
	load := func(t *testing.T, name string) *jit.Module {
		m, err := jit.Load(filepath.Join(dir, name+".pt"), bridge.CPU)
		require.NoError(t, err)
		t.Cleanup(m.Free)
		nn.Eval(m)
		return m
	}

	t.Run("exported", func(t *testing.T) {
		m := load(t, "cnn_script")
		require.Subset(t, m.Methods(), []string{"forward", "embed", "top"})
		x := r("cnn.x")

		out, err := m.Call("embed", x)
		require.NoError(t, err)
		d, ok := out.(map[string]any)
		require.True(t, ok, "embed returned %T, not a dict", out)
		require.Len(t, d, 2)
		for _, k := range []string{"features", "logits"} {
			v, _ := d[k].(*bridge.Tensor)
			requireClose(t, "embed()[\""+k+"\"]", r("cnn.embed."+k), v, outTol)
		}

		out, err = m.Call("top", x, 3)
		require.NoError(t, err)
		tup, ok := out.(bridge.Tuple)
		require.True(t, ok, "top returned %T, not a tuple", out)
		require.Len(t, tup, 2)
		v, _ := tup[0].(*bridge.Tensor)
		i, _ := tup[1].(*bridge.Tensor)
		requireClose(t, "top()[0]", r("cnn.top.values"), v, outTol)
		requireClose(t, "top()[1]", r("cnn.top.indices"), i, 0)

		_, err = m.Call("top", x, "three")
		require.Error(t, err, "a str for an int argument")

		head, ok := nn.Find(m, "head")
		require.True(t, ok)
		hs, ok := head.(*jit.Submodule)
		require.True(t, ok, "head is a %T", head)
		var y *bridge.Tensor
		require.NoError(t, bridge.Try(func() { y = hs.Forward(d["features"].(*bridge.Tensor)) }))
		requireClose(t, "head.Forward", r("cnn.head"), y, outTol)
	})

	t.Run("tuple_argument", func(t *testing.T) {
		m := load(t, "lstm")
		out, err := m.Call("step", r("lstm.x"), bridge.Tuple{r("lstm.h0"), r("lstm.c0")})
		require.NoError(t, err)
		tup, ok := out.(bridge.Tuple)
		require.True(t, ok, "step returned %T, not a tuple", out)
		require.Len(t, tup, 2)
		hc, ok := tup[1].(bridge.Tuple)
		require.True(t, ok, "step()[1] is %T, not a tuple", tup[1])
		require.Len(t, hc, 2)
		y, _ := tup[0].(*bridge.Tensor)
		h, _ := hc[0].(*bridge.Tensor)
		c, _ := hc[1].(*bridge.Tensor)
		requireClose(t, "step()[0]", r("lstm.y"), y, outTol)
		requireClose(t, "step()[1][0]", r("lstm.h"), h, outTol)
		requireClose(t, "step()[1][1]", r("lstm.c"), c, outTol)
	})

	t.Run("two_inputs", func(t *testing.T) {
		m := load(t, "transformer")
		out, err := m.Call("forward", r("tr.tokens"), r("tr.mask"))
		require.NoError(t, err)
		y, ok := out.(*bridge.Tensor)
		require.True(t, ok, "forward returned %T", out)
		requireClose(t, "forward(tokens, mask)", r("tr.out"), y, outTol)

		err = bridge.Try(func() { m.Forward(r("tr.tokens")) })
		require.Error(t, err, "forward without its mask")

		// Under NoGrad the module runs as under torch.no_grad (the encoder takes its fast path).
		bridge.NoGrad(func() { out, err = m.Call("forward", r("tr.tokens"), r("tr.mask")) })
		require.NoError(t, err)
		y, ok = out.(*bridge.Tensor)
		require.True(t, ok, "forward returned %T", out)
		require.False(t, y.RequiresGrad(), "an output computed under NoGrad requires grad")
		requireClose(t, "forward(tokens, mask) under NoGrad", r("tr.out_nograd"), y, outTol)
	})

	for _, variant := range []string{"script", "trace"} {
		t.Run("hooks_"+variant, func(t *testing.T) {
			m := load(t, "cnn_"+variant)
			type call struct{ in, out *bridge.Tensor }
			got := map[string][]call{}
			var handles []*nn.HookHandle
			for _, name := range hookNames {
				h, err := nn.RegisterForwardHook(m, name, func(n string, _ nn.Module, in, out *bridge.Tensor) {
					// The tensors are freed after the hooks: keep copies.
					got[n] = append(got[n], call{in.Clone(), out.Clone()})
				})
				require.NoError(t, err, name)
				handles = append(handles, h)
			}
			var y *bridge.Tensor
			require.NoError(t, bridge.Try(func() { y = m.Forward(r("cnn.x")) }))
			requireClose(t, "forward", r("cnn.forward"), y, outTol)
			require.ElementsMatch(t, hookNames, slices.Collect(maps.Keys(got)), "the hooked modules that fired")
			for _, name := range hookNames {
				calls := got[name]
				require.Equal(t, 1, len(calls), "%s's hook ran %d times in one forward", name, len(calls))
				requireClose(t, name+" hook input", r("hook."+name+".in"), calls[0].in, outTol)
				requireClose(t, name+" hook output", r("hook."+name+".out"), calls[0].out, outTol)
			}

			// Saving takes the taps out of the module and puts them back: the hooks still run.
			clear(got)
			require.NoError(t, m.Save(filepath.Join(t.TempDir(), "saved.pt")))
			require.NoError(t, bridge.Try(func() { y = m.Forward(r("cnn.x")) }))
			requireClose(t, "forward after Save", r("cnn.forward"), y, outTol)
			for _, name := range hookNames {
				require.Equal(t, 1, len(got[name]), "after Save, %s's hook ran %d times in one forward", name, len(got[name]))
				requireClose(t, name+" hook output after Save", r("hook."+name+".out"), got[name][0].out, outTol)
			}

			// A hooked submodule called directly runs its hooks once, and those of its own
			// submodules; in evaluation mode, features.0 takes the root's input.
			clear(got)
			f0, ok := nn.Find(m, "features.0")
			require.True(t, ok)
			require.NoError(t, bridge.Try(func() { y = f0.(*jit.Submodule).Forward(r("cnn.x")) }))
			requireClose(t, "features.0.Forward", r("hook.features.0.out"), y, outTol)
			require.ElementsMatch(t, []string{"features.0", "features.0.conv", "features.0.act"}, slices.Collect(maps.Keys(got)),
				"the hooked modules that fired when features.0 was called directly")
			for name, calls := range got {
				require.Equal(t, 1, len(calls), "%s's hook ran %d times in one forward of features.0", name, len(calls))
				requireClose(t, name+" hook output (features.0 called directly)", r("hook."+name+".out"), calls[0].out, outTol)
			}

			// Removed hooks no longer run, and the forward is unchanged.
			clear(got)
			for _, h := range handles {
				h.Remove()
			}
			require.NoError(t, bridge.Try(func() { y = m.Forward(r("cnn.x")) }))
			requireClose(t, "forward after removing the hooks", r("cnn.forward"), y, outTol)
			require.Empty(t, got, "removed hooks ran")
		})
	}
}
