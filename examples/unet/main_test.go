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
