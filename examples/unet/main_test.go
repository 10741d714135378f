package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/rundir"
)

// 40 steps of a narrower UNet under the kernel: the loss falls, the held-out IoU of the shapes
// rises, timing and feature maps are written, and the checkpoint loads into a fresh model.
func TestUNetUnderKernel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	o := defaults()
	o.Dir, o.Steps, o.Batch, o.Width, o.TestN, o.PrintEvery = dir, 40, 8, 8, 64, 10
	o.TimingEvery, o.FeatEvery = 10, 10
	var out bytes.Buffer
	o.Out = &out
	res, err := run(context.Background(), o)
	require.NoError(t, err, out.String())
	require.Equal(t, int64(40), res.Steps)
	first, last := mean(res.Losses[:5]), mean(res.Losses[35:])
	t.Logf("loss: first 5 steps %.3f, last 5 %.3f; IoU %v (before %v), pixel accuracy %.3f; %d steps in %v",
		first, last, res.IoU, res.IoUBefore, res.PixelAcc, res.Steps, res.Elapsed)
	require.Less(t, last, first/2, "the loss falls")
	require.Greater(t, res.IoU[background], 0.9)
	require.Greater(t, res.MeanIoU(), (res.IoUBefore[circle]+res.IoUBefore[square])/2)

	log := out.String()
	require.Contains(t, log, "step   40  loss")
	require.Contains(t, log, "held-out IoU on 64 images")
	require.Contains(t, log, "applied cb.load(timing)")
	require.Contains(t, log, "applied cb.load(feat_viz)")
	require.NotContains(t, log, "error", log)

	timing, err := os.ReadFile(filepath.Join(dir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, strings.Count(string(timing), "\n"), 3, "a record every 10 steps")
	require.FileExists(t, filepath.Join(dir, "timing", "timing.png"))

	// steps 0, 10, 20, 30 × enc1, enc2, mid, dec2, dec1, head
	pngs, err := filepath.Glob(filepath.Join(dir, "featviz", "*.png"))
	require.NoError(t, err)
	require.Len(t, pngs, 24, "%v", pngs)
	require.FileExists(t, filepath.Join(dir, "featviz", "step00000030_dec1.png"))
	require.FileExists(t, filepath.Join(dir, "featviz", "index.html"))
	require.FileExists(t, filepath.Join(dir, "predictions.png"))

	ledger, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](rundir.Dir(dir).Path(rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	require.Len(t, ledger, 2)

	fresh := newUNet(1, numClasses, o.Width)
	info, _, err := checkpoint.Load(res.Checkpoint, fresh, nil)
	require.NoError(t, err)
	require.Equal(t, int64(40), info.Step)
	x, y := shapes(rand.New(rand.NewPCG(9, 9)), 4, o.Size)
	require.Equal(t, y.Shape(), predict(fresh, x).Shape())
}

// 60 steps of the denoiser (predicting the noise, two micro-batches per step) under the kernel:
// the MSE falls, the denoised held-out images are much closer to the clean ones than the noisy
// ones are, timing and feature maps are written, and so is denoised.png.
func TestUNetDenoiser(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	o := defaults()
	o.Task, o.Dir, o.Steps, o.Batch, o.Accumulate, o.Width, o.TestN, o.PrintEvery = taskDenoise, dir, 60, 8, 2, 8, 64, 10
	o.TimingEvery, o.FeatEvery = 20, 20
	var out bytes.Buffer
	o.Out = &out
	res, err := run(context.Background(), o)
	require.NoError(t, err, out.String())
	require.Equal(t, int64(60), res.Steps)
	first, last := mean(res.Losses[:5]), mean(res.Losses[55:])
	t.Logf("MSE: first 5 steps %.4f, last 5 %.4f; PSNR noisy %.2f dB, denoised %.2f dB (before training %.2f); %v",
		first, last, res.PSNRNoisy, res.PSNR, res.PSNRBefore, res.Elapsed)
	require.Less(t, last, first/4, "the loss falls")
	require.Greater(t, res.PSNR, res.PSNRNoisy+3, "denoised beats noisy by 3 dB")
	require.Greater(t, res.PSNR, res.PSNRBefore)

	log := out.String()
	require.Contains(t, log, "denoising (noise σ 0.1–0.5, predicting the noise)")
	require.Contains(t, log, "batch 8 in 2 micro-batch(es)")
	require.Contains(t, log, "held-out PSNR on 64 images")
	require.NotContains(t, log, "error", log)
	timing, err := os.ReadFile(filepath.Join(dir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	require.Regexp(t, `"order":\["forward","backward","optimizer",[^]]*"data/other"\]`, string(timing))
	pngs, err := filepath.Glob(filepath.Join(dir, "featviz", "*.png"))
	require.NoError(t, err)
	require.Len(t, pngs, 3*6, "steps 0, 20, 40 × six blocks: one capture per step, not per micro-batch")
	require.FileExists(t, filepath.Join(dir, "featviz", "step00000040_head.png"))
	require.FileExists(t, filepath.Join(dir, "denoised.png"))

	// predicting the clean image works too
	o.Dir, o.Predict, o.Steps, o.Accumulate = filepath.Join(t.TempDir(), "clean"), predictClean, 30, 1
	out.Reset()
	res, err = run(context.Background(), o)
	require.NoError(t, err, out.String())
	t.Logf("predicting the clean image: PSNR noisy %.2f dB, denoised %.2f dB", res.PSNRNoisy, res.PSNR)
	require.Greater(t, res.PSNR, res.PSNRBefore)

	o.Predict = "edges"
	_, err = run(context.Background(), o)
	require.ErrorContains(t, err, `unknown -predict "edges"`)
	o.Task = "classify"
	_, err = run(context.Background(), o)
	require.ErrorContains(t, err, `unknown task "classify"`)
}

func TestShapesMasks(t *testing.T) {
	x, y := shapes(rand.New(rand.NewPCG(1, 1)), 64, 32)
	require.Equal(t, bridge.Shape{64, 1, 32, 32}, x.Shape())
	require.Equal(t, bridge.Shape{64, 32, 32}, y.Shape())
	var counts [numClasses]int
	for _, c := range y.Int64s() {
		counts[c]++
	}
	for c, n := range counts {
		require.Greater(t, n, 0, classNames[c])
	}
	// shape pixels are brighter than the background on average
	px := x.Float32s()
	var fg, bg float64
	for i, c := range y.Int64s() {
		if c == background {
			bg += float64(px[i]) / float64(counts[background])
		} else {
			fg += float64(px[i]) / float64(counts[circle]+counts[square])
		}
	}
	require.Greater(t, fg, bg+0.5)
}
