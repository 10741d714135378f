package main

import (
	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bench/workload"
)

// bench is one row: a Go workload, the reference mode it is compared with, and how to report it.
type bench struct {
	harness.Spec
	Workload string
	Options  workload.Options
	Mode     string  // ref.cpp / ref.py mode
	Scale    float64 // multiplies the round time (big steps need fewer, longer rounds)
	Python   bool    // also measure bench/python/ref.py
	NoCpp    bool    // no twin in bench/cpp/ref.cpp: Go against Python only
	// PyWrites: bench/python/ref.py writes the workload's files ("write MODE DIR", the
	// TorchScript file of the jit row), which the Go side then loads. Without Python such a row,
	// like a NoCpp one, is skipped.
	PyWrites bool
	// Job: a data-parallel row, measured on jobs of rank processes (bench/cmd/benchrun -ddp-rank
	// and bench/python/ref.py ddp-rank, started as torchrun starts ranks) rather than in this
	// process; Mode is "ddp" (every rank, through DDP) or "local" (rank 0 alone, no DDP).
	Job bool
	// ScalingBase names the one-process row this data-parallel row's throughput is compared with
	// (the report's scaling).
	ScalingBase string
}

// lossSteps is how many training steps of a fresh model every side runs, before anything is
// timed, to show that they compute the same losses.
const lossSteps = 3

// Tolerances of the checks, relative: all sides call the same libtorch, so they agree to the
// last bits in practice; a wrong input or update is off by far more.
const (
	checkTol = 1e-6 // the check value (first loss, op result)
	lossTol  = 1e-5 // losses after a few steps
)

