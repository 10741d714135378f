// Package torchcli gives the hotcb command tree (package cli) what needs libtorch: train runs
// package trainer in this process, version reports libtorch and CUDA, and init names the
// callbacks registered in this binary. cmd/hotcb-torch imports it for that side effect, as a
// program of your own can:
//
//	import _ "github.com/hotcb/hotcb/cli/torchcli"
//
// cmd/hotcb does not: it starts in milliseconds, and hands train (and version --libtorch) over
// to hotcb-torch.
package torchcli

import (
	"context"
	"fmt"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/cli"
	"github.com/hotcb/hotcb/trainer"
)

func init() {
	cli.UseTorch(&cli.Torch{Train: train, Libtorch: libtorch, Registered: callback.Default.Names})
}

func train(ctx context.Context, o cli.TrainOptions) error {
	dev, err := resolveDevice(o.Device)
	if err != nil {
		return cli.UsageError(err.Error(), "use --device auto, cpu, cuda or cuda:N")
	}
	t := trainer.Options{Dir: o.Dir, Device: dev, Model: o.Model, Data: o.Data, Epochs: o.Epochs, Steps: o.Steps,
		Batch: o.Batch, LR: o.LR, Seed: o.Seed, Resume: o.Resume, TrainN: o.TrainN, TestN: o.TestN,
		Progress: o.Progress, Out: o.Out}
	t.Kernel.Controller.AllowFullStdlib = o.AllowFullStdlib
	t.Kernel.NoRestore = o.NoRestore
	t.Kernel.AllowSharedRunDir = o.AllowSharedRunDir
	_, err = trainer.Run(ctx, t)
	return err
}

func resolveDevice(s string) (bridge.Device, error) {
	if s == "auto" {
		if bridge.CUDAIsAvailable() {
			return bridge.CUDA(0), nil
		}
		return bridge.CPU, nil
	}
	d, err := bridge.ParseDevice(s)
	if err != nil {
		return bridge.CPU, err
	}
	if d.IsCUDA() && !bridge.CUDAIsAvailable() {
		return bridge.CPU, fmt.Errorf("device %s requested but CUDA is not available (shim built with CUDA: %v)", d, bridge.BuiltWithCUDA())
	}
	return d, nil
}

func libtorch() cli.LibtorchInfo {
	v := cli.LibtorchInfo{Libtorch: bridge.Version(), BuiltWithCUDA: bridge.BuiltWithCUDA(), CUDAAvailable: bridge.CUDAIsAvailable()}
	if v.CUDAAvailable {
		v.CUDADevices = bridge.CUDADeviceCount()
	}
	return v
}
