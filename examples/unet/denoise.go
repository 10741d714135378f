package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/rundir"
)

// The denoising task: flat circles and squares on black (drawShapes without texture, values 0
// to 1.2) with Gaussian noise of a standard deviation drawn per image from [NoiseMin,
// NoiseMax] added. The UNet sees the noisy image alone (blind denoising) and is trained with an
// MSE loss to predict either the noise that was added (residual learning, as DnCNN does: the
// denoised image is the noisy one minus the prediction) or the clean image itself.

// Predict modes of the denoiser.
const (
	predictNoise = "noise"
	predictClean = "clean"
)

// noisyBatch draws n clean images and their noisy versions: clean, noisy [n, 1, size, size] and
// the noise added (noisy − clean).
func noisyBatch(rng *rand.Rand, n, size int64, lo, hi float64) (clean, noisy, noise *bridge.Tensor) {
	clean, _ = drawShapes(rng, n, size, 0)
	eps := make([]float32, n*size*size)
	plane := size * size
	for i := range n {
		sigma := lo + (hi-lo)*rng.Float64()
		for p := range plane {
			eps[i*plane+p] = float32(sigma * rng.NormFloat64())
		}
	}
	noise = bridge.FromSlice(eps, n, 1, size, size)
	return clean, clean.Add(noise), noise
}

// denoised is the model's estimate of the clean images, in evaluation mode.
func denoised(m nn.Module, noisy *bridge.Tensor, predict string) *bridge.Tensor {
	nn.Eval(m)
	defer nn.Train(m, true)
	var out *bridge.Tensor
	bridge.NoGrad(func() {
		out = m.Forward(noisy)
		if predict == predictNoise {
			out = noisy.Sub(out)
		}
	})
	return out
}

// psnr is the peak signal-to-noise ratio of x against ref in dB, for a peak of 1 (the nominal
// brightness of a shape): 10·log10(1 / MSE).
func psnr(x, ref *bridge.Tensor) float64 {
	var mse float64
	bridge.Scope(func() { mse = bridge.MSELoss(x, ref).Item() })
	return -10 * math.Log10(mse)
}

// saveDenoised writes a PNG grid: the clean images, the noisy ones and the denoised ones, a row
// each, in [0, 1].
func saveDenoised(path string, clean, noisy, out *bridge.Tensor) error {
	var rows *bridge.Tensor
	err := bridge.Try(func() {
		rows = aten.Cat([]*bridge.Tensor{clean, noisy, out}, 0).To(bridge.CPU)
		rows = aten.Clamp(rows, aten.S(aten.FloatScalar(0)), aten.S(aten.FloatScalar(1)))
	})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|rundir.NoFollow, 0o600)
	if err != nil {
		return err
	}
	err = data.WriteGrid(f, rows, data.Identity(1), data.GridOptions{Cols: int(clean.Size(0)), Scale: 3})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("denoised images: %w", err)
	}
	return nil
}
