package bridge_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/internal/torchpy"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	items := []Named{
		{"w", FromSlice([]float32{1, 2, 3, 4}, 2, 2)},
		{"idx", FromSlice([]int64{5, -6})},
		{"mask", FromSlice([]bool{true, false})},
		{"half", FromSlice([]float32{0.5, 1.5}).To(Float16)},
		{"scalar", Scalar(3, Float64)},
		{"t", FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3).Transpose(0, 1)}, // not contiguous
	}
	b, err := Encode(items)
	require.NoError(t, err)
	got, skipped, err := Decode(b)
	require.NoError(t, err)
	require.Zero(t, skipped)
	require.Len(t, got, len(items))
	for i, it := range items {
		require.Equal(t, it.Name, got[i].Name, "order is kept")
		require.Equal(t, it.Tensor.DType(), got[i].Tensor.DType(), it.Name)
		require.Equal(t, it.Tensor.Shape(), got[i].Tensor.Shape(), it.Name)
		require.Equal(t, it.Tensor.Float64s(), got[i].Tensor.Float64s(), it.Name)
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "one.pt")
	require.NoError(t, Save(p, items[0].Tensor))
	one, err := Load(p)
	require.NoError(t, err)
	require.Equal(t, []float32{1, 2, 3, 4}, one.Float32s())

	mp := filepath.Join(dir, "map.pt")
	require.NoError(t, SaveMap(mp, map[string]*Tensor{"b": Ones(Shape{1}), "a": Zeros(Shape{2})}))
	m, err := LoadMap(mp)
	require.NoError(t, err)
	require.Len(t, m, 2)
	require.Equal(t, Shape{2}, m["a"].Shape())
	named, err := LoadNamed(mp)
	require.NoError(t, err)
	require.Equal(t, "a", named[0].Name, "SaveMap sorts keys")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary files left behind")
}

func TestSerializationErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.pt"))
	require.ErrorIs(t, err, os.ErrNotExist)

	garbage := filepath.Join(dir, "garbage.pt")
	require.NoError(t, os.WriteFile(garbage, []byte("this is not a checkpoint"), 0o600))
	_, err = LoadNamed(garbage)
	require.ErrorContains(t, err, "garbage.pt")
	require.ErrorContains(t, err, "load")

	good, err := Encode([]Named{{"w", Ones(Shape{100})}})
	require.NoError(t, err)
	trunc := filepath.Join(dir, "trunc.pt")
	require.NoError(t, os.WriteFile(trunc, good[:len(good)/2], 0o600))
	_, err = LoadNamed(trunc)
	require.ErrorContains(t, err, "trunc.pt")

	_, _, err = Decode(nil)
	require.ErrorContains(t, err, "empty input")

	dict := filepath.Join(dir, "dict.pt")
	require.NoError(t, SaveNamed(dict, []Named{{"a", Ones(Shape{1})}, {"b", Ones(Shape{1})}}))
	_, err = Load(dict)
	require.ErrorContains(t, err, "use LoadNamed")

	_, err = Encode([]Named{{"a", Ones(Shape{1})}, {"a", Ones(Shape{1})}})
	require.ErrorContains(t, err, `duplicate name "a"`)
	_, err = Encode([]Named{{"a", nil}})
	require.ErrorContains(t, err, `tensor "a" is nil`)
	f := Ones(Shape{1})
	require.NoError(t, f.Free())
	_, err = Encode([]Named{{"f", f}})
	require.ErrorIs(t, err, ErrFreed)

	err = Save(filepath.Join(dir, "no", "such", "dir.pt"), Ones(Shape{1}))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestPythonLoadsWhatGoSaves(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "go.pt")
	require.NoError(t, SaveNamed(p, []Named{
		{"features.0.weight", FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)},
		{"step", Scalar(42, Int64)},
		{"mask", FromSlice([]bool{true, false})},
		{"bf", FromSlice([]float32{1.5}).To(BFloat16)},
	}))
	out := torchpy.Run(t, `
import json, sys, torch
d = torch.load(sys.argv[1])
print(json.dumps({k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.float().flatten().tolist()} for k, v in d.items()}))
`, p)
	var got map[string]struct {
		DType  string    `json:"dtype"`
		Shape  []int64   `json:"shape"`
		Values []float64 `json:"values"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Equal(t, "torch.float32", got["features.0.weight"].DType)
	require.Equal(t, []int64{2, 3}, got["features.0.weight"].Shape)
	require.Equal(t, []float64{1, 2, 3, 4, 5, 6}, got["features.0.weight"].Values)
	require.Equal(t, "torch.int64", got["step"].DType)
	require.Equal(t, []float64{42}, got["step"].Values)
	require.Equal(t, "torch.bool", got["mask"].DType)
	require.Equal(t, "torch.bfloat16", got["bf"].DType)

	single := filepath.Join(dir, "single.pt")
	require.NoError(t, Save(single, FromSlice([]float64{0.25, 0.5})))
	out = torchpy.Run(t, `
import sys, torch
t = torch.load(sys.argv[1])
assert isinstance(t, torch.Tensor), type(t)
print(t.dtype, t.tolist())
`, single)
	require.Equal(t, "torch.float64 [0.25, 0.5]", strings.TrimSpace(out))
}

func TestGoLoadsWhatPythonSaves(t *testing.T) {
	dir := t.TempDir()
	torchpy.Run(t, `
import sys, os, torch
d = sys.argv[1]
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 3))
torch.save(model.state_dict(), os.path.join(d, "state.pt"))
torch.save(torch.arange(6, dtype=torch.float64).reshape(2, 3).t(), os.path.join(d, "tensor.pt"))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
model(torch.randn(1, 1, 4, 4)).sum().backward()
opt.step()
torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 7, "epoch": 1.5, "name": "run"}, os.path.join(d, "ckpt.pt"))
with open(os.path.join(d, "sum.txt"), "w") as f:
    f.write(repr(float(model[0].weight.sum())))