var benches = []bench{
	{Spec: harness.Spec{Name: "add [4]+[4]", Unit: "ns/op"}, Workload: "add", Mode: "add", Scale: 1},
	{Spec: harness.Spec{Name: "add [4]+[4], Free", Unit: "ns/op",
		Note: "Go frees each result at once instead of leaving it to the GC"},
		Workload: "add", Options: workload.Options{Free: true}, Mode: "add", Scale: 1},
	{Spec: harness.Spec{Name: "relu [64]", Unit: "ns/op"}, Workload: "relu", Mode: "relu", Scale: 1},
	{Spec: harness.Spec{Name: "matmul [8x8]·[8x8]", Unit: "ns/op"}, Workload: "matmul", Mode: "matmul", Scale: 1},
	{Spec: harness.Spec{Name: "sum [16]", Unit: "ns/op"}, Workload: "sum", Mode: "sum", Scale: 1},
	// The generated ATen functions (package aten) on the same kind of ops, against the same C++,
	// and beside the hand-written bridge's add rows above.
	{Spec: harness.Spec{Name: "aten.Add [4]+[4]", Unit: "ns/op", Note: atenNote},
		Workload: "aten-add", Mode: "add", Scale: 1},
	{Spec: harness.Spec{Name: "aten.Add [4]+[4], Free", Unit: "ns/op", Note: atenNote + "; each result freed at once"},
		Workload: "aten-add", Options: workload.Options{Free: true}, Mode: "add", Scale: 1},
	{Spec: harness.Spec{Name: "aten.Tril [4x4], Free", Unit: "ns/op", Note: atenNote + "; each result freed at once"},
		Workload: "aten-tril", Options: workload.Options{Free: true}, Mode: "tril", Scale: 1},
	{Spec: harness.Spec{Name: "aten.Topk [16] k=2, Free", Unit: "ns/op",
		Note: atenNote + "; both results freed at once, as C++ drops the indices"},
		Workload: "aten-topk", Options: workload.Options{Free: true}, Mode: "topk", Scale: 1},
	{Spec: harness.Spec{Name: "aten.CallOp tril [4x4], Free", Unit: "ns/op",
		Note: "aten.CallOp(\"aten::tril\", x, 0): the op by name through the dispatcher's boxed path; each result freed at once"},
		Workload: "callop-tril", Options: workload.Options{Free: true}, Mode: "tril", Scale: 1},
	{Spec: harness.Spec{Name: "MLP 784-256-10 b64 step, Scope", Unit: "ms/step", MaxRatio: 1.03,
		Note: scopeNote}, Workload: "mlp", Options: workload.Options{Scoped: true}, Mode: "mlp", Scale: 3, Python: true},
	{Spec: harness.Spec{Name: "MLP 784-256-10 b64 step, plain", Unit: "ms/step", Note: plainNote},
		Workload: "mlp", Mode: "mlp", Scale: 3, Python: true},
	{Spec: harness.Spec{Name: "MLP 784-256-10 b64 step, LockOSThread", Unit: "ms/step",
		Note: "the plain loop on one OS thread (runtime.LockOSThread)"},
		Workload: "mlp", Options: workload.Options{LockOSThread: true}, Mode: "mlp", Scale: 3, Python: true},
	{Spec: harness.Spec{Name: "MLP 32-64-10 b16 step, Scope", Unit: "us/step", MaxRatio: 1.10, MinPythonRatio: 1.3,
		Note: scopeNote}, Workload: "mlp-tiny", Options: workload.Options{Scoped: true}, Mode: "mlp-tiny", Scale: 2, Python: true},
	{Spec: harness.Spec{Name: "MLP 32-64-10 b16 step, plain", Unit: "us/step", Note: plainNote},
		Workload: "mlp-tiny", Mode: "mlp-tiny", Scale: 2, Python: true},
	{Spec: harness.Spec{Name: "MLP 32-64-10 b16 step, FreeAll+LockOSThread", Unit: "us/step",
		Note: "the plain loop freeing every tensor of the step by hand once it is done, on one OS thread"},
		Workload: "mlp-tiny", Options: workload.Options{FreeAll: true, LockOSThread: true}, Mode: "mlp-tiny", Scale: 2, Python: true},
	{Spec: harness.Spec{Name: "SmallCNN 1x28x28 b64 step, Scope", Unit: "ms/step", MaxRatio: 1.03,
		Note: "models.NewSmallCNN(1, 6) on 64 data.Shapes images; C++: ATen functional ops; Python: torch.nn. " + scopeNote},
		Workload: "cnn", Options: workload.Options{Scoped: true}, Mode: "cnn", Scale: 3, Python: true},
	{Spec: harness.Spec{Name: "SmallCNN 1x28x28 b64 step, plain", Unit: "ms/step", Note: plainNote},
		Workload: "cnn", Mode: "cnn", Scale: 3, Python: true},
	{Spec: harness.Spec{Name: "SmallCNN 1x28x28 b64 step, LockOSThread", Unit: "ms/step",
		Note: "the plain loop on one OS thread (runtime.LockOSThread)"},
		Workload: "cnn", Options: workload.Options{LockOSThread: true}, Mode: "cnn", Scale: 3, Python: true},
	{Spec: harness.Spec{Name: "GPT 2x4x64 T48 b32 step, StepWith+AdamW+clip", Unit: "ms/step", MaxRatio: 1.05, MinPythonRatio: 1.0,
		Note: gptNote}, Workload: "gpt", Mode: "gpt", Scale: 3, Python: true},
	{Spec: harness.Spec{Name: "TorchScript ResNet-8 3x32x32 b32 step, jit.Load+SGD", Unit: "ms/step", MinPythonRatio: 1.0,
		Note: jitNote}, Workload: "jit", Mode: "jit", Scale: 3, Python: true, NoCpp: true, PyWrites: true},
	// Data-parallel: last, so that their jobs are closed before the other sections run.
	{Spec: harness.Spec{Name: ddpBaseName, Unit: "ms/step", Note: ddpBaseNote},
		Mode: "local", Scale: 3, Python: true, NoCpp: true, Job: true},
	{Spec: harness.Spec{Name: "SmallCNN DDP 2 ranks×1 thread b64/rank step, SGD momentum", Unit: "ms/step", MinPythonRatio: 1.0,
		Note: ddpNote}, Mode: "ddp", Scale: 3, Python: true, NoCpp: true, Job: true, ScalingBase: ddpBaseName},
}

