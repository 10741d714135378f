package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/launch"

	"github.com/hotcb/hotcb/bridge/torchfile"
)

func init() { register(newTrainCommand) }

// newTrainCommand is `hotcb train`. Its flags and help are here, so that hotcb, which does not
// link libtorch, shows them and completes them; the run itself is Torch.Train, in hotcb-torch
// (hotcb hands the process over to it).
func newTrainCommand(a *app) *cobra.Command {
	var o TrainOptions
	var progress, noProgress bool
	var lo launch.Options
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the built-in model or a TorchScript one, instrumented live through the run directory",
		Long: `Train the small CNN (or an MLP) on the synthetic shapes dataset (no download) or MNIST IDX
files, under a HotKernel over --dir: hotcb.yaml there and commands appended by this CLI from
another terminal change the run while it trains. A run directory without hotcb.yaml gets one
with timing and feature maps on; the one 'hotcb init' writes loads every built-in turned off
('hotcb enable ID' turns one on). The banner lists what is on, and callbacks' lines go to
the terminal and to hotcb.log.
Ctrl-C finishes the current step, saves the checkpoint and closes the callbacks.

--model FILE.pt trains your own classifier instead: a module saved in Python with
torch.jit.save(torch.jit.script(model), "FILE.pt") (or torch.jit.trace) whose forward takes the
data's [N, C, H, W] images and returns [N, classes] logits. It is checked with one forward before
training; at the end the trained module is written as TorchScript to RUN_DIR/model.pt
(Python: torch.jit.load), beside the checkpoint last.pt.

--nproc N trains data-parallel on this machine: N ranks (processes), each with torchrun's
environment, gradients averaged over torch.distributed (gloo on the CPU, NCCL on CUDA); their
output lines are prefixed with the rank and one rank's failure stops the others. Rank 0 reads the
run directory's commands and YAML, and every rank applies each op at the same step; rank R keeps
its ledger and outputs in RUN_DIR/ranks/R. Several machines: the same command on each, with
--nnodes, --node-rank and --master-addr/--master-port of node 0. A program started by torchrun
itself (RANK, WORLD_SIZE ... set) trains as that rank.

Training needs libtorch, which hotcb does not link (so that its other commands start in
milliseconds): hotcb runs ` + TorchBinary + ` in its place with the same arguments — $` + TorchEnv + ` if
set, else ` + TorchBinary + ` next to hotcb, else on PATH ('make build' builds both into bin/).`,
		Example: `  hotcb --dir runs/demo train
  hotcb --dir runs/demo train --epochs 10 --lr 1e-3 --device cuda
  hotcb --dir runs/mnist train --data mnist:/data/mnist --model mlp
  hotcb --dir runs/mine train --model my_cnn.pt --steps 500
  hotcb --dir runs/demo train --resume --epochs 8
  hotcb --dir runs/ddp train --nproc 2 --steps 200
  hotcb --dir runs/ddp train --nproc 2 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --master-port 29500`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkModel(o.Model); err != nil {
				return err
			}
			if progress && noProgress {
				return usageErr("--progress and --no-progress together", "pick one")
			}
			if lo.N < 1 || lo.Nodes < 1 || lo.NodeRank < 0 || lo.NodeRank >= lo.Nodes {
				return usageErr(fmt.Sprintf("--nproc %d --nnodes %d --node-rank %d", lo.N, lo.Nodes, lo.NodeRank),
					"--nproc and --nnodes are at least 1, and --node-rank is 0 to --nnodes-1")
			}
			if (lo.N > 1 || lo.Nodes > 1) && os.Getenv("WORLD_SIZE") == "" {
				return a.launchRanks(cmd, lo)
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
	f.IntVar(&lo.N, "nproc", 1, "data-parallel ranks to start on this machine")
	f.IntVar(&lo.Nodes, "nnodes", 1, "machines in a data-parallel run (each starts --nproc ranks)")
	f.IntVar(&lo.NodeRank, "node-rank", 0, "this machine's place among --nnodes (0 hosts rank 0's store)")
	f.StringVar(&lo.MasterAddr, "master-addr", "127.0.0.1", "address of node 0, where rank 0's store listens")
	f.IntVar(&lo.MasterPort, "master-port", 0, "port of rank 0's store (0: a free one; set it when --nnodes > 1)")
	f.BoolVar(&o.NoRestore, "no-restore", false, "on an existing run directory, do not restore the callbacks the previous run had loaded (the YAML and queued commands still apply)")
	return cmd
}

// checkModel checks --model without libtorch: a built-in name, or a file that holds a
// TorchScript module (what it holds otherwise is said as bridge/jit says it).
func checkModel(model string) error {
	const use = "use --model cnn, --model mlp, or the path of a TorchScript file"
	const save = "in Python, save the model with torch.jit.save(torch.jit.script(model), path) (or torch.jit.trace(model, example_input))"
	if !torchfile.NamesFile(model, "cnn", "mlp") {
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

// launchRanks starts this machine's ranks of a data-parallel run: hotcb-torch (this program, if
// it links libtorch) with the same arguments less the launch flags, and torchrun's environment.
func (a *app) launchRanks(cmd *cobra.Command, lo launch.Options) error {
	if lo.Nodes > 1 && lo.MasterPort == 0 {
		return usageErr("--nnodes > 1 without --master-port", "every node needs the same --master-addr and --master-port (node 0's)")
	}
	prog, err := os.Executable()
	if a.torch == nil || a.torch.Train == nil {
		prog, err = FindTorch()
	}
	if err != nil {
		return hinted(fmt.Errorf("train --nproc: cannot find %s: %w", TorchBinary, err), "'make build' builds bin/hotcb-torch next to bin/hotcb")
	}
	args := a.args
	if args == nil {
		args = os.Args[1:]
	}
	for _, f := range []string{"nproc", "nnodes", "node-rank", "master-addr", "master-port"} {
		args = launch.StripFlag(args, f)
	}
	lo.Program, lo.Args, lo.Out, lo.Err = prog, args, a.out, a.errOut
	return launch.Run(cmd.Context(), lo)
}
