package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSchema(t *testing.T) {
	s, err := parseSchema("aten::max_pool2d_with_indices.out(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, int[2] dilation=1, bool ceil_mode=False, *, Tensor(a!) out, Tensor(b!) indices) -> (Tensor(a!), Tensor(b!))")
	require.NoError(t, err)
	require.Equal(t, "max_pool2d_with_indices", s.Name)
	require.Equal(t, "out", s.Overload)
	require.Len(t, s.Args, 8)
	require.Equal(t, Arg{Name: "stride", Type: "int[2]", Default: "[]"}, s.Args[2])
	require.Equal(t, Arg{Name: "out", Type: "Tensor", Alias: "a!", KwOnly: true}, s.Args[6])
	require.Equal(t, []Ret{{Type: "Tensor", Alias: "a!"}, {Type: "Tensor", Alias: "b!"}}, s.Returns)

	s, err = parseSchema(`aten::div.Tensor_mode(Tensor self, Tensor other, *, str? rounding_mode) -> Tensor`)
	require.NoError(t, err)
	require.Equal(t, "str?", s.Args[2].Type)
	s, err = parseSchema(`aten::chunk(Tensor(a -> *) self, int chunks, int dim=0) -> Tensor(a)[]`)
	require.NoError(t, err)
	require.Equal(t, Arg{Name: "self", Type: "Tensor", Alias: "a"}, s.Args[0])
	require.Equal(t, []Ret{{Type: "Tensor[]", Alias: "a"}}, s.Returns)
	s, err = parseSchema(`aten::topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> (Tensor values, Tensor indices)`)
	require.NoError(t, err)
	require.Equal(t, "values", s.Returns[0].Name)
	s, err = parseSchema(`aten::pad(Tensor self, int[] pad, str mode="constant,x", float? value=None) -> Tensor`)
	require.NoError(t, err)
	require.Equal(t, `"constant,x"`, s.Args[2].Default, "a comma inside quotes does not split")
	_, err = parseSchema(`aten::broken(Tensor self`)
	require.ErrorContains(t, err, "unbalanced")
	_, err = parseSchema(`aten::broken(Tensor) -> Tensor`)
	require.ErrorContains(t, err, "has no name")
}

// The naming rule of the package doc, on the overloads of real ops.
func TestNames(t *testing.T) {
	var ops []*Op
	for _, text := range []string{
		"aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
		"aten::add_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)",
		"aten::add.out(Tensor self, Tensor other, *, Scalar alpha=1, Tensor(a!) out) -> Tensor(a!)",
		"aten::add.Scalar(Tensor self, Scalar other, Scalar alpha=1) -> Tensor",
		"aten::add_.Scalar(Tensor(a!) self, Scalar other, Scalar alpha=1) -> Tensor(a!)",
		"aten::sum(Tensor self, *, ScalarType? dtype=None) -> Tensor",
		"aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
		"aten::tril(Tensor self, int diagonal=0) -> Tensor",
		"aten::max_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, int[2] dilation=1, bool ceil_mode=False) -> Tensor",
		"aten::_softmax(Tensor self, int dim, bool half_to_float) -> Tensor",
		"aten::max.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)",
		"aten::max(Tensor self) -> Tensor",
		"aten::softmax.int(Tensor self, int dim, ScalarType? dtype=None) -> Tensor",
		"aten::softmax.int_out(Tensor self, int dim, ScalarType? dtype=None, *, Tensor(a!) out) -> Tensor(a!)",
		"aten::scatter.src(Tensor self, int dim, Tensor index, Tensor src) -> Tensor",
		"aten::scatter.reduce(Tensor self, int dim, Tensor index, Tensor src, *, str reduce) -> Tensor",
		"aten::scatter_reduce.two(Tensor self, int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True) -> Tensor",
	} {
		s, err := parseSchema(text)
		require.NoError(t, err)
		ops = append(ops, &Op{Schema: s})
	}
	nameOps(ops)
	var got []string
	for _, o := range ops {
		got = append(got, o.Go)
	}
	require.Equal(t, []string{"Add", "Add_", "AddOut", "AddScalar", "AddScalar_", "Sum", "SumDimIntList", "Tril",
		"MaxPool2d", "InternalSoftmax", "MaxDim", "Max", "Softmax", "SoftmaxIntOut", "ScatterSrc", "ScatterReduce", "ScatterReduceTwo"}, got)
}

