package bridge_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// Every kind of value, nested, written by SaveValue and read by Python's torch.load: the types
// come back as Python's own (int keys, tuples, None, bools, floats that are whole numbers).
func TestSaveValueLoadsInPython(t *testing.T) {
	torchpy.Interpreter(t)
	var v Value
	v.Dict(3)
	v.Str("state")
	v.Dict(2)
	v.Int(0)
	v.Dict(2)
	v.Str("step")
	v.Tensor(Scalar(3, Float32))
	v.Str("exp_avg")
	v.Tensor(FromSlice([]float32{1, -2, 3}))
	v.Int(-7)
	v.Dict(0)
	v.Str("param_groups")
	v.List(1)
	v.Dict(7)
	for _, kv := range []func(){
		func() { v.Str("lr"); v.Float(1e-3) },
		func() { v.Str("betas"); v.Tuple(2); v.Float(0.9); v.Float(0.999) },
		func() { v.Str("whole"); v.Float(2) },
		func() { v.Str("amsgrad"); v.Bool(false) },
		func() { v.Str("foreach"); v.None() },
		func() { v.Str("name"); v.Str("héllo, \"world\"") },
		func() { v.Str("params"); v.List(2); v.Int(0); v.Int(1 << 40) },
	} {
		kv()
	}
	v.Str("one")
	v.Tuple(1)
	v.Float(math.Inf(-1))
	require.NoError(t, v.Check())
	require.Equal(t, `{"state": {0: {"step": tensor([]), "exp_avg": tensor([3])}, -7: {}}, "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "whole": 2, "amsgrad": False, "foreach": None, "name": "héllo, \"world\"", "params": [0, 1099511627776]}], "one": (-Inf,)}`, v.String())

	path := filepath.Join(t.TempDir(), "v.pt")
	require.NoError(t, SaveValue(path, &v))
	out := torchpy.Run(t, `
import math, sys, torch
v = torch.load(sys.argv[1])
st = v["state"]
assert list(st.keys()) == [0, -7] and st[-7] == {}, st
assert st[0]["step"].shape == () and st[0]["step"].item() == 3.0 and st[0]["step"].dtype == torch.float32
assert torch.equal(st[0]["exp_avg"], torch.tensor([1., -2., 3.]))
g, = v["param_groups"]
assert type(v["param_groups"]) is list and type(g["betas"]) is tuple and g["betas"] == (0.9, 0.999), g
assert type(g["whole"]) is float and g["whole"] == 2.0
assert g["amsgrad"] is False and g["foreach"] is None and g["name"] == 'héllo, "world"'
assert g["params"] == [0, 1 << 40] and g["lr"] == 1e-3
assert type(v["one"]) is tuple and v["one"][0] == -math.inf
print("ok")
`, path)
	require.Equal(t, "ok", strings.TrimSpace(out))
}

// A malformed value is refused, naming what is wrong, and nothing is written.
func TestSaveValueRefusesMalformed(t *testing.T) {
	freed := FromSlice([]float32{1})
	freed.Free()
	cases := []struct {
		name  string
		build func(v *Value)
		want  string
	}{
		{"empty", func(v *Value) {}, "the codes end inside a value"},
		{"short dict", func(v *Value) { v.Dict(2); v.Str("a"); v.Int(1) }, "the codes end inside a value"},
		{"left over", func(v *Value) { v.Int(1); v.Int(2) }, "left over after the value: 2 codes"},
		{"float missing", func(v *Value) { v.Codes = []int64{TagFloat} }, "more float tags than Floats"},
		{"unknown tag", func(v *Value) { v.Codes = []int64{42} }, "unknown tag 42"},
		{"bad bool", func(v *Value) { v.Codes = []int64{TagBool, 2} }, "bool code 2"},
		{"negative length", func(v *Value) { v.Codes = []int64{TagList, -1} }, "bad length -1"},
		{"float key", func(v *Value) { v.Dict(1); v.Float(1); v.Int(1) }, "neither an int nor a str"},
		{"mixed keys", func(v *Value) { v.Dict(2); v.Int(1); v.None(); v.Str("a"); v.None() }, "keys mix int and str"},
		{"repeated key", func(v *Value) { v.Dict(2); v.Str("a"); v.None(); v.Str("a"); v.None() }, "key a repeats"},
		{"nil tensor", func(v *Value) { v.List(1); v.Tensor(nil) }, "tensor 0 is nil or freed"},
		{"freed tensor", func(v *Value) { v.Tensor(freed) }, "tensor 0 is nil or freed"},
		{"NUL", func(v *Value) { v.Str("a\x00b") }, "contains a NUL byte"},
		{"deep", func(v *Value) {
			for range 300 {
				v.List(1)
			}
			v.None()
		}, "nests deeper than 256"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		var v Value
		c.build(&v)
		path := filepath.Join(dir, "x.pt")
		err := SaveValue(path, &v)
		require.ErrorContains(t, err, c.want, c.name)
		require.NoFileExists(t, path, c.name)
	}
	_, err := EncodeValue(nil)
	require.ErrorContains(t, err, "nil value")
}

// Append splices a value built elsewhere into another; Decode reads the result back, flattened.
func TestSaveValueAppend(t *testing.T) {
	var inner, outer Value
	inner.List(2)
	inner.Int(1)
	inner.Tensor(FromSlice([]float32{2}))
	outer.Dict(1)
	outer.Str("x")
	outer.Append(&inner)
	require.Equal(t, `{"x": [1, tensor([1])]}`, outer.String())
	b, err := EncodeValue(&outer)
	require.NoError(t, err)
	items, err := func() ([]Named, error) { it, _, err := Decode(b); return it, err }()
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.Equal(t, "x.0", items[0].Name)
	require.EqualValues(t, 1, items[0].Tensor.ItemInt())
	require.Equal(t, "x.1", items[1].Name)
}
