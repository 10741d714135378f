package bridge

// #include "hotcb_torch.h"
import "C"

import "runtime"

// SetRequiresGrad turns autograd recording on or off for a leaf tensor and returns t.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	call0("set_requires_grad", C.HC_SET_REQUIRES_GRAD, []*Tensor{t}, []int64{b2i(on)}, nil)
	return t
}

// Grad returns the gradient accumulated in t by Backward, or nil if there is none.
func (t *Tensor) Grad() *Tensor { return t.unary("grad", C.HC_GRAD) }

// BackwardOptions tune Backward.
type BackwardOptions struct {
	Gradient    *Tensor // d(output); required when t is not a scalar
	RetainGraph bool    // keep the graph for another backward pass
	CreateGraph bool    // record the backward pass itself (higher-order gradients)
}

// Backward computes the gradients of the scalar t with respect to the leaves that require grad
// and accumulates them in their Grad.
func (t *Tensor) Backward(opts ...BackwardOptions) {
	var o BackwardOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if t == nil || t.h == nil {
		panic(freedError("backward"))
	}
	var g C.hc_tensor
	if o.Gradient != nil {
		if o.Gradient.h == nil {
			panic(freedError("backward"))
		}
		g = o.Gradient.h
	}
	// Not hc_call: a backward pass may call Go (custom functions, gradient hooks), and hc_call
	// is declared nocallback. libtorch's default: retain the graph when creating one.
	installCallbacks()
	e := C.hc_autograd_backward(t.h, g, C.int32_t(b2i(o.RetainGraph || o.CreateGraph)), C.int32_t(b2i(o.CreateGraph)))
	runtime.KeepAlive(t)
	runtime.KeepAlive(o.Gradient)
	collectReleased()
	check("backward", e)
}

// ZeroGrad drops t's gradient (PyTorch's set_to_none=True): the next Backward allocates it anew.
func (t *Tensor) ZeroGrad() {
	call0("zero_grad", C.HC_ZERO_GRAD, []*Tensor{t}, []int64{1}, nil)
}

// ZeroGradInPlace fills t's gradient with zeros, keeping its memory.
func (t *Tensor) ZeroGradInPlace() {
	call0("zero_grad", C.HC_ZERO_GRAD, []*Tensor{t}, []int64{0}, nil)
}

// NoGrad runs f with autograd recording off, as torch.no_grad does. libtorch keeps that mode per
// OS thread, so the goroutine is locked to its thread while f runs; goroutines that f starts
// are not covered.
func NoGrad(f func()) { withGradMode(false, f) }

// EnableGrad runs f with autograd recording on (inside a NoGrad, for example).
func EnableGrad(f func()) { withGradMode(true, f) }

// GradEnabled reports whether autograd records on the current goroutine's thread.
func GradEnabled() bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return C.hc_is_grad_enabled() != 0
}

func withGradMode(on bool, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.hc_is_grad_enabled()
	C.hc_set_grad_enabled(C.int(b2i(on)))
	defer C.hc_set_grad_enabled(prev)
	f()
}

// In-place updates, for optimizers (inside NoGrad when t requires grad).

// AddInPlace does t += alpha*o.
func (t *Tensor) AddInPlace(o *Tensor, alpha float64) {
	call0("add_", C.HC_ADD_, []*Tensor{t, o}, nil, []float64{alpha})
}

// AddScalarInPlace does t += v.
func (t *Tensor) AddScalarInPlace(v float64) {
	call0("add_", C.HC_ADD_S_, []*Tensor{t}, nil, []float64{v})
}

// MulScalarInPlace does t *= v.
func (t *Tensor) MulScalarInPlace(v float64) {
	call0("mul_", C.HC_MUL_S_, []*Tensor{t}, nil, []float64{v})
}

// DivScalarInPlace does t /= v.
func (t *Tensor) DivScalarInPlace(v float64) {
	call0("div_", C.HC_DIV_S_, []*Tensor{t}, nil, []float64{v})
}

// MulInPlace does t *= o.
func (t *Tensor) MulInPlace(o *Tensor) { call0("mul_", C.HC_MUL_, []*Tensor{t, o}, nil, nil) }

// DivInPlace does t /= o.
func (t *Tensor) DivInPlace(o *Tensor) { call0("div_", C.HC_DIV_, []*Tensor{t, o}, nil, nil) }

// AddcmulInPlace does t += v * a * b.
func (t *Tensor) AddcmulInPlace(a, b *Tensor, v float64) {
	call0("addcmul_", C.HC_ADDCMUL_, []*Tensor{t, a, b}, nil, []float64{v})
}

// AddcdivInPlace does t += v * a / b.
func (t *Tensor) AddcdivInPlace(a, b *Tensor, v float64) {
	call0("addcdiv_", C.HC_ADDCDIV_, []*Tensor{t, a, b}, nil, []float64{v})
}

// ZeroInPlace fills t with zeros.
func (t *Tensor) ZeroInPlace() { call0("zero_", C.HC_ZERO_, []*Tensor{t}, nil, nil) }

// FillInPlace fills t with v.
func (t *Tensor) FillInPlace(v float64) { call0("fill_", C.HC_FILL_, []*Tensor{t}, nil, []float64{v}) }

// CopyFrom copies src (broadcast, converted) into t.
func (t *Tensor) CopyFrom(src *Tensor) { call0("copy_", C.HC_COPY_, []*Tensor{t, src}, nil, nil) }

// SqrtInPlace does t = sqrt(t).
func (t *Tensor) SqrtInPlace() { call0("sqrt_", C.HC_SQRT_, []*Tensor{t}, nil, nil) }

// ClampInPlace limits t to [lo, hi].
func (t *Tensor) ClampInPlace(lo, hi float64) {
	call0("clamp_", C.HC_CLAMP_, []*Tensor{t}, []int64{3}, []float64{lo, hi})
}

// AddGradInPlace does t += alpha * t.Grad() and then drops the gradient (set_to_none) — the
// plain SGD update — without creating a Go handle for the gradient, so the gradient's memory is
// reused by the next backward at once instead of waiting for the garbage collector.
func (t *Tensor) AddGradInPlace(alpha float64) {
	call0("add_grad_", C.HC_ADD_GRAD_, []*Tensor{t}, []int64{1}, []float64{alpha})
}

// AddGradsInPlace does p += alpha * p.Grad() and then drops the gradient for every p in params
// that has one, with autograd off, in one call into libtorch: the whole plain SGD update
// (alpha = -lr). Like torch.optim, it skips tensors without a gradient (frozen or unused
// parameters). No NoGrad is needed around it.
func AddGradsInPlace(params []*Tensor, alpha float64) {
	if len(params) == 0 {
		return
	}
	call0("add_grads_", C.HC_ADD_GRADS_, params, []int64{1}, []float64{alpha})
}

// SetData makes t hold src's data (src may live on another device or have another dtype) while t
// keeps its identity, requires_grad and any references to it — what moving a model's parameters
// to a device needs, since optimizers hold the parameter tensors.
func (t *Tensor) SetData(src *Tensor) {
	call0("set_data", C.HC_SET_DATA_, []*Tensor{t, src}, nil, nil)
}

// LerpInPlace does t += w * (end - t).
func (t *Tensor) LerpInPlace(end *Tensor, w float64) {
	call0("lerp_", C.HC_LERP_S_, []*Tensor{t, end}, nil, []float64{w})
}
