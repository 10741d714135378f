package cli

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten/atentable"
)

// opLines parses `hotcb ops` output: qualified name -> Go name, and the names in order.
func opLines(t *testing.T, out string) (map[string]string, []string) {
	t.Helper()
	m := map[string]string{}
	var order []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 2, "line %q", line)
		require.True(t, strings.HasPrefix(f[0], "aten::"), line)
		require.True(t, strings.HasPrefix(f[1], "aten."), line)
		_, dup := m[f[0]]
		require.False(t, dup, "listed twice: %s", f[0])
		m[f[0]] = f[1]
		order = append(order, f[0])
	}
	return m, order
}

// TestOpsListsEveryGeneratedOp: one line per overload of the table, its schema name then its Go
// function, and the known ones where they belong.
func TestOpsListsEveryGeneratedOp(t *testing.T) {
	out := mustRun(t, "ops")
	m, order := opLines(t, out)
	require.Len(t, order, len(atentable.Ops))
	for _, o := range atentable.Ops {
		require.Equal(t, "aten."+o.Go, m[o.Qualified()])
	}
	// By name, then overload: the default one first.
	require.True(t, sort.SliceIsSorted(order, func(i, j int) bool {
		ni, oi, _ := strings.Cut(order[i], ".")
		nj, oj, _ := strings.Cut(order[j], ".")
		return ni < nj || ni == nj && oi < oj
	}))
	require.Equal(t, []string{"aten::add.Scalar", "aten::add.Scalar_out", "aten::add.Tensor", "aten::add.out"},
		order[slices.Index(order, "aten::add.Scalar"):][:4])
	require.Equal(t, []string{"aten::tril", "aten::tril.out", "aten::tril_"}, order[slices.Index(order, "aten::tril"):][:3])
	for q, g := range map[string]string{"aten::add.Tensor": "aten.Add", "aten::add.Scalar": "aten.AddScalar",
		"aten::add.out": "aten.AddOut", "aten::add_.Tensor": "aten.Add_", "aten::tril": "aten.Tril", "aten::topk": "aten.Topk"} {
		require.Equal(t, g, m[q], q)
	}
	require.Contains(t, out, "aten::add.Tensor  ")
}

