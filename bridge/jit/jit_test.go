package jit_test

import (
	"archive/zip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/jit"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/torchfile"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// modelsScript writes the test models into the directory given as its argument. Net's two Conv2d
// of one configuration share a TorchScript type, so hooks must tell instances apart.
const modelsScript = `
import sys, torch, torch.nn as nn
from typing import Dict, List, Tuple
d = sys.argv[1]
torch.manual_seed(0)

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
    def forward(self, x):
        return self.conv2(torch.relu(self.bn(self.conv1(x))))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.Sequential(Block())
        self.fc = nn.Linear(4, 3)
        self.frozen = nn.Linear(3, 3)
        self.frozen.weight.requires_grad_(False)
    def forward(self, x):
        y = self.layer1(self.stem(x))
        return self.fc(y.mean((2, 3)))
    @torch.jit.export
    def parts(self, x: torch.Tensor, scale: float) -> Dict[str, torch.Tensor]:
        return {"logits": self.forward(x) * scale, "input": x}
    @torch.jit.export
    def modes(self) -> List[bool]:
        return [self.training, self.layer1.training, self.fc.training]
    @torch.jit.export
    def pair(self, xs: List[torch.Tensor], n: int) -> Tuple[torch.Tensor, int]:
        return xs[0] + xs[1], n + 1

torch.jit.save(torch.jit.script(Net()), d + "/net.pt")
torch.save(Net().state_dict(), d + "/state_dict.pt")
torch.save(Net(), d + "/pickled.pt")
torch.save(torch.ones(2), d + "/legacy.pt", _use_new_zipfile_serialization=False)
`

// models writes the test models into a temporary directory (or skips without PyTorch). The
// script runs from a file: torch.jit.script reads the classes' source.
func models(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "models.py")
	require.NoError(t, os.WriteFile(script, []byte(modelsScript), 0o600))
	out, err := exec.Command(torchpy.Interpreter(t), script, dir).CombinedOutput()
	require.NoError(t, err, "python: %s", out)
	return dir
}

func load(t *testing.T, dir string) *jit.Module {
	t.Helper()
	m, err := jit.Load(filepath.Join(dir, "net.pt"), bridge.CPU)
	require.NoError(t, err)
	t.Cleanup(m.Free)
	return m
}

func TestLoadMirrorsTheModuleTree(t *testing.T) {
	m := load(t, models(t))
	var names []string
	for _, nm := range nn.StateDict(m) {
		names = append(names, nm.Name)
	}
	assert.Equal(t, []string{"stem.weight", "stem.bias",
		"layer1.0.conv1.weight", "layer1.0.conv1.bias", "layer1.0.bn.weight", "layer1.0.bn.bias",
		"layer1.0.bn.running_mean", "layer1.0.bn.running_var", "layer1.0.bn.num_batches_tracked",
		"layer1.0.conv2.weight", "layer1.0.conv2.bias", "fc.weight", "fc.bias", "frozen.weight", "frozen.bias"}, names)
	// Parameters are trainable leaves, except the one frozen in Python; buffers are not parameters.
	var params []string
	for _, p := range nn.NamedParameters(m) {
		params = append(params, p.Name)
		assert.Equal(t, p.Name != "frozen.weight", p.Tensor.RequiresGrad(), p.Name)
	}
	assert.NotContains(t, params, "layer1.0.bn.running_mean")
	kinds := map[string]string{}
	for _, nm := range nn.NamedModules(m) {
		kinds[nm.Name] = nn.Kind(nm.Module)
	}
	assert.Equal(t, map[string]string{"": "Net", "stem": "Conv2d", "layer1": "Sequential", "layer1.0": "Block",
		"layer1.0.conv1": "Conv2d", "layer1.0.bn": "BatchNorm2d", "layer1.0.conv2": "Conv2d", "fc": "Linear", "frozen": "Linear"}, kinds)
	assert.ElementsMatch(t, []string{"forward", "parts", "modes", "pair"}, m.Methods())
	sub, ok := nn.Find(m, "layer1.0.conv1")
	require.True(t, ok)
	assert.Contains(t, sub.(*jit.Submodule).Type(), "Conv2d")
}

func TestTrainingStepsChangeTheModule(t *testing.T) {
	m := load(t, models(t))
	x := bridge.Randn(bridge.Shape{2, 3, 8, 8})
	var fc *bridge.Tensor
	for _, p := range nn.NamedParameters(m) {
		if p.Name == "fc.weight" {
			fc = p.Tensor
		}
	}
	before := fc.Float32s()
	rmBefore := buffer(t, m, "layer1.0.bn.running_mean").Float32s()
	loss := m.Forward(x).Square().Mean()
	loss.Backward()
	require.NotNil(t, fc.Grad(), "backward reaches the module's parameters")
	bridge.NoGrad(func() { fc.AddInPlace(fc.Grad(), -0.5) })
	assert.NotEqual(t, before, fc.Float32s())
	assert.NotEqual(t, rmBefore, buffer(t, m, "layer1.0.bn.running_mean").Float32s(), "batch norm updates its running stats in training mode")
	// nn.Eval reaches libtorch: the module and its children report training false.
	modes := func() []any {
		out, err := m.Call("modes")
		require.NoError(t, err)
		return out.([]any)
	}
	assert.Equal(t, []any{true, true, true}, modes())
	nn.Eval(m)
	assert.Equal(t, []any{false, false, false}, modes())
	fcMod, _ := nn.Find(m, "fc")
	nn.Train(fcMod, true)
	assert.Equal(t, []any{false, false, true}, modes())
	nn.Eval(m)
	rm := buffer(t, m, "layer1.0.bn.running_mean").Float32s()
	m.Forward(x)
	assert.Equal(t, rm, buffer(t, m, "layer1.0.bn.running_mean").Float32s(), "eval mode leaves running stats alone")
}

