package optim_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

// pythonTorch returns the Python interpreter that has PyTorch, or skips the test saying why.
// `make deps` installs python3-torch, so CI always runs these cross-checks.
func pythonTorch(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if v := os.Getenv("HOTCB_PYTHON"); v != "" {
		py = v
	}
	if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("cross-check with PyTorch skipped: %s cannot import torch (%v: %s); run `make deps` to install python3-torch",
			py, err, strings.TrimSpace(string(out)))
	}
	return py
}

// runPython runs script with input as JSON on stdin and decodes its stdout (JSON) into out.
// PyTorch's warnings go to stderr, which is shown only if the script fails.
func runPython(t *testing.T, script string, input, out any) {
	t.Helper()
	py := pythonTorch(t)
	in, err := json.Marshal(input)
	require.NoError(t, err)
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	require.NoError(t, err, "python failed:\n%s", stderr.String())
	require.NoError(t, json.Unmarshal(stdout, out), "python output: %s", stdout)
}

// tensorJSON is a tensor as the Python scripts exchange it.
type tensorJSON struct {
	Shape []int64   `json:"shape"`
	Data  []float64 `json:"data"`
}

// randValues returns n float32 values (as float64, exactly) in [-scale, scale).
func randValues(r *rand.Rand, n int64, scale float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(float32((r.Float64()*2 - 1) * scale))
	}
	return out
}

func toF32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

// newParam makes a float32 leaf tensor that requires grad.
func newParam(v tensorJSON) *bridge.Tensor {
	return bridge.FromSlice(toF32(v.Data), v.Shape...).SetRequiresGrad(true)
}

// setGrads gives each parameter exactly the gradient in grads (nil: none), by backward through
// sum(p * g): d/dp = 1 * g, exact.
func setGrads(t *testing.T, ps []*bridge.Tensor, grads [][]float64) {
	t.Helper()
	var loss *bridge.Tensor
	for i, p := range ps {
		p.ZeroGrad()
		if grads[i] == nil {
			continue
		}
		g := bridge.FromSlice(toF32(grads[i]), p.Shape()...)
		term := p.Mul(g).Sum()
		if loss == nil {
			loss = term
		} else {
			loss = loss.Add(term)
		}
	}
	if loss != nil {
		loss.Backward()
	}
}

// maxAbsDiff compares a tensor with expected values.
func maxAbsDiff(t *testing.T, got *bridge.Tensor, want []float64) float64 {
	t.Helper()
	g := got.Float64s()
	require.Len(t, g, len(want))
	d := 0.0
	for i := range g {
		d = max(d, abs(g[i]-want[i]))
	}
	return d
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