func TestOpsFilter(t *testing.T) {
	m, _ := opLines(t, mustRun(t, "ops", "tril"))
	var want []string
	for _, o := range atentable.Ops {
		if strings.Contains(o.Qualified(), "tril") {
			want = append(want, o.Qualified())
		}
	}
	require.ElementsMatch(t, want, keys(m))
	require.Contains(t, m, "aten::tril")
	require.Contains(t, m, "aten::tril_")
	require.Contains(t, m, "aten::tril.out")
	require.Contains(t, m, "aten::tril_indices")

	// Case does not matter; Go names match too.
	m2, _ := opLines(t, mustRun(t, "ops", "TRIL"))
	require.Equal(t, m, m2)
	m, _ = opLines(t, mustRun(t, "ops", "aten.AddScalar"))
	require.Equal(t, "aten.AddScalar", m["aten::add.Scalar"])

	// Globs: on the qualified name, the name without aten::, the bare op name or the Go name.
	m, _ = opLines(t, mustRun(t, "ops", "aten::add.*"))
	var adds []string
	for _, o := range atentable.Ops {
		if o.Name == "add" && o.Overload != "" {
			adds = append(adds, o.Qualified())
		}
	}
	require.ElementsMatch(t, adds, keys(m))
	require.Contains(t, m, "aten::add.Tensor")
	require.Contains(t, m, "aten::add.out")
	m, _ = opLines(t, mustRun(t, "ops", "tril*"))
	var prefixed []string
	for _, o := range atentable.Ops {
		if strings.HasPrefix(o.Name, "tril") {
			prefixed = append(prefixed, o.Qualified())
		}
	}
	require.ElementsMatch(t, prefixed, keys(m))
	require.NotContains(t, m, "aten::upsample_trilinear3d")
	m, _ = opLines(t, mustRun(t, "ops", "*_backward"))
	require.NotEmpty(t, m)
	for q := range m {
		require.Regexp(t, `_backward(\..*)?$`, q)
	}
	m, _ = opLines(t, mustRun(t, "ops", "Topk"))
	require.Contains(t, m, "aten::topk")

	// --schema adds the schema.
	out := mustRun(t, "ops", "--schema", "aten::topk")
	require.Contains(t, out, "aten::topk")
	require.Contains(t, out, "topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> (Tensor values, Tensor indices)")
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestOpsNothingMatches(t *testing.T) {
	r := runCLI(t, "ops", "trill")
	require.Error(t, r.err)
	require.Contains(t, r.err.Error(), `no generated ATen op matches "trill"`)
	require.Contains(t, r.err.Error(), "did you mean tril")
	require.Contains(t, r.err.Error(), "aten.CallOp")
	require.Empty(t, r.out)
	r = runCLI(t, "ops", "zz*qq")
	require.ErrorContains(t, r.err, `no generated ATen op matches "zz*qq"`)
	require.NotContains(t, r.err.Error(), "did you mean")
	// A private op that was not generated: the hint says how to call it anyway.
	r = runCLI(t, "ops", "aten::_cast_Float")
	require.ErrorContains(t, r.err, `aten.CallOp("aten::NAME", ...)`)
}

// TestOpsCount: the totals agree with the table and with aten/COVERAGE.md.
func TestOpsCount(t *testing.T) {
	out := mustRun(t, "ops", "--count")
	b, err := os.ReadFile("../aten/COVERAGE.md")
	require.NoError(t, err)
	row := regexp.MustCompile(`\| generated \| (\d+) \| (\d+) \((\d+) public`).FindStringSubmatch(string(b))
	require.NotNil(t, row, "COVERAGE.md's generated row")
	overloads, _ := strconv.Atoi(row[1])
	names, _ := strconv.Atoi(row[2])
	public, _ := strconv.Atoi(row[3])
	require.Equal(t, len(atentable.Ops), overloads)
	require.Equal(t, "overloads  "+row[1]+"\nop names   "+row[2]+" ("+row[3]+" public, "+strconv.Itoa(names-public)+" private)\n", out)

	var c atentable.Counts
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "ops", "--count", "--json")), &c))
	require.Equal(t, atentable.Counts{Overloads: overloads, Names: names, Public: public}, c)

	// With a filter, the totals of what matched.
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "ops", "--count", "--json", "tril")), &c))
	m, _ := opLines(t, mustRun(t, "ops", "tril"))
	distinct := map[string]bool{}
	for q := range m {
		name, _, _ := strings.Cut(strings.TrimPrefix(q, "aten::"), ".")
		distinct[name] = true
	}
	require.Equal(t, atentable.Counts{Overloads: len(m), Names: len(distinct), Public: len(distinct)}, c)
}

func TestOpsJSON(t *testing.T) {
	var rows []struct {
		Name, Overload, Go, Schema string
	}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "ops", "--json")), &rows))
	require.Len(t, rows, len(atentable.Ops))
	byGo := map[string]atentable.Op{}
	for _, o := range atentable.Ops {
		byGo["aten."+o.Go] = o
	}
	_, order := opLines(t, mustRun(t, "ops"))
	for k, r := range rows {
		o, ok := byGo[r.Go]
		require.True(t, ok, r.Go)
		require.Equal(t, o.Qualified(), order[k], "the same order as the text")
		require.Equal(t, o.Name, r.Name)
		require.Equal(t, o.Overload, r.Overload)
		require.Equal(t, o.Schema, r.Schema)
	}
	out := mustRun(t, "ops", "--json", "aten::add.Tensor")
	require.JSONEq(t, `[{"name":"add","overload":"Tensor","go":"aten.Add","schema":"add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"}]`, out)
}
