package aten_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/aten/atentable"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// The cross-check: every case of xcheck_cases*_test.go runs an op (or a few) through package
// aten and the same computation through PyTorch (Debian's python3-torch, the same libtorch
// build the shim links), and the two must agree on the number of results, their dtypes, shapes
// and values, and for differentiable cases on the gradients of the inputs. Python starts once:
// Go writes every case's inputs (bridge.SaveNamed) and the case list (JSON) to a temporary
// directory, testdata/xcheck.py computes them all and writes the results back (torch.save),
// and the Go side compares them case by case in subtests.

// M holds a case's named tensors; L is a case's results in order (nil: an undefined tensor,
// None in Python).
type (
	M = map[string]*bridge.Tensor
	L = []*bridge.Tensor
)

// tol is an absolute and a relative tolerance: |go - py| <= atol + rtol*|py|.
type tol struct{ atol, rtol float64 }

// exact is bit-for-bit equality (NaN equals NaN).
var exact = &tol{}

// defaultTol is the tolerance of a float dtype when a case states none. Both sides run the
// same libtorch on the same inputs, so most cases agree exactly (the test logs how many);
// the margin covers kernels whose reduction order depends on the thread count (Python's torch
// may run with another number of threads than the Go test's libtorch).
func defaultTol(dt bridge.DType) tol {
	switch dt {
	case bridge.Float64:
		return tol{1e-10, 1e-10}
	case bridge.Float16, bridge.BFloat16:
		return tol{1e-2, 1e-2}
	}
	return tol{1e-5, 1e-5}
}

// xcase is one cross-check.
type xcase struct {
	name string
	in   M        // inputs: run gets copies, the Python code sees them under these names
	grad []string // inputs whose gradients are compared: backward of sum_k (out_k * w_k).sum()
	seed uint64   // sampling: both sides manual_seed(seed) right before the op; results must be equal bit for bit
	tol  *tol     // values; nil: defaultTol of each result's dtype
	gtol *tol     // gradients; nil: tol
	run  func(v M) L
	py   string // a Python expression, or statements (several lines) that set `out`
	note string // why the case needs a workaround, if it does
}

func (c *xcase) valTol(dt bridge.DType) tol {
	if c.seed != 0 {
		return *exact
	}
	if c.tol != nil {
		return *c.tol
	}
	return defaultTol(dt)
}

func (c *xcase) gradTol(dt bridge.DType) tol {
	if c.gtol != nil {
		return *c.gtol
	}
	if c.tol != nil {
		return *c.tol
	}
	return defaultTol(dt)
}

// goResult is what the Go side of a case gave.
type goResult struct {
	err   error
	outs  L
	grads M
}

// weight is the fixed weighting of result k in a case's gradient loss: sin(0.37 i + 0.5 k + 1)
// over the result's elements, in its dtype.
func weight(o *bridge.Tensor, k int) *bridge.Tensor {
	n := o.Numel()
	w := make([]float64, n)
	for i := range w {
		w[i] = math.Sin(0.37*float64(i) + 0.5*float64(k) + 1)
	}
	return bridge.FromSlice(w).Reshape(o.Shape()...).To(o.DType())
}

// runGo runs c's Go side; it adds the weights of its gradient loss to save.
func runGo(c *xcase, save M) (r goResult, weights []int) {
	r.err = bridge.Try(func() {
		v := M{}
		for k, x := range c.in {
			v[k] = x.Clone() // in-place ops must not change what Python gets
		}
		for _, g := range c.grad {
			v[g].SetRequiresGrad(true)
		}
		if c.seed != 0 {
			bridge.ManualSeed(c.seed)
		}
		r.outs = c.run(v)
		if len(c.grad) == 0 {
			return
		}
		var loss *bridge.Tensor
		for k, o := range r.outs {
			if o == nil || !o.RequiresGrad() {
				continue
			}
			w := weight(o, k)
			save[fmt.Sprintf("%s.w.%d", c.name, k)] = w
			weights = append(weights, k)
			term := aten.Sum(aten.Mul(o, w), nil).To(bridge.Float64)
			if loss == nil {
				loss = term
			} else {
				loss = aten.Add(loss, term, aten.IntScalar(1))
			}
		}
		if loss == nil {
			panic(&bridge.Error{Op: "xcheck", Msg: "no result requires grad"})
		}
		loss.Backward()
		r.grads = M{}
		for _, g := range c.grad {
			r.grads[g] = v[g].Grad()
		}
	})
	return r, weights
}

