// Command cnn trains the small CNN (models.SmallCNN) on the synthetic shapes dataset with
// bridge/nn, bridge/optim and data, evaluates each epoch and checkpoints the run — and
// instruments it live with a standalone HotController over the run directory (`hotcb train`,
// in package trainer, is the same loop under a HotKernel).
//
//	go run ./examples/cnn -epochs 5 -out runs/cnn          # train
//	go run ./examples/cnn -epochs 8 -out runs/cnn -resume  # continue from runs/cnn/last.pt
//
// While it trains, from another terminal:
//
//	echo '{"op":"load","id":"lp","target":{"kind":"module","path":"examples/cnn","symbol":"LossPrinter"},"init":{"every":20}}' >> runs/cnn/hotcb.commands.jsonl
//	echo '{"op":"set_params","id":"lp","params":{"every":5}}' >> runs/cnn/hotcb.commands.jsonl
//	echo '{"op":"disable","id":"lp"}' >> runs/cnn/hotcb.commands.jsonl
//	cat runs/cnn/hotcb.status.json
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callback"
	_ "github.com/hotcb/hotcb/callbacks/all" // the built-ins, by Go and hotcb names
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// LossPrinter is a small compiled callback: every N steps it prints the loss.
type LossPrinter struct {
	id    string
	every int64
}

func (l *LossPrinter) ID() string { return l.id }

// Handle prints the loss at train_step_end every N steps.
func (l *LossPrinter) Handle(event string, env *torchenv.Env) error {
	if event == torchenv.TrainStepEnd && env.Step%l.every == 0 && env.Loss != nil {
		fmt.Printf("[%s] step %d loss %.4f\n", l.id, env.Step, env.Loss.Item())
	}
	return nil
}

// SetParams accepts every (a positive integer).
func (l *LossPrinter) SetParams(p map[string]any) error {
	v, ok := p["every"]
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	if err != nil || n < 1 {
		return fmt.Errorf("param every: want a positive integer, got %v", v)
	}
	l.every = n
	return nil
}

func init() {
	callback.Register("examples/cnn", "LossPrinter", func(id string, init map[string]any) (callback.HotCallback, error) {
		l := &LossPrinter{id: id, every: 50}
		return l, l.SetParams(init)
	})
}

func main() {
	epochs := flag.Int("epochs", 5, "epochs to train (in total, when resuming)")
	batch := flag.Int("batch", 64, "batch size")
	lr := flag.Float64("lr", 3e-3, "Adam learning rate")
	n := flag.Int("n", 10000, "training images")
	out := flag.String("out", "runs/cnn", "run directory (checkpoint, sample grid)")
	device := flag.String("device", "cpu", "cpu or cuda[:n]")
	resume := flag.Bool("resume", false, "continue from <out>/last.pt")
	seed := flag.Uint64("seed", 0, "random seed")
	flag.Parse()
	dev, err := bridge.ParseDevice(*device)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(*epochs, *batch, *n, *lr, *out, dev, *resume, *seed); err != nil {
		log.Fatal(err)
	}
}

