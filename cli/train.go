package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/bridge/torchfile"
)

func init() { register(newTrainCommand) }

// newTrainCommand is `hotcb train`. Its flags and help are here, so that hotcb, which does not
// link libtorch, shows them and completes them; the run itself is Torch.Train, in hotcb-torch
// (hotcb hands the process over to it).
func newTrainCommand(a *app) *cobra.Command {
	var o TrainOptions
	var progress, noProgress bool
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the built-in model or a TorchScript one, instrumented live through the run directory",
		Long: `Train the small CNN (or an MLP) on the synthetic shapes dataset (no download) or MNIST IDX
files, under a HotKernel over --dir: hotcb.yaml there (created with timing and feature maps on)
and commands appended by this CLI from another terminal change the run while it trains.
Ctrl-C finishes the current step, saves the checkpoint and closes the callbacks.

--model FILE.pt trains your own classifier instead: a module saved in Python with
torch.jit.save(torch.jit.script(model), "FILE.pt") (or torch.jit.trace) whose forward takes the
data's [N, C, H, W] images and returns [N, classes] logits. It is checked with one forward before
training; at the end the trained module is written as TorchScript to RUN_DIR/model.pt
(Python: torch.jit.load), beside the checkpoint last.pt.

Training needs libtorch, which hotcb does not link (so that its other commands start in
milliseconds): hotcb runs ` + TorchBinary + ` in its place with the same arguments — $` + TorchEnv + ` if
set, else ` + TorchBinary + ` next to hotcb, else on PATH ('make build' builds both into bin/).`,
		Example: `  hotcb --dir runs/demo train
  hotcb --dir runs/demo train --epochs 10 --lr 1e-3 --device cuda
  hotcb --dir runs/mnist train --data mnist:/data/mnist --model mlp
  hotcb --dir runs/mine train --model my_cnn.pt --steps 500
  hotcb --dir runs/demo train --resume --epochs 8`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkModel(o.Model); err != nil {
				return err
			}
			if progress && noProgress {
				return usageErr("--progress and --no-progress together", "pick one")
			}
			if a.torch == nil || a.torch.Train == nil {
				return a.handOff("train")
			}
			if progress {
				o.Progress = 1
			} else if noProgress {
				o.Progress = -1
			}
			o.Dir, o.Out = a.dir, a.out
			return a.torch.Train(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Device, "device", "auto", "auto (CUDA when available), cpu, cuda or cuda:N")
	f.StringVar(&o.Model, "model", "cnn", "cnn, mlp, or a TorchScript file (torch.jit.save) of a classifier")
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
	f.BoolVar(&o.AllowFullStdlib, "allow-full-stdlib", false, "trusted mode: let go_file callbacks use the whole standard library (processes, signals, network, unsafe ...)")
	f.BoolVar(&o.AllowSharedRunDir, "allow-shared-rundir", false, "accept a run directory that another user owns or can write to (whoever can write there controls the training process)")
	f.BoolVar(&o.NoRestore, "no-restore", false, "on an existing run directory, do not restore the callbacks the previous run had loaded (the YAML and queued commands still apply)")
	return cmd
}

// isModelFile reports whether a --model value names a file rather than a built-in model: one
// that is not cnn or mlp and has a directory or an extension in its name, or exists. Package
// trainer reads Options.Model the same way.
func isModelFile(model string) bool {
	if model == "cnn" || model == "mlp" {
		return false
	}
	if strings.ContainsRune(model, filepath.Separator) || filepath.Ext(model) != "" {
		return true
	}
	_, err := os.Stat(model)
	return err == nil
}

// checkModel checks --model without libtorch: a built-in name, or a file that holds a
// TorchScript module (what it holds otherwise is said as bridge/jit says it).
func checkModel(model string) error {
	const use = "use --model cnn, --model mlp, or the path of a TorchScript file"
	const save = "in Python, save the model with torch.jit.save(torch.jit.script(model), path) (or torch.jit.trace(model, example_input))"
	if !isModelFile(model) {
		if model == "cnn" || model == "mlp" {
			return nil
		}
		return usageErr(fmt.Sprintf("unknown model %q", model), use)
	}
	f, err := os.Open(model)
	if errors.Is(err, fs.ErrNotExist) {
		return usageErr(fmt.Sprintf("--model %s: no such file", model), use)
	}
	if err != nil {
		return usageErr(fmt.Sprintf("--model %s: %v", model, err), use)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return usageErr(fmt.Sprintf("--model %s: %v", model, err), use)
	}
	if st.IsDir() {
		return usageErr(fmt.Sprintf("--model %s is a directory, not a TorchScript file", model), use)
	}
	switch k, what := torchfile.Describe(f, st.Size()); k {
	case torchfile.TorchScript:
		return nil
	case torchfile.TorchSave:
		return usageErr(fmt.Sprintf("--model %s is %s, not a TorchScript module: hotcb train needs the model's code as well as its weights", model, what), save)
	default:
		return usageErr(fmt.Sprintf("--model %s is %s, not a TorchScript module", model, what), save)
	}
}