func TestArgumentAndResultTypes(t *testing.T) {
	for _, c := range []struct {
		schema, why string
		params      []string
		rets        []string
	}{
		{"aten::zeros(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor", "",
			[]string{"size []int64", "opts Options"}, []string{"*bridge.Tensor res.T[0]"}},
		{"aten::multinomial(Tensor self, int num_samples, bool replacement=False, *, Generator? generator=None) -> Tensor", "",
			[]string{"self *bridge.Tensor", "numSamples int64", "replacement bool"}, []string{"*bridge.Tensor res.T[0]"}},
		{"aten::topk.values(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True, *, Tensor(a!) values, Tensor(b!) indices) -> (Tensor(a!) values, Tensor(b!) indices)", "",
			[]string{"self *bridge.Tensor", "k int64", "dim int64", "largest bool", "sorted bool", "values *bridge.Tensor", "indices *bridge.Tensor"},
			[]string{"*bridge.Tensor values", "*bridge.Tensor indices"}},
		{"aten::index.Tensor(Tensor self, Tensor?[] indices) -> Tensor", "",
			[]string{"self *bridge.Tensor", "indices []*bridge.Tensor"}, []string{"*bridge.Tensor res.T[0]"}},
		{"aten::is_floating_point(Tensor self) -> bool", "", []string{"self *bridge.Tensor"}, []string{"bool res.Bool()"}},
		{"aten::range(Scalar start, Scalar end, Scalar step=1, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor", "",
			[]string{"start Scalar", "end Scalar", "step Scalar", "opts Options"}, []string{"*bridge.Tensor res.T[0]"}},
		{"aten::all.dimname(Tensor self, Dimname dim, bool keepdim=False) -> Tensor", "named tensors (argument type Dimname)", nil, nil},
		{"aten::set_.source_Storage(Tensor(a!) self, Storage source) -> Tensor(a!)", "argument type Storage", nil, nil},
		{"aten::qscheme(Tensor self) -> QScheme", "result type QScheme", nil, nil},
		{"aten::gradient.scalarint(Tensor self, *, Scalar? spacing=None, int? dim=None, int edge_order=1) -> Tensor[]", "",
			[]string{"self *bridge.Tensor", "spacing *Scalar", "dim *int64", "edgeOrder int64"}, []string{"[]*bridge.Tensor res.List"}},
	} {
		s, err := parseSchema(c.schema)
		require.NoError(t, err)
		args, why := goArgs(s)
		var rets []goReturn
		if why == "" {
			rets, _, why = goReturns(s, args)
		}
		require.Equal(t, c.why, why, c.schema)
		if why != "" {
			continue
		}
		var params, rs []string
		for _, a := range args {
			params = append(params, a.name+" "+a.typ)
		}
		for _, r := range rets {
			rs = append(rs, r.typ+" "+r.expr)
		}
		require.Equal(t, c.params, params, c.schema)
		require.Equal(t, c.rets, rs, c.schema)
	}
}

// The generator reproduces the committed output from the installed headers (what
// check-generate checks in CI), and covers at least 1,000 public op names.
func TestGeneratedOutputIsCurrent(t *testing.T) {
	decl := "/usr/include/ATen/RegistrationDeclarations.h"
	if _, err := os.Stat(decl); err != nil {
		t.Skip("no libtorch headers in /usr/include")
	}
	out := t.TempDir()
	require.NoError(t, run("/usr/include", out, 8))
	for _, rel := range []string{"aten/atentable/table_gen.go", "aten/aten_gen_0.go", "cpp/aten_gen_index.cpp", "cpp/aten_gen_7.cpp", "aten/COVERAGE.md"} {
		want, err := os.ReadFile(filepath.Join("..", "..", rel))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(out, rel))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%s is out of date: make generate", rel)
	}
	cov, err := os.ReadFile(filepath.Join(out, "aten", "COVERAGE.md"))
	require.NoError(t, err)
	require.Contains(t, string(cov), "Public op names covered: **10")
	require.True(t, strings.Contains(string(cov), "of 1091**"))
}
