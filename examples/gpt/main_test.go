package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/rundir"
)

// 40 steps of a smaller GPT (with dropout on) under the kernel: the loss falls, timing and
// feature maps are written, the checkpoint loads into a fresh model, and sampling produces text
// from the vocabulary.
func TestGPTUnderKernel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	o := defaults()
	o.Dir, o.Steps, o.Batch, o.PrintEvery = dir, 40, 16, 10
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

	log := out.String()
	require.Contains(t, log, "step   40  loss")
	require.Contains(t, log, "applied cb.load(timing)")
	require.Contains(t, log, "applied cb.load(feat_viz)")
	require.NotContains(t, log, "error", log)

	timing, err := os.ReadFile(filepath.Join(dir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, strings.Count(string(timing), "\n"), 3, "a record every 10 steps")
	require.FileExists(t, filepath.Join(dir, "timing", "timing.png"))

	// steps 0, 10, 20, 30 × two blocks' outputs and two layers' attention probabilities
	pngs, err := filepath.Glob(filepath.Join(dir, "featviz", "*.png"))
	require.NoError(t, err)
	require.Len(t, pngs, 16, "%v", pngs)
	require.FileExists(t, filepath.Join(dir, "featviz", "step00000030_transformer.h.1.attn.probs.png"))
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
	c.Vocab = int64(len(newVocabulary(corpus).chars))
	fresh := newGPT(c)
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
		x := bridge.FromSlice(newVocabulary(corpus).encode("The keeper"), 1, 10)
		nn.Eval(fresh)
		require.Equal(t, bridge.Shape{10, c.Vocab}, fresh.Forward(x).Shape())
	})

	require.True(t, strings.HasPrefix(res.Sample, "The "))
	require.Equal(t, 4+40, utf8.RuneCountInString(res.Sample))
	for _, r := range res.Sample {
		require.Contains(t, corpus, string(r))
	}
}

func TestCausalMask(t *testing.T) {
	m := causalMask(3, bridge.CPU)
	require.Equal(t, []bool{false, true, true, false, false, true, false, false, false}, m.Bools())
}
