package cli

import (
	"context"
	"io"
)

// Torch is what only a binary that links libtorch can do. Package cli/torchcli provides it, and
// cmd/hotcb-torch imports that package; cmd/hotcb does not, so that every other command starts in
// milliseconds, and hands the commands that need libtorch over to hotcb-torch (HandOff).
type Torch struct {
	// Train runs `hotcb train` in this process. A bad --device is a usage error (UsageError).
	Train func(ctx context.Context, o TrainOptions) error
	// Libtorch describes the libtorch this process loaded, for `hotcb version`.
	Libtorch func() LibtorchInfo
	// Registered lists the path#symbol names in this binary's callback registry; `hotcb init`
	// names the ones that its table of built-ins lacks. Nil: none.
	Registered func() []string
}

// torch is what UseTorch installed: nil in hotcb, which hands off to hotcb-torch.
var torch *Torch

// UseTorch makes the commands that need libtorch run in this process. A program calls it once,
// before Run or NewRootCommand (package torchcli does, in its init).
func UseTorch(t *Torch) { torch = t }

// TrainOptions are the flags of `hotcb train` (package torchcli turns them into trainer.Options).
type TrainOptions struct {
	Dir    string    // --dir
	Out    io.Writer // progress and results
	Device string    // auto, cpu, cuda or cuda:N, as given: Torch.Train resolves it
	Model  string    // cnn, mlp or the path of a TorchScript file (checked: it exists and is TorchScript)
	Data   string    // shapes or mnist:DIR
	Epochs int
	Steps  int64 // instead of Epochs when > 0
	Batch  int
	LR     float64
	Seed   uint64
	Resume bool
	TrainN int
	TestN  int
	// Progress is 1 for the one-line bar always, -1 for plain lines, 0 for the bar on a terminal.
	Progress        int
	AllowFullStdlib bool
	// NoRestore starts without the callbacks the run directory's ledger says were loaded.
	NoRestore bool
	// AllowSharedRunDir accepts a run directory other users own or can write to.
	AllowSharedRunDir bool
}

// LibtorchInfo is what `hotcb version` reports about libtorch and CUDA.
type LibtorchInfo struct {
	Libtorch      string `json:"libtorch"`
	BuiltWithCUDA bool   `json:"shim_built_with_cuda"`
	CUDAAvailable bool   `json:"cuda_available"`
	CUDADevices   int    `json:"cuda_devices"`
}

// UsageError is bad input, as the commands report it: exit status 2, the hint after the message.
func UsageError(msg, hint string) error { return usageErr(msg, hint) }
