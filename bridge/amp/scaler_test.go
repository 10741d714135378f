package amp_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/amp"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// fakeOpt counts steps; its single parameter's gradient is set by the test.
type fakeOpt struct {
	p     *bridge.Tensor
	steps int
}

func (f *fakeOpt) Params() []*bridge.Tensor { return []*bridge.Tensor{f.p} }
func (f *fakeOpt) Step()                    { f.steps++ }

// withGrad gives p the gradient g (by backward through p·g).
func withGrad(p *bridge.Tensor, g []float32) {
	p.ZeroGrad()
	p.Mul(bridge.FromSlice(g)).Sum().Backward()
}

func newScaler(t *testing.T, o amp.Options) *amp.GradScaler {
	t.Helper()
	s, err := amp.NewGradScaler(o)
	require.NoError(t, err)
	return s
}

// The scale's trajectory follows PyTorch's _amp_update_scale_: ×backoff and tracker reset on an
// inf/NaN step, ×growth after GrowthInterval clean steps, tracker counting in between.
func TestScaleGrowthAndBackoff(t *testing.T) {
	s := newScaler(t, amp.Options{InitScale: 8, GrowthFactor: 2, BackoffFactor: 0.25, GrowthInterval: 3})
	opt := &fakeOpt{p: bridge.Zeros(bridge.Shape{2}).SetRequiresGrad(true)}
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	steps := []struct {
		grad    []float32
		ran     bool
		scale   float64
		tracker int64
	}{
		{[]float32{1, 2}, true, 8, 1},
		{[]float32{1, 2}, true, 8, 2},
		{[]float32{1, 2}, true, 16, 0}, // third clean step: growth
		{[]float32{1, inf}, false, 4, 0},
		{[]float32{1, 2}, true, 4, 1},
		{[]float32{nan, 2}, false, 1, 0},
		{[]float32{1, 2}, true, 1, 1},
		{[]float32{1, 2}, true, 1, 2},
		{[]float32{1, 2}, true, 2, 0},
	}
	for i, st := range steps {
		withGrad(opt.p, st.grad)
		before := s.CurrentScale()
		ran, err := s.Step(opt)
		require.NoError(t, err)
		require.Equal(t, st.ran, ran, "step %d", i)
		if ran {
			// The gradient was divided by the scale in force during the step.
			want := []float32{st.grad[0] / float32(before), st.grad[1] / float32(before)}
			require.Equal(t, want, opt.p.Grad().Float32s(), "step %d", i)
		}
		require.NoError(t, s.Update())
		require.Equal(t, st.scale, s.CurrentScale(), "step %d", i)
		require.Equal(t, st.tracker, s.GrowthTracker(), "step %d", i)
	}
	require.Equal(t, 7, opt.steps)
}

// A grown scale that overflows float32 is not taken (the tracker still resets).
func TestScaleGrowthStopsAtFloat32Max(t *testing.T) {
	s := newScaler(t, amp.Options{InitScale: 3e38, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1})
	opt := &fakeOpt{p: bridge.Zeros(bridge.Shape{2}).SetRequiresGrad(true)}
	withGrad(opt.p, []float32{1, 1})
	_, err := s.Step(opt)
	require.NoError(t, err)
	require.NoError(t, s.Update())
	require.Equal(t, float64(float32(3e38)), s.CurrentScale())
	require.Zero(t, s.GrowthTracker())
}

// The call order is enforced as PyTorch enforces it, with errors that say what was wrong, and
// a wrong call changes nothing.
func TestCallOrderErrors(t *testing.T) {
	s := newScaler(t, amp.DefaultOptions())
	opt := &fakeOpt{p: bridge.Zeros(bridge.Shape{2}).SetRequiresGrad(true)}
	require.ErrorContains(t, s.Update(), "no inf checks were recorded prior to Update")
	_, err := s.Step(opt)
	require.ErrorContains(t, err, "none of its parameters has a gradient")

	withGrad(opt.p, []float32{65536, 131072})
	require.NoError(t, s.Unscale(opt))
	require.ErrorContains(t, s.Unscale(opt), "already been called on this optimizer")
	require.Equal(t, []float32{1, 2}, opt.p.Grad().Float32s(), "a refused Unscale must not divide again")
	ran, err := s.Step(opt)
	require.NoError(t, err)
	require.True(t, ran)
	_, err = s.Step(opt)
	require.ErrorContains(t, err, "Step has already been called")
	require.ErrorContains(t, s.Unscale(opt), "after Step")
	require.Equal(t, 1, opt.steps)
	require.NoError(t, s.Update())

	half := &fakeOpt{p: bridge.Zeros(bridge.Shape{2}, bridge.Float16).SetRequiresGrad(true)}
	half.p.Sum().Backward()
	require.ErrorContains(t, s.Unscale(half), "float16 gradients")
}