`, dir)

	st, err := LoadNamed(filepath.Join(dir, "state.pt"))
	require.NoError(t, err)
	names := make([]string, len(st))
	for i, it := range st {
		names[i] = it.Name
	}
	require.Equal(t, []string{"0.weight", "0.bias", "3.weight", "3.bias"}, names, "PyTorch's names, in order")
	require.Equal(t, Shape{2, 1, 3, 3}, st[0].Tensor.Shape())

	tt, err := Load(filepath.Join(dir, "tensor.pt"))
	require.NoError(t, err)
	require.Equal(t, Shape{3, 2}, tt.Shape())
	require.Equal(t, []float64{0, 3, 1, 4, 2, 5}, tt.Float64s(), "a transposed (strided) tensor keeps its view")

	ck, err := LoadMap(filepath.Join(dir, "ckpt.pt"))
	require.NoError(t, err)
	require.Equal(t, int64(7), ck["step"].ItemInt())
	require.Equal(t, 1.5, ck["epoch"].Item())
	require.Contains(t, ck, "model.0.weight")
	require.Contains(t, ck, "optimizer.state.0.momentum_buffer")
	require.InDelta(t, 0.1, ck["optimizer.param_groups.0.lr"].Item(), 1e-12)
	require.NotContains(t, ck, "name", "strings are skipped")
	want, err := os.ReadFile(filepath.Join(dir, "sum.txt"))
	require.NoError(t, err)
	require.Equal(t, strings.TrimSpace(string(want)), strings.TrimSpace(formatPy(ck["model.0.weight"].Sum().Item())))
}

// formatPy prints a float32-rounded value the way Python's repr prints a float.
func formatPy(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestNestedNamesMakeNestedDicts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nested.pt")
	require.NoError(t, SaveNamed(p, []Named{
		{"model/fc.weight", Ones(Shape{2, 2})},
		{"model/fc.bias", Zeros(Shape{2})},
		{"optimizer/state/0/exp_avg", Ones(Shape{2})},
		{"step", Scalar(9, Int64)},
	}))
	got, err := LoadNamed(p)
	require.NoError(t, err)
	var names []string
	for _, it := range got {
		names = append(names, it.Name)
	}
	require.Equal(t, []string{"model.fc.weight", "model.fc.bias", "optimizer.state.0.exp_avg", "step"}, names)
	out := torchpy.Run(t, `
import sys, torch
ck = torch.load(sys.argv[1])
print(sorted(ck), sorted(ck["model"]), list(ck["optimizer"]["state"]["0"]), int(ck["step"]))
`, p)
	require.Equal(t, "['model', 'optimizer', 'step'] ['fc.bias', 'fc.weight'] ['exp_avg'] 9", strings.TrimSpace(out))

	_, err = Encode([]Named{{"a", Ones(Shape{1})}, {"a/b", Ones(Shape{1})}})
	require.ErrorContains(t, err, `"a/b" nests under a tensor`)
}
