package models_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/models"
)

func accuracy(m nn.Module, ds *data.TensorDataset) float64 {
	nn.Eval(m)
	defer nn.Train(m, true)
	var acc float64
	bridge.NoGrad(func() {
		acc = m.Forward(ds.Images).Argmax(1, false).Eq(ds.Labels).To(bridge.Float32).Mean().Item()
	})
	return acc
}

// TestSmallCNNLearnsShapes is the end-to-end check of bridge, nn, optim and data together: the
// small CNN reaches at least 90% test accuracy on the synthetic shapes (6 classes, 28×28) on the
// CPU, in a bounded number of epochs.
func TestSmallCNNLearnsShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end training skipped in -short mode")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	train, err := data.Shapes(data.ShapesOptions{N: 10000, Seed: 1})
	require.NoError(t, err)
	test, err := data.Shapes(data.ShapesOptions{N: 1200, Seed: 2, Norm: &train.Norm})
	require.NoError(t, err)

	bridge.ManualSeed(0)
	model := models.NewSmallCNN(1, 6)
	adam := optim.DefaultAdam()
	adam.LR = 3e-3
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), adam)
	require.NoError(t, err)
	loader, err := data.NewLoader(train, data.LoaderOptions{BatchSize: 64, Shuffle: true, Seed: 3})
	require.NoError(t, err)
	defer loader.Close()

	acc := 0.0
	for epoch := 0; epoch < 10 && acc < 0.95; epoch++ {
		for b := range loader.Epoch(context.Background(), epoch) {
			loss := bridge.CrossEntropy(model.Forward(b.X), b.Y)
			opt.ZeroGrad()
			loss.Backward()
			opt.Step()
		}
		acc = accuracy(model, test)
		t.Logf("epoch %d: test accuracy %.1f%% (%.1fs)", epoch+1, 100*acc, time.Since(start).Seconds())
	}
	require.GreaterOrEqual(t, acc, 0.90)
}