func run(epochs, batch, n int, lr float64, out string, dev bridge.Device, resume bool, seed uint64) error {
	// One OS thread for the loop: libtorch's per-thread state and glibc's per-thread arenas.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	start := time.Now()
	train, err := data.Shapes(data.ShapesOptions{N: n, Seed: seed + 1})
	if err != nil {
		return err
	}
	test, err := data.Shapes(data.ShapesOptions{N: 2000, Seed: seed + 2, Norm: &train.Norm})
	if err != nil {
		return err
	}
	grid := filepath.Join(out, "shapes.png")
	if err := train.SaveClassGrid(grid, 8, data.GridOptions{Scale: 2}); err != nil {
		return err
	}
	fmt.Printf("hotcb-go demo: libtorch %s on %s; shapes %d train / %d test images, classes %v (%.1fs; samples in %s)\n",
		bridge.Version(), dev, train.Len(), test.Len(), train.Classes, time.Since(start).Seconds(), grid)
	test = test.To(dev)

	bridge.ManualSeed(seed)
	model := models.NewSmallCNN(1, int64(len(train.Classes)))
	nn.To(model, dev)
	o := optim.DefaultAdam()
	o.LR = lr
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), o)
	if err != nil {
		return err
	}
	ckpt := filepath.Join(out, "last.pt")
	first := 0
	if resume {
		info, _, err := checkpoint.Load(ckpt, model, opt)
		if err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		first = int(info.Epoch)
		fmt.Printf("resumed from %s at epoch %d, step %d\n", ckpt, first, info.Step)
	}
	loader, err := data.NewLoader(train, data.LoaderOptions{BatchSize: batch, Shuffle: true, Seed: seed + 3, Device: &dev})
	if err != nil {
		return err
	}
	defer loader.Close()

	if err := writeDefaultConfig(filepath.Join(out, "hotcb.yaml")); err != nil {
		return err
	}
	ctl, err := controller.New(controller.Options{
		RunDir:       out,
		SourcesDir:   filepath.Join(out, "hotcb.sources"),
		CommandsPath: filepath.Join(out, "hotcb.commands.jsonl"),
		ConfigPath:   filepath.Join(out, "hotcb.yaml"),
		StatusPath:   filepath.Join(out, "hotcb.status.json"),
		LogPath:      filepath.Join(out, "hotcb.log"),
	})
	if err != nil {
		return err
	}
	defer ctl.Close()
	env := &torchenv.Env{Framework: "hotcb-go", Model: model, Optimizer: opt, Device: dev, RunDir: out,
		Log: func(s string) { fmt.Println(s) }}
	fmt.Printf("live control: append commands to %s (see examples/cnn/main.go)\n", filepath.Join(out, "hotcb.commands.jsonl"))

	step := int64(first * loader.Len())
	acc := 0.0
	for epoch := first; epoch < epochs; epoch++ {
		t0 := time.Now()
		env.Phase = "train"
		for b := range loader.Epoch(context.Background(), epoch) {
			env.Step, env.Epoch, env.Inputs, env.Targets = step, float64(epoch)+float64(b.Index)/float64(loader.Len()), b.X, b.Y
			// The step in a bridge.Scope (its tensors freed on return), the controller's callbacks
			// unscoped, env left with detached copies after the update.
			apply := func(ev ...string) { bridge.Unscoped(func() { ctl.Apply(env, ev...) }) }
			bridge.Scope(func() {
				env.Outputs = model.Forward(b.X)
				env.Loss = bridge.CrossEntropy(env.Outputs, b.Y)
				apply(torchenv.ForwardEnd)
				opt.ZeroGrad()
				env.Loss.Backward()
				apply(torchenv.BackwardEnd)
				opt.Step()
				env.Loss = bridge.Keep(env.Loss.Detach())
				env.Outputs = bridge.Keep(env.Outputs.Detach())
				apply(torchenv.OptimizerStepEnd, torchenv.TrainStepEnd)
			})
			step++
			if b.Index%50 == 0 {
				fmt.Printf("epoch %d  batch %3d/%d  loss %.4f\n", epoch+1, b.Index, loader.Len(), env.Loss.Item())
			}
		}
		acc = evaluate(model, test)
		env.Extra = map[string]any{"metrics": map[string]float64{"test_acc": acc}}
		ctl.Apply(env, torchenv.EpochEnd)
		fmt.Printf("epoch %d done: test accuracy %.1f%%, %.1f steps/s\n", epoch+1, 100*acc,
			float64(loader.Len())/time.Since(t0).Seconds())
		if err := checkpoint.Save(ckpt, model, opt, checkpoint.Info{Step: step, Epoch: float64(epoch + 1)}); err != nil {
			return err
		}
	}
	ctl.Apply(env, torchenv.FitEnd)
	fmt.Printf("done in %.1fs: test accuracy %.1f%%; checkpoint %s (Python: torch.load(p)[\"model\"])\n",
		time.Since(start).Seconds(), 100*acc, ckpt)
	fmt.Printf("feature maps: %s; timing: %s\n", filepath.Join(out, "featviz", "index.html"), filepath.Join(out, "timing"))
	if epochs > first && acc < 0.9 {
		fmt.Println("note: test accuracy is below 90% — train longer (-epochs) for the demo's usual ≈95%")
	}
	return nil
}

func writeDefaultConfig(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil // the user's own file wins
	}
	return os.WriteFile(path, []byte(trainer.DefaultConfig), 0o600) // the same file `hotcb train` starts with
}

func evaluate(m nn.Module, ds *data.TensorDataset) float64 {
	nn.Eval(m)
	defer nn.Train(m, true)
	var acc float64
	bridge.NoGrad(func() {
		acc = m.Forward(ds.Images).Argmax(1, false).Eq(ds.Labels).To(bridge.Float32).Mean().Item()
	})
	return acc
}