type pyCase struct {
	Name    string   `json:"name"`
	Py      string   `json:"py"`
	Inputs  []string `json:"inputs"`
	Grad    []string `json:"grad"`
	Seed    *uint64  `json:"seed"`
	Weights []int    `json:"weights"`
}

type pyInfo struct {
	Nout  int    `json:"nout"`
	None  []int  `json:"none"`
	Error string `json:"error"`
	Trace string `json:"trace"`
}

// TestCrossCheckWithPyTorch is the cross-check (see the top of this file).
func TestCrossCheckWithPyTorch(t *testing.T) {
	py := torchpy.Interpreter(t)
	require.NoError(t, aten.CheckShim())
	start := time.Now()
	bridge.ManualSeed(20261201)
	cases := allCases()
	names := map[string]bool{}
	for _, c := range cases {
		require.False(t, names[c.name], "duplicate case %s", c.name)
		require.NotContains(t, c.name, ".", "case names become file keys")
		names[c.name] = true
	}

	dir := t.TempDir()
	save := M{}
	var list []pyCase
	results := make([]goResult, len(cases))
	for i := range cases {
		c := &cases[i]
		pc := pyCase{Name: c.name, Py: c.py, Inputs: []string{}, Grad: c.grad}
		for k, x := range c.in {
			save[c.name+"."+k] = x
			pc.Inputs = append(pc.Inputs, k)
		}
		sort.Strings(pc.Inputs)
		if c.seed != 0 {
			pc.Seed = &c.seed
		}
		results[i], pc.Weights = runGo(c, save)
		if pc.Grad == nil {
			pc.Grad = []string{}
		}
		list = append(list, pc)
	}
	goTime := time.Since(start)
	b, err := json.Marshal(list)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cases.json"), b, 0o644))
	require.NoError(t, bridge.SaveMap(filepath.Join(dir, "inputs.pt"), save))

	pyStart := time.Now()
	out, err := exec.Command(py, "testdata/xcheck.py", dir).CombinedOutput()
	require.NoError(t, err, "testdata/xcheck.py failed:\n%s", out)
	pyTime := time.Since(pyStart)
	ref, err := bridge.LoadMap(filepath.Join(dir, "results.pt"))
	require.NoError(t, err)
	var info struct {
		Torch string            `json:"torch"`
		Cases map[string]pyInfo `json:"cases"`
	}
	b, err = os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &info))

	var st stats
	for i := range cases {
		c := &cases[i]
		t.Run(c.name, func(t *testing.T) {
			compareCase(t, c, results[i], info.Cases[c.name], ref, &st)
		})
	}
	t.Logf("%d cases against torch %s: %d results and %d gradients compared; of the %d floating-point ones %d are equal bit for bit; Go %v, Python %v, all %v",
		len(cases), info.Torch, st.outs, st.grads, st.floats, st.exact, goTime.Round(time.Millisecond),
		pyTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

type stats struct{ outs, grads, floats, exact int }

func (st *stats) add(float, exact bool) {
	if float {
		st.floats++
		if exact {
			st.exact++
		}
	}
}

func compareCase(t *testing.T, c *xcase, g goResult, p pyInfo, ref M, st *stats) {
	if c.note != "" {
		t.Log("workaround:", c.note)
	}
	require.NoError(t, g.err, "Go side failed")
	require.Empty(t, p.Error, "PyTorch side failed:\n%s", p.Trace)
	require.Equal(t, p.Nout, len(g.outs), "number of results")
	for k, o := range g.outs {
		r, ok := ref[fmt.Sprintf("%s.out.%d", c.name, k)]
		if o == nil || !ok {
			require.Equal(t, o == nil, !ok, "result %d: defined in one only (Go nil %v, PyTorch None %v)", k, o == nil, !ok)
			continue
		}
		st.outs++
		st.add(compareTensor(t, fmt.Sprintf("result %d", k), o, r, c.valTol(r.DType())))
	}
	for _, name := range c.grad {
		gg := g.grads[name]
		r, ok := ref[c.name+".grad."+name]
		if gg == nil || !ok {
			require.Equal(t, gg == nil, !ok, "gradient of %s: defined in one only (Go nil %v, PyTorch None %v)", name, gg == nil, !ok)
			continue
		}
		st.grads++
		st.add(compareTensor(t, "gradient of "+name, gg, r, c.gradTol(r.DType())))
	}
}

// compareTensor checks dtype, shape and values; for floating-point tensors it says whether
// they are equal bit for bit (NaN equals NaN; 0 and -0 differ, and fail an exact comparison).
func compareTensor(t *testing.T, what string, got, want *bridge.Tensor, tl tol) (float, same bool) {
	t.Helper()
	require.Equal(t, want.DType(), got.DType(), "%s: dtype", what)
	require.Equal(t, want.Shape(), got.Shape(), "%s: shape", what)
	if !want.DType().IsFloat() {
		require.Equal(t, want.Int64s(), got.Int64s(), "%s: values", what)
		return false, true
	}
	gv, wv := got.Float64s(), want.Float64s()
	same = true
	worst, at := 0.0, -1
	for i := range wv {
		a, b := gv[i], wv[i]
		if math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b)) {
			continue
		}
		same = false
		d := math.Abs(a - b)
		if math.IsNaN(d) || math.IsInf(d, 0) || d > tl.atol+tl.rtol*math.Abs(b) || tl == *exact {
			if at < 0 || d > worst || math.IsNaN(d) {
				worst, at = d, i
			}
		}
	}
	if at >= 0 {
		t.Errorf("%s: element %d is %v in Go, %v in PyTorch (|diff| %.3g > atol %g + rtol %g*|py|)",
			what, at, gv[at], wv[at], worst, tl.atol, tl.rtol)
	}
	return true, same
}

