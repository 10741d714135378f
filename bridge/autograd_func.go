package bridge

/*
#cgo noescape hc_autograd_released
#cgo nocallback hc_autograd_released
#include <stdlib.h>
#include "hotcb_torch.h"
void hc_bridge_install_callbacks(void);
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Function is a differentiable operation written in Go, as torch.autograd.Function: Forward
// computes the outputs from the inputs (autograd does not record it), Backward maps the
// gradients of the outputs to the gradients of the inputs (nil: none). ApplyFunction puts it
// in the graph.
type Function interface {
	Forward(ctx *FunctionCtx, inputs ...*Tensor) []*Tensor
	Backward(ctx *FunctionCtx, gradOutputs ...*Tensor) []*Tensor
}

// FunctionCtx carries what Forward leaves for Backward.
type FunctionCtx struct {
	saved []*Tensor
	// NeedsInputGrad says which inputs require a gradient (Backward may leave the others nil).
	NeedsInputGrad []bool
	// Values holds anything else Backward needs.
	Values map[string]any
}

// SaveForBackward keeps tensors for Backward (SavedTensors returns them).
func (c *FunctionCtx) SaveForBackward(ts ...*Tensor) { c.saved = append(c.saved, ts...) }

// SavedTensors returns what SaveForBackward kept.
func (c *FunctionCtx) SavedTensors() []*Tensor { return c.saved }

type fnEntry struct {
	f       Function
	ctx     *FunctionCtx
	nInputs int
	hook    func(grad *Tensor) *Tensor // a gradient hook instead of a function
}

// registry holds the Go side of what libtorch's graph refers to by id: custom functions and
// gradient hooks, until the shim reports them released.
var registry = struct {
	sync.Mutex
	m    map[int64]*fnEntry
	next int64
	// n is len(m), readable without the lock: with no entry there is nothing the shim can
	// report released, and collectReleased returns without a call into it.
	n atomic.Int64
}{m: map[int64]*fnEntry{}}

var installOnce sync.Once

func installCallbacks() { installOnce.Do(func() { C.hc_bridge_install_callbacks() }) }

func register(e *fnEntry) int64 {
	installCallbacks()
	collectReleased()
	registry.Lock()
	defer registry.Unlock()
	registry.next++
	registry.m[registry.next] = e
	registry.n.Store(int64(len(registry.m)))
	return registry.next
}

func lookup(id int64) *fnEntry {
	registry.Lock()
	defer registry.Unlock()
	return registry.m[id]
}

// collectReleased forgets the functions and hooks libtorch has dropped. Every Backward calls
// it; when no function or hook is registered (the usual training step) it returns at once: an id
// is queued by the shim at most once, after it was registered, so with none registered the
// queue is empty (one registered meanwhile by another goroutine is collected by a later call).
func collectReleased() {
	if registry.n.Load() == 0 {
		return
	}
	var ids [64]C.int64_t
	for {
		n := int(C.hc_autograd_released(&ids[0], C.int32_t(len(ids))))
		if n == 0 {
			return
		}
		registry.Lock()
		for _, id := range ids[:n] {
			delete(registry.m, int64(id))
		}
		registry.n.Store(int64(len(registry.m)))
		registry.Unlock()
	}
}

// ApplyFunction runs f.Forward on inputs, without recording, and returns its outputs with f's
// backward as their history: a Backward through them calls f.Backward.
func ApplyFunction(f Function, inputs ...*Tensor) []*Tensor {
	ctx := &FunctionCtx{Values: map[string]any{}, NeedsInputGrad: make([]bool, len(inputs))}
	detached := make([]*Tensor, len(inputs))
	for k, in := range inputs {
		if in != nil {
			ctx.NeedsInputGrad[k] = in.RequiresGrad()
			detached[k] = in.Detach()
		}
	}
	var outs []*Tensor
	NoGrad(func() { outs = f.Forward(ctx, detached...) })
	id := register(&fnEntry{f: f, ctx: ctx, nInputs: len(inputs)})
	in := handles("function", inputs)
	out := handles("function", outs)
	attached := make([]C.hc_tensor, len(outs))
	var ip, op, ap *C.hc_tensor
	if len(in) > 0 {
		ip = &in[0]
	}
	if len(out) > 0 {
		op, ap = &out[0], &attached[0]
	}
	e := C.hc_autograd_attach(C.int64_t(id), ip, C.int32_t(len(in)), op, C.int32_t(len(out)), ap)
	runtime.KeepAlive(inputs)
	runtime.KeepAlive(outs)
	check("function", e)
	res := make([]*Tensor, len(outs))
	for k := range attached {
		res[k] = wrap(attached[k])
	}
	return res
}

// handles returns the C handles of ts (nil entries stay nil); a freed tensor panics.
func handles(name string, ts []*Tensor) []C.hc_tensor {
	hs := make([]C.hc_tensor, len(ts))
	for k, t := range ts {
		if t == nil {
			continue
		}
		if t.h == nil {
			panic(freedError(name))
		}
		hs[k] = t.h
	}
	return hs
}

// goError hands a Go failure to the shim as a malloc'd message.
func goError(err **C.char, format string, args ...any) C.int {
	*err = C.CString(fmt.Sprintf(format, args...))
	return 1
}

// protect runs f, turning a panic into an error with its stack.
func protect(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%w\n%s", e, debug.Stack())
			} else {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}
	}()
	f()
	return nil
}

//export hcGoBackward
func hcGoBackward(id C.int64_t, grads *C.hc_tensor, n C.int, out *C.hc_tensor, nout C.int, err **C.char) C.int {
	e := lookup(int64(id))
	if e == nil || e.f == nil {
		return goError(err, "no Go function %d (already released)", id)
	}
	gs := make([]*Tensor, int(n))
	for k, h := range unsafe.Slice(grads, int(n)) {
		gs[k] = wrap(h)
	}
	var res []*Tensor
	if perr := protect(func() { res = e.f.Backward(e.ctx, gs...) }); perr != nil {
		return goError(err, "%v", perr)
	}
	if len(res) != int(nout) {
		return goError(err, "Backward returned %d gradients for %d inputs", len(res), int(nout))
	}
	outs := unsafe.Slice(out, int(nout))
	for k, g := range res {
		if g == nil {
			continue
		}
		if g.h == nil {
			return goError(err, "Backward returned a freed tensor as gradient %d", k)
		}
		outs[k] = C.hc_tensor_ref(g.h)
	}
	return 0
}

//export hcGoHook
func hcGoHook(id C.int64_t, grad C.hc_tensor, out *C.hc_tensor, err **C.char) C.int {
	e := lookup(int64(id))
	if e == nil || e.hook == nil {
		return goError(err, "no Go hook %d (already removed)", id)
	}
	g := wrap(grad)
	var res *Tensor
	if perr := protect(func() { res = e.hook(g) }); perr != nil {
		return goError(err, "%v", perr)
	}
	if res != nil {
		if res.h == nil {
			return goError(err, "the hook returned a freed tensor")
		}
		*out = C.hc_tensor_ref(res.h)
	}
	return 0
}

// RegisterHook calls hook with t's gradient each time one is computed for it during a backward
// pass; a non-nil result replaces the gradient (torch's Tensor.register_hook). remove takes the
// hook off. t must require grad.
func (t *Tensor) RegisterHook(hook func(grad *Tensor) *Tensor) (remove func(), err error) {
	if hook == nil {
		return nil, errors.New("RegisterHook: nil hook")
	}
	if t.h == nil {
		return nil, freedError("register_hook")
	}
	id := register(&fnEntry{hook: hook})
	var pos C.int64_t
	if e := C.hc_register_hook(t.h, C.int64_t(id), &pos); e != nil {
		return nil, checkErr("register_hook", e)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if t.h != nil {
				C.hc_remove_hook(t.h, pos) // the shim queues the id when libtorch drops the hook
			}
			runtime.KeepAlive(t)
		})
	}, nil
}

// GradOptions tune Gradients.
type GradOptions struct {
	GradOutputs []*Tensor // d(outputs); nil entries (or none) for scalar outputs
	RetainGraph *bool     // default: CreateGraph
	CreateGraph bool      // record the backward pass (gradient penalties, higher derivatives)
	AllowUnused bool      // an input the outputs do not depend on gets nil instead of an error
}

// Gradients returns the gradients of outputs with respect to inputs without accumulating them
// in the inputs' Grad (torch.autograd.grad).
func Gradients(outputs, inputs []*Tensor, opts GradOptions) ([]*Tensor, error) {
	if len(outputs) == 0 || len(inputs) == 0 {
		return nil, errors.New("Gradients needs outputs and inputs")
	}
	if opts.GradOutputs != nil && len(opts.GradOutputs) != len(outputs) {
		return nil, fmt.Errorf("Gradients: %d grad outputs for %d outputs", len(opts.GradOutputs), len(outputs))
	}
	installCallbacks()
	outs := handles("grad", outputs)
	ins := handles("grad", inputs)
	var gp *C.hc_tensor
	if opts.GradOutputs != nil {
		g := handles("grad", opts.GradOutputs)
		gp = &g[0]
		defer runtime.KeepAlive(opts.GradOutputs)
	}
	retain := C.int32_t(-1)
	if opts.RetainGraph != nil {
		retain = C.int32_t(b2i(*opts.RetainGraph))
	}
	res := make([]C.hc_tensor, len(inputs))
	e := C.hc_autograd_grad(&outs[0], C.int32_t(len(outs)), gp, &ins[0], C.int32_t(len(ins)), retain,
		C.int32_t(b2i(opts.CreateGraph)), C.int32_t(b2i(opts.AllowUnused)), &res[0])
	runtime.KeepAlive(outputs)
	runtime.KeepAlive(inputs)
	collectReleased()
	if err := checkErr("grad", e); err != nil {
		return nil, err
	}
	grads := make([]*Tensor, len(res))
	for k, h := range res {
		grads[k] = wrap(h)
	}
	return grads, nil
}

// DetectAnomaly runs f with libtorch's anomaly mode on: a backward function that returns NaN
// fails the backward pass naming the function. The mode is global in libtorch (not per thread).
func DetectAnomaly(f func()) {
	prev := C.hc_anomaly_set(1)
	defer C.hc_anomaly_set(prev)
	f()
}

// Autocast runs f with autocast on for device's kind (CPU, or CUDA for any CUDA device): ops
// that autocast covers run in dtype (bfloat16 on CPU; float16 or bfloat16 on CUDA), as
// torch.autocast does. libtorch keeps it per thread: the goroutine stays on its thread while f
// runs.
func Autocast(device Device, dtype DType, f func()) error {
	switch {
	case device == CPU && dtype != BFloat16:
		return fmt.Errorf("autocast: the CPU autocasts to bfloat16 only, not %v", dtype)
	case device != CPU && dtype != Float16 && dtype != BFloat16:
		return fmt.Errorf("autocast: CUDA autocasts to float16 or bfloat16, not %v", dtype)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var wasOn, wasDtype C.int32_t
	if e := C.hc_autocast_set(C.int32_t(device.code()), 1, C.int32_t(dtype), &wasOn, &wasDtype); e != nil {
		return checkErr("autocast", e)
	}
	C.hc_autocast_nesting(1)
	defer func() {
		C.hc_autocast_nesting(-1)
		var a, b C.int32_t
		C.hc_autocast_set(C.int32_t(device.code()), wasOn, wasDtype, &a, &b)
	}()
	f()
	return nil
}

// RNGState returns the default CPU generator's state; SetRNGState restores it (Checkpoint uses
// them so that a recomputation draws what the forward drew).
func RNGState() *Tensor {
	var h C.hc_tensor
	check("rng_state", C.hc_rng_state(&h))
	return wrap(h)
}

// SetRNGState restores a state RNGState returned.
func SetRNGState(state *Tensor) {
	if state == nil || state.h == nil {
		panic(freedError("set_rng_state"))
	}
	check("set_rng_state", C.hc_rng_set_state(state.h))
	runtime.KeepAlive(state)
}

// Checkpoint runs f on inputs without keeping its intermediate activations, and recomputes them
// during the backward pass (torch.utils.checkpoint, the reentrant form): memory for compute.
// Gradients reach the inputs and whatever f uses that requires grad (a module's parameters).
// The default CPU generator is saved and restored around the recomputation, so dropout draws
// the same masks. f must be deterministic otherwise.
func Checkpoint(f func(inputs ...*Tensor) []*Tensor, inputs ...*Tensor) []*Tensor {
	return ApplyFunction(&checkpointFn{run: f}, inputs...)
}

type checkpointFn struct {
	run func(inputs ...*Tensor) []*Tensor
	rng *Tensor
}

func (c *checkpointFn) Forward(ctx *FunctionCtx, inputs ...*Tensor) []*Tensor {
	ctx.SaveForBackward(inputs...)
	c.rng = Keep(RNGState())
	return c.run(inputs...)
}

func (c *checkpointFn) Backward(ctx *FunctionCtx, grads ...*Tensor) []*Tensor {
	saved := ctx.SavedTensors()
	now := RNGState()
	SetRNGState(c.rng)
	defer SetRNGState(now)
	ins := make([]*Tensor, len(saved))
	for k, s := range saved {
		if s == nil {
			continue
		}
		ins[k] = s.Detach()
		if ctx.NeedsInputGrad[k] {
			ins[k].SetRequiresGrad(true)
		}
	}
	var total *Tensor
	EnableGrad(func() {
		outs := c.run(ins...)
		for k, o := range outs {
			if o == nil || grads[k] == nil || !o.RequiresGrad() {
				continue
			}
			term := o.Mul(grads[k]).Sum()
			if total == nil {
				total = term
			} else {
				total = total.Add(term)
			}
		}
	})
	res := make([]*Tensor, len(ins))
	if total == nil {
		return res
	}
	total.Backward() // reentrant: accumulates into the parameters f used, and into ins
	for k, in := range ins {
		if in != nil && ctx.NeedsInputGrad[k] {
			res[k] = in.Grad()
		}
	}
	return res
}

// LiveFunctions is how many custom functions and gradient hooks libtorch's graphs still refer
// to (the Go side keeps them until the shim reports them dropped).
func LiveFunctions() int {
	collectReleased()
	registry.Lock()
	defer registry.Unlock()
	return len(registry.m)
}
