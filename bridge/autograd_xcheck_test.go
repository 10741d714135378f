package bridge_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// The autograd extensions against PyTorch 1.13, in one Python run: a gradient penalty (WGAN-GP's
// ‖∂D/∂x‖² through Gradients with CreateGraph) and its gradients with respect to the weights,
// a gradient hook that scales, a checkpointed block, and a bfloat16 matmul under CPU autocast.
func TestAutogradAgainstPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	ManualSeed(3)
	w1, w2 := Randn(Shape{5, 8}), Randn(Shape{8, 1})
	x := Randn(Shape{4, 5})
	a, b := Randn(Shape{6, 7}), Randn(Shape{7, 3})
	require.NoError(t, SaveNamed(filepath.Join(dir, "in.pt"), []Named{{"w1", w1}, {"w2", w2}, {"x", x}, {"a", a}, {"b", b}}))

	// Go
	p1, p2 := w1.Clone().SetRequiresGrad(true), w2.Clone().SetRequiresGrad(true)
	xi := x.Clone().SetRequiresGrad(true)
	d := xi.MatMul(p1).Tanh().MatMul(p2).Sum()
	g, err := Gradients([]*Tensor{d}, []*Tensor{xi}, GradOptions{CreateGraph: true})
	require.NoError(t, err)
	penalty := g[0].Square().SumDims([]int64{1}, false).Sqrt().SubScalar(1).Square().Mean()
	penalty.Backward()

	q := w1.Clone().SetRequiresGrad(true)
	_, err = q.RegisterHook(func(g *Tensor) *Tensor { return g.MulScalar(0.5) })
	require.NoError(t, err)
	blk := func(in ...*Tensor) []*Tensor { return []*Tensor{in[0].MatMul(q).Relu()} }
	xc := x.Clone().SetRequiresGrad(true)
	Checkpoint(blk, xc)[0].Square().Sum().Backward()

	var ab *Tensor
	require.NoError(t, Autocast(CPU, BFloat16, func() { ab = a.MatMul(b) }))

	torchpy.Run(t, `
import sys, torch
d = torch.load(sys.argv[1])
p1 = d["w1"].clone().requires_grad_(); p2 = d["w2"].clone().requires_grad_()
x = d["x"].clone().requires_grad_()
out = (torch.tanh(x @ p1) @ p2).sum()
g, = torch.autograd.grad(out, x, create_graph=True)
pen = ((g.pow(2).sum(1).sqrt() - 1) ** 2).mean()
pen.backward()
q = d["w1"].clone().requires_grad_()
q.register_hook(lambda g: g * 0.5)
xc = d["x"].clone().requires_grad_()
(torch.relu(xc @ q) ** 2).sum().backward()
with torch.autocast("cpu", dtype=torch.bfloat16):
    ab = d["a"] @ d["b"]
torch.save({"pen": pen.detach(), "g1": p1.grad, "g2": p2.grad, "gx": x.grad, "q": q.grad, "xc": xc.grad, "ab": ab}, sys.argv[2])
`, filepath.Join(dir, "in.pt"), filepath.Join(dir, "out.pt"))
	items, err := LoadNamed(filepath.Join(dir, "out.pt"))
	require.NoError(t, err)
	py := map[string]*Tensor{}
	for _, it := range items {
		py[it.Name] = it.Tensor
	}
	close := func(name string, got *Tensor) {
		t.Helper()
		want := py[name].Float32s()
		require.Equal(t, len(want), len(got.Float32s()), name)
		for k, v := range got.Float32s() {
			require.InDelta(t, float64(want[k]), float64(v), 1e-5+1e-5*float64(abs32(want[k])), "%s[%d]", name, k)
		}
	}
	close("pen", penalty)
	close("g1", p1.Grad())
	close("g2", p2.Grad())
	close("gx", xi.Grad())
	close("q", q.Grad())
	close("xc", xc.Grad())
	require.Equal(t, BFloat16, py["ab"].DType())
	require.Equal(t, py["ab"].To(Float32).Float32s(), ab.To(Float32).Float32s(), "autocast: bit for bit")
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}
