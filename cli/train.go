package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/trainer"
)

func init() { register(newTrainCommand) }

func newTrainCommand(a *app) *cobra.Command {
	var o trainer.Options
	var device string
	var progress, noProgress, allowFullStdlib bool
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the built-in model, instrumented live through the run directory",
		Long: `Train the small CNN (or an MLP) on the synthetic shapes dataset (no download) or MNIST IDX
files, under a HotKernel over --dir: hotcb.yaml there (created with timing and feature maps on)
and commands appended by this CLI from another terminal change the run while it trains.
Ctrl-C finishes the current step, saves the checkpoint and closes the callbacks.`,
		Example: `  hotcb --dir runs/demo train
  hotcb --dir runs/demo train --epochs 10 --lr 1e-3 --device cuda
  hotcb --dir runs/mnist train --data mnist:/data/mnist --model mlp
  hotcb --dir runs/demo train --resume --epochs 8`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dev, err := resolveDevice(device)
			if err != nil {
				return usageErr(err.Error(), "use --device auto, cpu, cuda or cuda:N")
			}
			switch o.Model {
			case "cnn", "mlp":
			default:
				return usageErr(fmt.Sprintf("unknown model %q", o.Model), "use --model cnn or --model mlp")
			}
			if progress && noProgress {
				return usageErr("--progress and --no-progress together", "pick one")
			}
			if progress {
				o.Progress = 1
			} else if noProgress {
				o.Progress = -1
			}
			o.Dir, o.Device, o.Out = a.dir, dev, a.out
			o.Kernel = kernel.Options{}
			o.Kernel.Controller.AllowFullStdlib = allowFullStdlib
			_, err = trainer.Run(cmd.Context(), o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&device, "device", "auto", "auto (CUDA when available), cpu, cuda or cuda:N")
	f.StringVar(&o.Model, "model", "cnn", "cnn or mlp")
	f.StringVar(&o.Data, "data", "shapes", "shapes (synthetic, no download) or mnist:DIR (IDX files)")
	f.IntVar(&o.Epochs, "epochs", 5, "epochs to train")
	f.Int64Var(&o.Steps, "steps", 0, "train this many steps instead of --epochs")
	f.IntVar(&o.Batch, "batch", 64, "batch size")
	f.Float64Var(&o.LR, "lr", 3e-3, "Adam learning rate")
	f.Uint64Var(&o.Seed, "seed", 0, "random seed")
	f.BoolVar(&o.Resume, "resume", false, "continue from RUN_DIR/last.pt")
	f.IntVar(&o.TrainN, "train-n", 10000, "synthetic training images")
	f.IntVar(&o.TestN, "test-n", 2000, "synthetic test images")
	f.BoolVar(&progress, "progress", false, "always show the one-line progress bar")
	f.BoolVar(&noProgress, "no-progress", false, "plain progress lines even on a terminal")
	f.BoolVar(&allowFullStdlib, "allow-full-stdlib", false, "let go_file callbacks import os/exec, net, syscall, unsafe")
	return cmd
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