func TestOptionsAndStateDict(t *testing.T) {
	for _, o := range []amp.Options{
		{InitScale: 0, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1},
		{InitScale: math.Inf(1), GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1},
		{InitScale: 1e39, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1},
		{InitScale: 1, GrowthFactor: 1, BackoffFactor: 0.5, GrowthInterval: 1},
		{InitScale: 1, GrowthFactor: 2, BackoffFactor: 1, GrowthInterval: 1},
		{InitScale: 1, GrowthFactor: 2, BackoffFactor: math.NaN(), GrowthInterval: 1},
		{InitScale: 1, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 0},
	} {
		_, err := amp.NewGradScaler(o)
		require.Error(t, err, "%+v", o)
	}
	s := newScaler(t, amp.Options{InitScale: 1024, GrowthFactor: 3, BackoffFactor: 0.5, GrowthInterval: 7})
	opt := &fakeOpt{p: bridge.Zeros(bridge.Shape{1}).SetRequiresGrad(true)}
	withGrad(opt.p, []float32{1})
	_, err := s.Step(opt)
	require.NoError(t, err)
	require.NoError(t, s.Update())
	sd := s.StateDict()
	require.Equal(t, map[string]any{"scale": 1024.0, "growth_factor": 3.0, "backoff_factor": 0.5,
		"growth_interval": int64(7), "_growth_tracker": int64(1)}, sd)

	// Through JSON (numbers come back float64), into a scaler with other settings.
	b, err := json.Marshal(sd)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	r := newScaler(t, amp.DefaultOptions())
	require.NoError(t, r.LoadStateDict(back))
	require.Equal(t, sd, r.StateDict())

	bad := map[string]any{"scale": -1.0, "growth_factor": 3.0, "backoff_factor": 0.5, "growth_interval": 7, "_growth_tracker": 1}
	require.ErrorContains(t, r.LoadStateDict(bad), "InitScale")
	bad["scale"] = "big"
	require.ErrorContains(t, r.LoadStateDict(bad), `"scale" is a string`)
	delete(bad, "scale")
	require.ErrorContains(t, r.LoadStateDict(bad), `no "scale"`)
	require.Equal(t, sd, r.StateDict(), "a refused state dict changes nothing")
	require.ErrorContains(t, r.SetScale(math.NaN()), "positive and finite")
	require.NoError(t, r.SetScale(8))
	require.Equal(t, 8.0, r.CurrentScale())

	off := newScaler(t, amp.Options{Disabled: true})
	loss := bridge.FromSlice([]float32{2})
	require.Same(t, loss, off.Scale(loss))
	ran, err := off.Step(opt)
	require.NoError(t, err)
	require.True(t, ran)
	require.NoError(t, off.Update())
	require.Empty(t, off.StateDict())
	require.Equal(t, 1.0, off.CurrentScale())
}

// Scale multiplies by a one-element float32 tensor, as PyTorch: a bfloat16 scalar loss comes back
// float32 with shape [1].
func TestScalePromotes(t *testing.T) {
	s := newScaler(t, amp.Options{InitScale: 4, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1})
	loss := bridge.FromSlice([]float32{1.5}).To(bridge.BFloat16).Sum()
	out := s.Scale(loss)
	require.Equal(t, bridge.Float32, out.DType())
	require.Equal(t, bridge.Shape{1}, out.Shape())
	require.Equal(t, []float32{6}, out.Float32s())
}