func buffer(t *testing.T, m nn.AnyModule, name string) *bridge.Tensor {
	t.Helper()
	for _, it := range nn.StateDict(m) {
		if it.Name == name {
			return it.Tensor
		}
	}
	t.Fatalf("no %s", name)
	return nil
}

func TestCallMethodsWithGoValues(t *testing.T) {
	m := load(t, models(t))
	x := bridge.Randn(bridge.Shape{2, 3, 8, 8})
	nn.Eval(m)
	y := m.Forward(x)
	out, err := m.Call("parts", x, 2.0)
	require.NoError(t, err)
	d := out.(map[string]any)
	assert.InDeltaSlice(t, y.MulScalar(2).Float32s(), d["logits"].(*bridge.Tensor).Float32s(), 1e-6)
	assert.Equal(t, x.Float32s(), d["input"].(*bridge.Tensor).Float32s())

	a, b := bridge.Ones(bridge.Shape{2}), bridge.Full(bridge.Shape{2}, 2)
	out, err = m.Call("pair", []*bridge.Tensor{a, b}, 41)
	require.NoError(t, err)
	tup := out.(bridge.Tuple)
	assert.Equal(t, []float32{3, 3}, tup[0].(*bridge.Tensor).Float32s())
	assert.Equal(t, int64(42), tup[1])

	// Bad calls are errors naming the method and the problem; the module keeps working.
	_, err = m.Call("parts", x)
	assert.ErrorContains(t, err, "parts")
	assert.ErrorContains(t, err, "scale")
	_, err = m.Call("nope", x)
	assert.ErrorContains(t, err, "has no method nope (its methods:")
	_, err = m.Call("parts", x, make(chan int))
	assert.ErrorContains(t, err, "argument 2: a chan int has no Python form")
	_, err = m.Call("pair", []*bridge.Tensor{a, b}, "forty")
	assert.ErrorContains(t, err, "pair")
	_, err = m.Call("forward", bridge.Randn(bridge.Shape{2, 5, 8, 8}))
	assert.Error(t, err, "a 5-channel input to a 3-channel conv")
	assert.Equal(t, y.Float32s(), m.Forward(x).Float32s())

	// Forward wants one tensor out; a submodule's forward can be called on its own.
	conv, ok := nn.Find(m, "stem")
	require.True(t, ok)
	assert.Equal(t, bridge.Shape{2, 4, 8, 8}, conv.(nn.Module).Forward(x).Shape())
	perr := bridge.Try(func() { m.Forward(nil) })
	assert.ErrorContains(t, perr, "argument 1")
}

func TestHooksSeeNamedSubmodules(t *testing.T) {
	m := load(t, models(t))
	x := bridge.Randn(bridge.Shape{2, 3, 8, 8})
	var seen []string
	var conv1Out *bridge.Tensor
	h, err := nn.RegisterForwardHook(m, "layer1.0.conv1", func(name string, mod nn.Module, in, out *bridge.Tensor) {
		seen = append(seen, name)
		assert.Equal(t, bridge.Shape{2, 4, 8, 8}, in.Shape())
		conv1Out = out.Detach().Clone()
	})
	require.NoError(t, err)
	m.Forward(x)
	// conv1 and conv2 share a TorchScript type: only the hooked instance fires.
	assert.Equal(t, []string{"layer1.0.conv1"}, seen)
	stem, _ := nn.Find(m, "stem")
	conv1, _ := nn.Find(m, "layer1.0.conv1")
	nn.Eval(m)
	seen = nil
	m.Forward(x)
	want := conv1.(nn.Module).Forward(stem.(nn.Module).Forward(x))
	assert.InDeltaSlice(t, want.Float32s(), conv1Out.Float32s(), 1e-6, "the hook sees the submodule's output")
	h.Remove()
	seen = nil
	m.Forward(x)
	assert.Empty(t, seen, "a removed hook no longer fires")

	// Hooks on every module, the root included.
	var all []string
	h2 := nn.RegisterForwardHookOn(nn.NamedModules(m), func(name string, _ nn.Module, _, _ *bridge.Tensor) {
		all = append(all, name)
	})
	defer h2.Remove()
	m.Forward(x)
	assert.Equal(t, []string{"stem", "layer1.0.conv1", "layer1.0.bn", "layer1.0.conv2", "layer1.0", "layer1", "fc", ""}, all,
		"submodules in the order their forwards end, then the root")
}