// TestCrossCheckCoverage counts the distinct generated ops the cross-check calls: the aten.X
// functions that appear in the case tables (the functions named cases* in xcheck_cases*_test.go;
// every case runs), by category.
func TestCrossCheckCoverage(t *testing.T) {
	byGo := map[string]atentable.Op{}
	for _, o := range atentable.Ops {
		byGo[o.Go] = o
	}
	files, err := filepath.Glob("xcheck_cases*_test.go")
	require.NoError(t, err)
	decls := map[string]*ast.FuncDecl{}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && strings.HasPrefix(fd.Name.Name, "cases") {
				decls[fd.Name.Name] = fd
			}
		}
	}
	require.Len(t, decls, len(categories), "every cases* function is in categories")
	overloads, opNames := map[string]bool{}, map[string]bool{}
	var lines []string
	for _, cat := range categories {
		name := runtime.FuncForPC(reflect.ValueOf(cat).Pointer()).Name()
		fd := decls[name[strings.LastIndex(name, ".")+1:]]
		require.NotNil(t, fd, name)
		here := map[string]bool{}
		ast.Inspect(fd, func(n ast.Node) bool {
			if se, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := se.X.(*ast.Ident); ok && id.Name == "aten" {
					if o, ok := byGo[se.Sel.Name]; ok {
						here[o.Qualified()] = true
						overloads[o.Qualified()] = true
						opNames[o.Name] = true
					}
				}
			}
			return true
		})
		keys := make([]string, 0, len(here))
		for k := range here {
			keys = append(keys, strings.TrimPrefix(k, "aten::"))
		}
		sort.Strings(keys)
		lines = append(lines, fmt.Sprintf("%s (%d): %s", strings.TrimPrefix(fd.Name.Name, "cases"), len(keys), strings.Join(keys, " ")))
	}
	t.Logf("cross-checked: %d distinct overloads of %d distinct ops\n%s", len(overloads), len(opNames), strings.Join(lines, "\n"))
	require.GreaterOrEqual(t, len(opNames), 150, "the issue asks for at least 150 distinct ops")
}