// A training loop under the scaler against PyTorch 1.13's own GradScaler, run on the CPU: 1.13
// has no CPU kernels for its two fused ops, so the script supplies them in Python as the CUDA
// kernels compute them, and the two assertions that tensors are on CUDA (in scale() and in _MultiDeviceReplicator) are
// skipped — everything
// else (the state machine, the per-optimizer bookkeeping, the
// scale tensor's promotion, the skipped steps) is PyTorch's code. Two of eight steps see an inf
// input; one step unscales and clips before stepping.
func TestGradScalerAgainstPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	const steps = 8
	bridge.ManualSeed(11)
	w0, b0 := bridge.Randn(bridge.Shape{3, 4}), bridge.Randn(bridge.Shape{3})
	var xs, ys [][]float32
	for range steps {
		xs = append(xs, bridge.Randn(bridge.Shape{5, 4}).Float32s()) // JSON has no inf: set below
		ys = append(ys, bridge.Randn(bridge.Shape{5, 3}).Float32s())
	}

	w, b := w0.Clone().SetRequiresGrad(true), b0.Clone().SetRequiresGrad(true)
	opt, err := optim.NewSGD(optim.Params(w, b), optim.SGDOptions{LR: 0.1, Momentum: 0.9})
	require.NoError(t, err)
	s := newScaler(t, amp.Options{InitScale: 1 << 10, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2})
	type record struct {
		Scale float64   `json:"scale"`
		Ran   bool      `json:"ran"`
		W     []float32 `json:"w"`
		B     []float32 `json:"b"`
	}
	var got []record
	for i := range steps {
		xv := append([]float32(nil), xs[i]...)
		if i == 2 || i == 5 {
			xv[0] = float32(math.Inf(1))
		}
		x := bridge.FromSlice(xv).Reshape(5, 4)
		y := bridge.FromSlice(ys[i]).Reshape(5, 3)
		loss := x.MatMul(w.Transpose(0, 1)).Add(b).Sub(y).Square().Mean()
		s.Scale(loss).Backward()
		if i == 3 {
			require.NoError(t, s.Unscale(opt))
			optim.ClipGradNorm(opt.Params(), 0.5, 2)
		}
		ran, err := s.Step(opt)
		require.NoError(t, err)
		require.NoError(t, s.Update())
		opt.ZeroGrad()
		got = append(got, record{s.CurrentScale(), ran, w.Float32s(), b.Float32s()})
	}

	in := map[string]any{"w": w0.Float32s(), "b": b0.Float32s(), "xs": xs, "ys": ys}
	var want []record
	torchpy.RunJSON(t, `
import json, sys, warnings, torch
warnings.simplefilter("ignore")
def unscale_(grads, found_inf, inv_scale):  # the CUDA kernel's arithmetic
    for g in grads:
        if not torch.isfinite(g).all():
            found_inf.fill_(1.0)
        g.mul_(inv_scale)
def update_(scale, tracker, found_inf, growth, backoff, interval):
    if found_inf.item():
        scale.mul_(backoff); tracker.zero_()
    else:
        n = int(tracker.item()) + 1
        if n == interval:
            grown = (scale * growth).float()
            if torch.isfinite(grown).all():
                scale.copy_(grown)
            tracker.zero_()
        else:
            tracker.fill_(n)
    return scale
torch._amp_foreach_non_finite_check_and_unscale_ = unscale_
torch._amp_update_scale_ = update_
torch.cuda.is_available = lambda: True  # 1.13's GradScaler disables itself on a CPU-only host
import torch.cuda.amp.grad_scaler as gs
class Replicator(gs._MultiDeviceReplicator):  # without the assertion that the scale is on CUDA
    def __init__(self, master):
        self.master = master
        self._per_device_tensors = {}
gs._MultiDeviceReplicator = Replicator
d = json.load(sys.stdin)
w = torch.tensor(d["w"]).reshape(3, 4).requires_grad_()
b = torch.tensor(d["b"]).requires_grad_()
opt = torch.optim.SGD([w, b], lr=0.1, momentum=0.9)
s = torch.cuda.amp.GradScaler(init_scale=2.0**10, growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
out = []
for i, (x, y) in enumerate(zip(d["xs"], d["ys"])):
    x = torch.tensor(x).reshape(5, 4)
    if i in (2, 5):
        x[0, 0] = float("inf")
    y = torch.tensor(y).reshape(5, 3)
    loss = ((x @ w.T + b - y) ** 2).mean()
    # s.scale(loss) minus its assert that loss is on CUDA:
    if s._scale is None:
        s._lazy_init_scale_growth_tracker(loss.device)
    (loss * s._scale.to(device=loss.device, non_blocking=True)).backward()
    if i == 3:
        s.unscale_(opt)
        torch.nn.utils.clip_grad_norm_([w, b], 0.5)
    before = [p.clone() for p in (w, b)]
    s.step(opt)
    ran = not all(torch.equal(p, q) for p, q in zip(before, (w, b)))
    s.update()
    opt.zero_grad()
    out.append({"scale": s.get_scale(), "ran": ran, "w": w.flatten().tolist(), "b": b.tolist()})
print(json.dumps(out))
`, in, &want)
	require.Len(t, want, steps)
	skipped := 0
	for i := range steps {
		require.Equal(t, want[i].Scale, got[i].Scale, "step %d: scale", i)
		require.Equal(t, want[i].Ran, got[i].Ran, "step %d: stepped", i)
		if !got[i].Ran {
			skipped++
		}
		for k := range want[i].W {
			require.InDelta(t, float64(want[i].W[k]), float64(got[i].W[k]), 1e-5, "step %d: w[%d]", i, k)
		}
		for k := range want[i].B {
			require.InDelta(t, float64(want[i].B[k]), float64(got[i].B[k]), 1e-5, "step %d: b[%d]", i, k)
		}
	}
	require.Equal(t, 2, skipped, "the two inf steps are skipped")
}