func TestStateDictToAndSave(t *testing.T) {
	dir := models(t)
	m := load(t, dir)
	nn.Eval(m)
	x := bridge.Randn(bridge.Shape{2, 3, 8, 8})
	y := m.Forward(x).Float32s()

	// A state dict out of one module loads into another: same outputs.
	other := load(t, dir)
	nn.Eval(other)
	for _, p := range nn.Parameters(other) {
		bridge.NoGrad(func() { p.MulScalarInPlace(0) })
	}
	require.NotEqual(t, y, other.Forward(x).Float32s())
	require.NoError(t, nn.LoadStateDict(other, nn.StateDict(m), true))
	assert.Equal(t, y, other.Forward(x).Float32s())
	err := nn.LoadStateDict(other, []bridge.Named{{Name: "fc.weight", Tensor: bridge.Zeros(bridge.Shape{1})}}, false)
	assert.ErrorContains(t, err, "fc.weight")

	// To converts the module itself.
	nn.To(other, bridge.Float64)
	y64 := other.Forward(x.To(bridge.Float64))
	assert.Equal(t, bridge.Float64, y64.DType())
	assert.InDeltaSlice(t, toF64(y), y64.Float64s(), 1e-5)

	// Save writes the module with its current weights and without the taps; it loads back.
	for _, p := range nn.Parameters(m) {
		bridge.NoGrad(func() { p.AddScalarInPlace(0.01) })
	}
	y2 := m.Forward(x).Float32s()
	_, err = nn.RegisterForwardHook(m, "stem", func(string, nn.Module, *bridge.Tensor, *bridge.Tensor) {})
	require.NoError(t, err)
	m.Forward(x)
	out := filepath.Join(t.TempDir(), "saved.pt")
	require.NoError(t, m.Save(out))
	assertNoTaps(t, out)
	back, err := jit.Load(out, bridge.CPU)
	require.NoError(t, err)
	defer back.Free()
	assert.Equal(t, y2, back.Forward(x).Float32s())
	flags, err := back.Call("modes")
	require.NoError(t, err)
	assert.Equal(t, []any{false, false, false}, flags, "the training flags are saved")
	// Taps still work after a save.
	fired := 0
	_, err = nn.RegisterForwardHook(m, "fc", func(string, nn.Module, *bridge.Tensor, *bridge.Tensor) { fired++ })
	require.NoError(t, err)
	m.Forward(x)
	assert.Equal(t, 1, fired)
}

func toF64(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// assertNoTaps checks that no code in a saved archive mentions hotcb's recording ops.
func assertNoTaps(t *testing.T, path string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	require.NoError(t, err)
	defer zr.Close()
	code := 0
	for _, f := range zr.File {
		if !strings.Contains(f.Name, "/code/") || !strings.HasSuffix(f.Name, ".py") {
			continue
		}
		code++
		r, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(r)
		r.Close()
		require.NoError(t, err)
		assert.NotContains(t, string(b), "hotcb", f.Name)
	}
	assert.NotZero(t, code, "the archive has code")
}

func TestLoadSaysWhatAFileIs(t *testing.T) {
	dir := models(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	var zbuf strings.Builder
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("hello.txt")
	w.Write([]byte("hi"))
	zw.Close()
	cases := []struct {
		path string
		want []string
	}{
		{filepath.Join(dir, "state_dict.pt"), []string{"torch.save file holding a dict of 15 tensors", "state dict", "nn.LoadStateDict", "torch.jit.save(torch.jit.script(model)"}},
		{filepath.Join(dir, "pickled.pt"), []string{"pickled __main__.Net object", "torch.jit.save"}},
		{filepath.Join(dir, "legacy.pt"), []string{"a bare pickle (legacy torch.save or pickle.dump)", "torch.jit.save"}},
		{write("notes.txt", []byte("not a model")), []string{"not a PyTorch file", "torch.jit.save"}},
		{write("other.zip", []byte(zbuf.String())), []string{"a zip archive that PyTorch did not write"}},
		{t.TempDir(), []string{"is a directory"}},
		{filepath.Join(dir, "missing.pt"), []string{"no such file"}},
	}
	for _, c := range cases {
		_, err := jit.Load(c.path, bridge.CPU)
		require.Error(t, err, c.path)
		for _, w := range c.want {
			assert.ErrorContains(t, err, w, c.path)
		}
	}
	// The other way round: reading a TorchScript file as a torch.save file is an error, not nothing.
	_, err := bridge.LoadNamed(filepath.Join(dir, "net.pt"))
	assert.True(t, errors.Is(err, torchfile.ErrTorchScript), "%v", err)
	assert.ErrorContains(t, err, "jit.Load")
}

func TestFreedModule(t *testing.T) {
	m := load(t, models(t))
	m.Free()
	m.Free()
	_, err := m.Call("forward", bridge.Randn(bridge.Shape{1, 3, 8, 8}))
	assert.ErrorContains(t, err, "freed")
}
