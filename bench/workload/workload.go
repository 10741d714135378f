// Package workload holds the Go halves of the bridge benchmarks: a few single tensor ops, small
// MLP training steps, a SmallCNN training step, a GPT training step (examples/gpt's model
// through trainer.StepWith, AdamW and clipping), the training step of a TorchScript model
// (bridge/jit) and one rank's data-parallel SmallCNN step through dist.DDP (DDPRank, run by
// benchrun's rank processes), written the way a user of the bridge would write them. Each one has a twin in
// bench/cpp/ref.cpp (ATen from C++) and, for the training steps, in bench/python/ref.py
// (PyTorch) — the TorchScript one in ref.py only; the twins build the same inputs from the same
// seed (MLP, ops), load the bytes the Go side saved (CNN, GPT), or write the file the Go side
// loads (JIT), so all sides compute the same numbers and the difference in time is the bridge's
// overhead.
package workload

import (
	"fmt"
	"runtime"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// Seed seeds libtorch before a workload builds its inputs (ref.cpp uses the same).
const Seed = 1234

// InitScale multiplies the standard-normal initial weights.
const InitScale = 0.05

// Workload is one benchmark body on the Go side.
type Workload interface {
	// Run executes the body iters times.
	Run(iters int)
	// Check returns a value that ref.cpp's "check" command must reproduce: it proves that both
	// sides built the same inputs.
	Check() float64
}

// Trainer is a workload that trains a model: Losses returns the losses of the first steps
// training steps of a fresh model (the first is Check's value), which the references must
// reproduce to show they do the same update.
type Trainer interface {
	Losses(steps int) []float64
}

// Saver is a workload whose inputs the references load from a file rather than rebuild: Save
// writes them (see CNN.Save) and the harness sends "load MODE PATH" before "check MODE".
type Saver interface {
	Save(path string) error
}

// Unwrap returns the workload New built, without the wrapper an Option may have added.
func Unwrap(w Workload) Workload {
	if l, ok := w.(locked); ok {
		return l.Workload
	}
	return w
}

// Options vary how the Go side runs a workload; the zero value is a plain user loop.
type Options struct {
	// Free releases results (ops) or gradient and loss handles (MLP) with Free instead of
	// leaving them to the garbage collector.
	Free bool
	// FreeAll (MLPs) releases every tensor a step creates once the step is done, as C++ scopes
	// do; it implies Free.
	FreeAll bool
	// LockOSThread pins the goroutine to one OS thread while Run runs.
	LockOSThread bool
	// Scoped (MLPs, CNN) runs each step inside bridge.Scope with the update done by
	// bridge.AddGradsInPlace: the recommended way to write a step.
	Scoped bool
	// Script and Batch (jit) are the TorchScript file and the torch.save batch that
	// bench/python/ref.py wrote ("write jit DIR").
	Script, Batch string
}

// Names lists the workloads New knows: the mode names of ref.cpp, and the generated ATen
// functions (package aten) and aten.CallOp on the ops of ref.cpp's add, tril and topk modes.
var Names = []string{"add", "relu", "matmul", "sum", "mlp", "mlp-tiny", "cnn", "gpt", "jit",
	"aten-add", "aten-tril", "aten-topk", "callop-tril"}

// MLP sizes of the named workloads.
var (
	MLPBig  = MLPConfig{In: 784, Hidden: 256, Out: 10, Batch: 64, LR: 0.1}
	MLPTiny = MLPConfig{In: 32, Hidden: 64, Out: 10, Batch: 16, LR: 0.1}
)

// New builds a workload by name.
func New(name string, o Options) (Workload, error) {
	var w Workload
	switch name {
	case "mlp":
		m := NewMLP(MLPBig)
		m.Free, m.FreeAll, m.Scoped = o.Free, o.FreeAll, o.Scoped
		w = m
	case "mlp-tiny":
		m := NewMLP(MLPTiny)
		m.Free, m.FreeAll, m.Scoped = o.Free, o.FreeAll, o.Scoped
		w = m
	case "cnn":
		m, err := NewCNN(CNNSmall)
		if err != nil {
			return nil, err
		}
		m.Free, m.Scoped = o.Free, o.Scoped
		w = m
	case "gpt": // always trainer.StepWith: scoped, the update by AdamW
		m, err := NewGPT(GPTSmall)
		if err != nil {
			return nil, err
		}
		w = m
	case "jit": // always trainer.StepWith: scoped, the update by optim SGD
		m, err := NewJIT(o.Script, o.Batch, JITSmall)
		if err != nil {
			return nil, err
		}
		w = m
	default:
		op, err := newOp(name)
		if err != nil {
			return nil, err
		}
		op.free = o.Free
		w = op
	}
	if o.LockOSThread {
		w = locked{w}
	}
	return w, nil
}

func newOp(name string) (*op, error) {
	bridge.ManualSeed(Seed)
	randn := func(s ...int64) *bridge.Tensor { return bridge.Randn(bridge.Shape(s)) }
	switch name {
	case "add":
		return &op{in: []*bridge.Tensor{randn(4), randn(4)},
			f: func(v []*bridge.Tensor) *bridge.Tensor { return v[0].Add(v[1]) }}, nil
	case "relu":
		return &op{in: []*bridge.Tensor{randn(64)},
			f: func(v []*bridge.Tensor) *bridge.Tensor { return v[0].Relu() }}, nil
	case "matmul":
		return &op{in: []*bridge.Tensor{randn(8, 8), randn(8, 8)},
			f: func(v []*bridge.Tensor) *bridge.Tensor { return v[0].MatMul(v[1]) }}, nil
	case "sum":
		return &op{in: []*bridge.Tensor{randn(16)},
			f: func(v []*bridge.Tensor) *bridge.Tensor { return v[0].Sum() }}, nil
	// The same ops through package aten's generated functions (one shim entry point, hc_aten,
	// arguments encoded in flat arrays) and through aten.CallOp (the dispatcher's boxed path).
	case "aten-add":
		one := aten.IntScalar(1)
		return &op{in: []*bridge.Tensor{randn(4), randn(4)},
			f: func(v []*bridge.Tensor) *bridge.Tensor { return aten.Add(v[0], v[1], one) }}, nil
	case "aten-tril":
		return &op{in: []*bridge.Tensor{randn(4, 4)},
			f: func(v []*bridge.Tensor) *bridge.Tensor { return aten.Tril(v[0], 0) }}, nil
	case "aten-topk":
		// Both results are made; the values are the result, the indices are freed at once (as
		// C++ drops them at the end of the statement).
		return &op{in: []*bridge.Tensor{randn(16)},
			f: func(v []*bridge.Tensor) *bridge.Tensor {
				vals, idx := aten.Topk(v[0], 2, -1, true, true)
				idx.Free()
				return vals
			}}, nil
	case "callop-tril":
		return &op{in: []*bridge.Tensor{randn(4, 4)},
			f: func(v []*bridge.Tensor) *bridge.Tensor {
				r, err := aten.CallOp("aten::tril", v[0], 0)
				if err != nil {
					panic(err)
				}
				return r.Tensor(0)
			}}, nil
	}
	return nil, fmt.Errorf("workload: unknown name %q", name)
}

// sink keeps the last result reachable, as ref.cpp does, so no loop is optimised away.
var sink *bridge.Tensor

// op is one tensor operation on fixed inputs.
type op struct {
	in   []*bridge.Tensor
	f    func([]*bridge.Tensor) *bridge.Tensor
	free bool
}

func (o *op) Run(iters int) {
	if o.free {
		for range iters {
			o.f(o.in).Free()
		}
		return
	}
	for range iters {
		sink = o.f(o.in)
	}
}

func (o *op) Check() float64 { return o.f(o.in).Sum().Item() }

// locked runs a workload on one OS thread.
type locked struct{ Workload }

func (l locked) Run(iters int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l.Workload.Run(iters)
}
