// Command mlp trains a small multi-layer perceptron with the bridge alone: tensors, autograd and
// a hand-written SGD step, on a synthetic dataset that needs no download (Gaussian clusters,
// one per class). `hotcb train` (package trainer) is the full run.
//
//	go run ./examples/mlp -steps 1500 -out runs/demo
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/hotcb/hotcb/bridge"
)

func main() {
	steps := flag.Int("steps", 1500, "training steps")
	batch := flag.Int64("batch", 128, "batch size")
	lr := flag.Float64("lr", 0.1, "learning rate")
	out := flag.String("out", "runs/demo", "directory for the checkpoint")
	device := flag.String("device", "cpu", "cpu or cuda[:n]")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	dev, err := bridge.ParseDevice(*device)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(*steps, *batch, *lr, *out, dev, *seed); err != nil {
		log.Fatal(err)
	}
}

const (
	classes  = 10
	features = 32
	hidden   = 128
)

// clusters draws n points around one random centre per class.
func clusters(centres *bridge.Tensor, n int64, dev bridge.Device) (x, y *bridge.Tensor) {
	y = bridge.RandInt(0, classes, bridge.Shape{n})
	x = centres.IndexSelect(0, y).Add(bridge.Randn(bridge.Shape{n, features}).MulScalar(2.5))
	return x.To(dev), y.To(dev)
}

func accuracy(params []*bridge.Tensor, x, y *bridge.Tensor) float64 {
	var acc float64
	bridge.NoGrad(func() {
		pred := forward(params, x).Argmax(1, false)
		acc = pred.Eq(y).To(bridge.Float32).Mean().Item()
	})
	return acc
}

func forward(p []*bridge.Tensor, x *bridge.Tensor) *bridge.Tensor {
	h := bridge.Linear(x, p[0], p[1]).Relu()
	return bridge.Linear(h, p[2], p[3])
}

func run(steps int, batch int64, lr float64, out string, dev bridge.Device, seed uint64) error {
	bridge.ManualSeed(seed)
	fmt.Printf("hotcb-go demo: libtorch %s, device %s, %d threads\n", bridge.Version(), dev, bridge.NumThreads())
	centres := bridge.Randn(bridge.Shape{classes, features}).MulScalar(2)
	trainX, trainY := clusters(centres, 8192, dev)
	testX, testY := clusters(centres, 2048, dev)

	// PyTorch's nn.Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
	uniform := func(shape bridge.Shape, fanIn int64) *bridge.Tensor {
		b := 1 / math.Sqrt(float64(fanIn))
		return bridge.Rand(shape).MulScalar(2 * b).SubScalar(b).To(dev).SetRequiresGrad(true)
	}
	params := []*bridge.Tensor{
		uniform(bridge.Shape{hidden, features}, features), uniform(bridge.Shape{hidden}, features),
		uniform(bridge.Shape{classes, hidden}, hidden), uniform(bridge.Shape{classes}, hidden),
	}
	n := trainX.Size(0)
	start := time.Now()
	for step := 1; step <= steps; step++ {
		// One step in a bridge.Scope: the batch, activations, loss and graph are freed when it
		// returns; the parameters (made before it) and their in-place updates stay.
		var loss float64
		bridge.Scope(func() {
			idx := bridge.RandInt(0, n, bridge.Shape{batch}).To(dev)
			x, y := trainX.IndexSelect(0, idx), trainY.IndexSelect(0, idx)
			l := bridge.CrossEntropy(forward(params, x), y)
			l.Backward()
			bridge.AddGradsInPlace(params, -lr) // p -= lr*p.grad; grad = None, in one call
			if step%100 == 0 || step == steps {
				loss = l.Item()
			}
		})
		if step%100 == 0 || step == steps {
			el := time.Since(start).Seconds()
			fmt.Printf("step %4d/%d  loss %.4f  %.0f steps/s\n", step, steps, loss, float64(step)/el)
		}
	}
	acc := accuracy(params, testX, testY)
	fmt.Printf("test accuracy %.1f%% after %d steps in %.1fs\n", 100*acc, steps, time.Since(start).Seconds())

	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	ckpt := filepath.Join(out, "mlp.pt")
	err := bridge.SaveNamed(ckpt, []bridge.Named{
		{Name: "0.weight", Tensor: params[0]}, {Name: "0.bias", Tensor: params[1]},
		{Name: "2.weight", Tensor: params[2]}, {Name: "2.bias", Tensor: params[3]},
	})
	if err != nil {
		return err
	}
	fmt.Printf("checkpoint: %s (torch.load opens it as nn.Sequential(Linear, ReLU, Linear)'s state_dict)\n", ckpt)
	if acc < 0.9 {
		return fmt.Errorf("accuracy %.1f%% is below 90%%", 100*acc)
	}
	return nil
}
