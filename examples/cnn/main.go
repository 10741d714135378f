// Command cnn trains the small CNN (models.SmallCNN) on the synthetic shapes dataset with
// bridge/nn, bridge/optim and data, evaluates each epoch and checkpoints the run. It is
// `make demo` until `hotcb train` lands.
//
//	go run ./examples/cnn -epochs 5 -out runs/demo          # train
//	go run ./examples/cnn -epochs 8 -out runs/demo -resume  # continue from runs/demo/last.pt
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/models"
)

func main() {
	epochs := flag.Int("epochs", 5, "epochs to train (in total, when resuming)")
	batch := flag.Int("batch", 64, "batch size")
	lr := flag.Float64("lr", 3e-3, "Adam learning rate")
	n := flag.Int("n", 10000, "training images")
	out := flag.String("out", "runs/demo", "run directory (checkpoint, sample grid)")
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

	step := int64(first * loader.Len())
	acc := 0.0
	for epoch := first; epoch < epochs; epoch++ {
		t0 := time.Now()
		for b := range loader.Epoch(context.Background(), epoch) {
			loss := bridge.CrossEntropy(model.Forward(b.X), b.Y)
			opt.ZeroGrad()
			loss.Backward()
			opt.Step()
			step++
			if b.Index%50 == 0 {
				fmt.Printf("epoch %d  batch %3d/%d  loss %.4f\n", epoch+1, b.Index, loader.Len(), loss.Item())
			}
		}
		acc = evaluate(model, test)
		fmt.Printf("epoch %d done: test accuracy %.1f%%, %.1f steps/s\n", epoch+1, 100*acc,
			float64(loader.Len())/time.Since(t0).Seconds())
		if err := checkpoint.Save(ckpt, model, opt, checkpoint.Info{Step: step, Epoch: float64(epoch + 1)}); err != nil {
			return err
		}
	}
	fmt.Printf("done in %.1fs: test accuracy %.1f%%; checkpoint %s (Python: torch.load(p)[\"model\"])\n",
		time.Since(start).Seconds(), 100*acc, ckpt)
	if epochs > first && acc < 0.9 {
		return errors.New("test accuracy below 90%")
	}
	return nil
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
