package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/examples/gpt/gpt"
	"github.com/hotcb/hotcb/rundir"
)

// 40 steps of a smaller GPT (with dropout on) under the kernel, with AdamW, warm-up and cosine
// decay and clipping: the loss falls, the rate follows its schedule, timing names the phases,
// the feature maps of the blocks are token × channel maps and those of the attention
// probabilities T × T maps per head, the checkpoint loads into a fresh model, and sampling
// produces text from the vocabulary.
func TestGPTUnderKernel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	o := defaults()
	o.Dir, o.Steps, o.Batch, o.PrintEvery, o.Warmup = dir, 40, 16, 10, 8
	o.Model.Block, o.Model.Embd, o.Model.Dropout = 32, 32, 0.1
	o.TimingEvery, o.FeatEvery, o.SampleLen = 10, 10, 40
	var out bytes.Buffer
	o.Out = &out
	res, err := run(context.Background(), o)
	require.NoError(t, err, out.String())
	require.Equal(t, int64(40), res.Steps)
	first, last := mean(res.Losses[:5]), mean(res.Losses[35:])
	t.Logf("loss: first 5 steps %.3f, last 5 %.3f; %d steps in %v", first, last, res.Steps, res.Elapsed)
	require.InDelta(t, 3.5, res.Losses[0], 0.3, "ln(vocabulary) at initialisation")
	require.Less(t, last, first-0.8, "the loss falls")

	// warm-up from lr/8 to lr over 8 steps, then a cosine down towards lr/10
	require.InDelta(t, o.LR/8, res.LRs[0], 1e-12)
	require.InDelta(t, o.LR, res.LRs[8], 1e-12)
	for i := 1; i <= 8; i++ {
		require.Greater(t, res.LRs[i], res.LRs[i-1], "warm-up at step %d", i)
	}
	for i := 9; i < 40; i++ {
		require.Less(t, res.LRs[i], res.LRs[i-1], "decay at step %d", i)
	}
	require.InDelta(t, o.MinLR*o.LR, res.LRs[39], 0.01*o.LR)
	for _, n := range res.GradNorms {
		require.Positive(t, n)
	}

	log := out.String()
	require.Contains(t, log, "step   40  loss")
	require.Contains(t, log, "applied cb.load(timing)")
	require.Contains(t, log, "applied cb.load(feat_viz)")
	require.NotContains(t, log, "error", log)

	timing, err := os.ReadFile(filepath.Join(dir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, strings.Count(string(timing), "\n"), 3, "a record every 10 steps")
	require.Contains(t, log, " forward ", "timing names the forward")
	require.Regexp(t, `"order":\["forward","backward","optimizer",[^]]*"data/other"\]`, string(timing))
	require.FileExists(t, filepath.Join(dir, "timing", "timing.png"))

	// steps 0, 10, 20, 30 × two blocks' outputs and two layers' attention probabilities
	pngs, err := filepath.Glob(filepath.Join(dir, "featviz", "*.png"))
	require.NoError(t, err)
	require.Len(t, pngs, 16, "%v", pngs)
	blockPNG := decodePNG(t, filepath.Join(dir, "featviz", "step00000030_transformer.h.1.png"))
	probsPNG := decodePNG(t, filepath.Join(dir, "featviz", "step00000030_transformer.h.1.attn.probs.png"))
	t.Logf("feature maps: block %v, attention %v", blockPNG.Bounds().Size(), probsPNG.Bounds().Size())
	require.Greater(t, blockPNG.Bounds().Dx(), 300, "[1, 32, 32] as a token × channel map, not a thumbnail")
	require.Greater(t, blockPNG.Bounds().Dy(), 150)
	// four heads of 32 × 32, 2 × 2, each about 128 pixels square
	require.Greater(t, probsPNG.Bounds().Dx(), 2*128)
	require.Greater(t, probsPNG.Bounds().Dy(), 2*128)
	require.FileExists(t, filepath.Join(dir, "featviz", "index.html"))

	ledger, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](rundir.Dir(dir).Path(rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	require.Len(t, ledger, 2)
	for _, e := range ledger {
		require.Equal(t, rundir.DecisionApplied, e.Decision, "%+v", e)
	}

	// the parameters are nn parameters: the checkpoint holds them all and loads back
	c := o.Model
	c.Vocab = gpt.NewVocabulary(gpt.Corpus).Size()
	fresh := gpt.New(c)
	info, _, err := checkpoint.Load(res.Checkpoint, fresh, nil)
	require.NoError(t, err)
	require.Equal(t, int64(40), info.Step)
	names := map[string]bool{}
	for _, p := range nn.NamedParameters(fresh) {
		names[p.Name] = true
	}
	for _, n := range []string{"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.1.attn.c_attn.weight",
		"transformer.h.0.mlp.c_proj.bias", "transformer.ln_f.weight", "lm_head.weight"} {
		require.True(t, names[n], n)
	}
	require.Len(t, names, 4+2*12+2) // wte, wpe, lm_head (4); 12 tensors per block; ln_f (2)
	bridge.NoGrad(func() {
		x := bridge.FromSlice(gpt.NewVocabulary(gpt.Corpus).Encode("The keeper"), 1, 10)
		nn.Eval(fresh)
		require.Equal(t, bridge.Shape{1, 10, c.Vocab}, fresh.Forward(x).Shape())
	})

	require.True(t, strings.HasPrefix(res.Sample, "The "))
	require.Equal(t, 4+40, utf8.RuneCountInString(res.Sample))
	for _, r := range res.Sample {
		require.Contains(t, gpt.Corpus, string(r))
	}
}

func TestCausalMask(t *testing.T) {
	m := gpt.CausalMask(3, bridge.CPU)
	require.Equal(t, []bool{false, true, true, false, false, true, false, false, false}, m.Bools())
}

// Four micro-batches of 4 sequences train like one batch of 16: the same losses, to float
// rounding (the first is the loss of the same initial model on the same batch).
func TestGPTAccumulates(t *testing.T) {
	losses := map[int][]float64{}
	for _, acc := range []int{1, 4} {
		o := defaults()
		o.Dir, o.Steps, o.Batch, o.Accumulate, o.Warmup = filepath.Join(t.TempDir(), "run"), 3, 16, acc, 1
		o.Model.Block, o.Model.Embd, o.SampleLen = 16, 32, 0
		var out bytes.Buffer
		o.Out = &out
		res, err := run(context.Background(), o)
		require.NoError(t, err, out.String())
		require.Contains(t, out.String(), fmt.Sprintf("batch 16 in %d micro-batch(es)", acc))
		losses[acc] = res.Losses
	}
	t.Logf("losses: one batch %v, four micro-batches %v", losses[1], losses[4])
	require.InDelta(t, losses[1][0], losses[4][0], 1e-6)
	for i := range losses[1] {
		require.InDelta(t, losses[1][i], losses[4][i], 1e-4)
	}

	o := defaults()
	o.Dir, o.Accumulate = filepath.Join(t.TempDir(), "run"), 3
	_, err := run(context.Background(), o)
	require.ErrorContains(t, err, "3 micro-batches do not split a batch of 32")
}

func decodePNG(t *testing.T, p string) image.Image {
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, p)
	return img
}