// ddpBaseName is the data-parallel row's one-process baseline.
const ddpBaseName = "SmallCNN 1 process×1 thread b64 step, SGD momentum (DDP baseline)"

// ddpNote and ddpBaseNote describe the data-parallel rows.
const (
	ddpNote = "data-parallel training on 2 ranks, each a process with 1 intra-op thread, started as torchrun starts " +
		"them (Go: benchrun -ddp-rank; Python: ref.py ddp-rank): models.NewSmallCNN(1, 6) from the same saved weights, " +
		"each rank on its 64 of 128 data.Shapes images (DistributedSampler, shuffled, seed 1234, epoch 0); Go runs " +
		"trainer.StepWith (bridge.Scope, no callbacks) with the forward through dist.DDP (Gloo, buckets 25 MiB, first " +
		"1 MiB, rank 0's buffers broadcast before each forward) and optim SGD lr 0.05 momentum 0.9; Python " +
		"torch.nn.parallel.DistributedDataParallel (Gloo, its defaults) and torch.optim.SGD (foreach=False, " +
		"zero_grad(set_to_none=True)); time per step on rank 0; no C++ twin"
	ddpBaseNote = "the DDP row's step without DDP on one process (rank 0 of the same job; the other rank waits): " +
		"the same model, weights, 64 images and SGD; the baseline of the DDP row's scaling"
)

// jitNote describes the TorchScript row.
const jitNote = "a scripted model's training step, Go and Python on the same file: bench/python/ref.py's ResNet-8 " +
	"(conv3x3-BN-ReLU stem, one basic block per stage of 16, 32, 64 channels with strides 1, 2, 2 and 1x1 conv+BN " +
	"shortcuts, global average pool, linear to 10 classes; 78,042 parameters, 9 batch norms in training mode), " +
	"torch.jit.script'ed and torch.jit.save'd by Python at the start of the run, on one fixed batch of 32 random " +
	"3x32x32 images: Go loads the file with bridge/jit (jit.Load) and runs trainer.StepWith (bridge.Scope, no " +
	"callbacks: forward, mean cross-entropy, backward, optim SGD lr 0.05, momentum 0.9, weight decay 5e-4); " +
	"Python loads it with torch.jit.load and runs the same step with torch.optim.SGD (foreach=False, " +
	"zero_grad(set_to_none=True)); no C++ twin"

// gptNote describes the GPT row.
const gptNote = "examples/gpt's character-level GPT (2 layers × 4 heads, width 64, context 48, vocabulary 34, " +
	"107,554 parameters) on one fixed batch of 32 windows of its text: Go runs trainer.StepWith (bridge.Scope, " +
	"own loss: cross-entropy over every position, optim.ClipGradNorm to 1 between backward and step, " +
	"optim AdamW lr 3e-3, weight decay 0.1 on the matrices); C++: ATen functional ops with clipping and AdamW " +
	"written out as PyTorch 1.13 runs them; Python: torch.nn modules, clip_grad_norm_, torch.optim.AdamW"

// atenNote describes the generated-function rows.
const atenNote = "the generated function of package aten: one hc_aten call with the arguments encoded in flat arrays"

// Notes of the step variants. The goals apply to the step written as the README recommends.
const (
	scopeNote = "the step as the README recommends: inside bridge.Scope (every tensor it made is freed " +
		"on return; the goroutine is pinned to its thread meanwhile), update by bridge.AddGradsInPlace"
	plainNote = "the step with no care for memory: results left to the garbage collector, update by " +
		"AddGradInPlace per parameter inside NoGrad, goroutine free to move between threads"
)
