// Command gpt trains a small character-level GPT — token and position embeddings, transformer
// blocks with causal self-attention, a linear head — whose maths is generated ATen ops (package
// aten: embedding, layer_norm, linear, chunk, bmm, tril, masked_fill, softmax, dropout, gelu),
// on a built-in text, with Adam, under a HotKernel with the timing instrument and feature maps
// (the blocks' outputs and the attention probabilities), then samples text with
// aten::multinomial.
//
//	go run ./examples/gpt -steps 400 -dir runs/gpt
//
// The run directory gets timing/timing.jsonl and .png, featviz/index.html (one row per capture
// step: each block's [T, C] activations and each layer's attention maps, one per head) and
// last.pt. While it trains, the kernel takes commands from another terminal:
//
//	hotcb --dir runs/gpt opt set_params lr=1e-3
//	hotcb --dir runs/gpt cb set_params feat_viz every=20
//	hotcb --dir runs/gpt status
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	_ "github.com/hotcb/hotcb/callbacks/all" // the built-in callbacks, by Go and hotcb names
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

func main() {
	o := defaults()
	flag.Int64Var(&o.Steps, "steps", o.Steps, "training steps")
	flag.StringVar(&o.Dir, "dir", "runs/gpt", "run directory (created 0700)")
	device := flag.String("device", "cpu", "cpu or cuda[:n]")
	flag.Float64Var(&o.LR, "lr", o.LR, "Adam learning rate (change it live: hotcb opt set_params lr=...)")
	flag.Int64Var(&o.Batch, "batch", o.Batch, "sequences per batch")
	flag.Int64Var(&o.Model.Block, "block", o.Model.Block, "context length (characters)")
	flag.Int64Var(&o.Model.Embd, "embd", o.Model.Embd, "model width")
	flag.Int64Var(&o.Model.Heads, "heads", o.Model.Heads, "attention heads")
	flag.IntVar(&o.Model.Layers, "layers", o.Model.Layers, "transformer blocks")
	flag.Float64Var(&o.Model.Dropout, "dropout", o.Model.Dropout, "dropout probability")
	flag.IntVar(&o.SampleLen, "sample", o.SampleLen, "characters to sample after training")
	flag.Float64Var(&o.Temperature, "temperature", o.Temperature, "sampling temperature")
	flag.Uint64Var(&o.Seed, "seed", o.Seed, "random seed")
	flag.Parse()
	var err error
	if o.Device, err = bridge.ParseDevice(*device); err != nil {
		log.Fatal(err)
	}
	// Ctrl-C finishes the current step and closes the kernel (callbacks' Close, ledger).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// options configure run; start from defaults().
type options struct {
	Dir         string
	Steps       int64
	Device      bridge.Device
	LR          float64
	Batch       int64
	Model       config // Vocab is set from the text
	Text        string // "" is the built-in corpus
	TimingEvery int    // timing's summary interval (steps)
	FeatEvery   int    // feature-map capture interval (steps)
	PrintEvery  int64
	SampleLen   int
	Temperature float64
	Seed        uint64
	Out         io.Writer
	Kernel      kernel.Options
}

func defaults() options {
	return options{Steps: 400, LR: 3e-3, Batch: 32, TimingEvery: 50, FeatEvery: 100, PrintEvery: 50,
		SampleLen: 300, Temperature: 0.8, Seed: 1, Out: os.Stdout,
		Model: config{Block: 48, Embd: 64, Heads: 4, Layers: 2, Dropout: 0, InitStd: 0.02, ResidualInitStdN: true}}
}

// result is what a run reports.
type result struct {
	Steps      int64
	Losses     []float64 // every step's loss
	Sample     string
	Checkpoint string
	Elapsed    time.Duration // the training steps alone
}

// vocabulary is a text's sorted distinct characters and the text as their indices.
type vocabulary struct {
	chars []rune
	index map[rune]int64
}

func newVocabulary(text string) *vocabulary {
	v := &vocabulary{index: map[rune]int64{}}
	for _, r := range text {
		if _, ok := v.index[r]; !ok {
			v.index[r] = 0
			v.chars = append(v.chars, r)
		}
	}
	slices.Sort(v.chars)
	for i, r := range v.chars {
		v.index[r] = int64(i)
	}
	return v
}

func (v *vocabulary) encode(s string) []int64 {
	out := make([]int64, 0, len(s))
	for _, r := range s {
		out = append(out, v.index[r])
	}
	return out
}

// writeConfig gives a new run directory its hotcb.yaml: timing, and feature maps of the blocks'
// outputs and of the attention probabilities. An existing file (the user's) wins.
func writeConfig(dir string, timingEvery, featEvery int) error {
	cfg := fmt.Sprintf(`# hotcb desired state — edit while training runs; reconciled at the next safe point.
version: 1
callbacks:
  timing:
    enabled: true
    target: {kind: module, path: hotcb.modules.cb.callbacks.timing, symbol: TimingCallback}
    init: {every: %d}
  feat_viz:
    enabled: true
    target: {kind: module, path: github.com/hotcb/hotcb/callbacks/featviz, symbol: FeatureViz}
    init: {every: %d, samples: 1, layers: ["transformer.h.*", "transformer.h.*.attn.probs"]}
`, timingEvery, featEvery)
	f, err := os.OpenFile(filepath.Join(dir, rundir.Config), os.O_WRONLY|os.O_CREATE|os.O_EXCL|rundir.NoFollow, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func run(ctx context.Context, o options) (res result, err error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Text == "" {
		o.Text = corpus
	}
	// One OS thread for the loop: libtorch keeps grad mode and the CUDA stream per thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := rundir.Dir(o.Dir).Ensure(); err != nil {
		return res, err
	}
	if err := writeConfig(o.Dir, o.TimingEvery, o.FeatEvery); err != nil {
		return res, err
	}

	vocab := newVocabulary(o.Text)
	data := vocab.encode(o.Text)
	if int64(len(data)) <= o.Model.Block+1 {
		return res, fmt.Errorf("text of %d characters is too short for a block of %d", len(data), o.Model.Block)
	}
	o.Model.Vocab = int64(len(vocab.chars))
	bridge.ManualSeed(o.Seed)
	model := newGPT(o.Model)
	nn.To(model, o.Device)
	ao := optim.DefaultAdam()
	ao.LR = o.LR
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), ao)
	if err != nil {
		return res, err
	}
	var nparams int64
	for _, p := range nn.Parameters(model) {
		nparams += p.Numel()
	}

	k, err := kernel.New(o.Dir, o.Kernel)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := k.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	k.RegisterOptimizer("main", opt)
	env := &torchenv.Env{Framework: "hotcb-go", Model: model, Optimizer: opt, Device: o.Device, RunDir: o.Dir,
		Phase: "train", Log: func(s string) { fmt.Fprintln(o.Out, s) }}
	fmt.Fprintf(o.Out, "gpt: libtorch %s on %s; %d characters of text, vocabulary %d; %d layers × %d heads, width %d, context %d: %d parameters; run dir %s\n",
		bridge.Version(), o.Device, len(data), o.Model.Vocab, o.Model.Layers, o.Model.Heads, o.Model.Embd, o.Model.Block, nparams, o.Dir)

	// Random windows of the text: x = text[i : i+T], y = text[i+1 : i+T+1].
	rng := rand.New(rand.NewPCG(o.Seed, 2))
	t := o.Model.Block
	batch := func() (x, y *bridge.Tensor) {
		xs, ys := make([]int64, 0, o.Batch*t), make([]int64, 0, o.Batch*t)
		for range o.Batch {
			i := rng.Int64N(int64(len(data)) - t)
			xs = append(xs, data[i:i+t]...)
			ys = append(ys, data[i+1:i+t+1]...)
		}
		return bridge.FromSlice(xs, o.Batch, t).To(o.Device), bridge.FromSlice(ys, o.Batch*t).To(o.Device)
	}

	k.Apply(env, torchenv.FitStart)
	start := time.Now()
	perEpoch := float64(len(data)) / float64(o.Batch*t)
	for step := int64(0); step < o.Steps && ctx.Err() == nil; step++ {
		x, y := batch()
		freeBatch(env)
		env.Step, env.Epoch, env.Inputs, env.Targets = step, float64(step)/perEpoch, x, y
		// forward, cross-entropy of the [B·T, V] logits, backward, Adam; the kernel's callbacks
		// at each phase event; the step's tensors freed when it returns.
		trainer.Step(k, env, model, opt)
		loss := env.Loss.Item()
		res.Losses = append(res.Losses, loss)
		if step == 0 || (step+1)%o.PrintEvery == 0 || step+1 == o.Steps {
			fmt.Fprintf(o.Out, "step %4d  loss %.4f  (mean of the last %d: %.4f)  lr %.2g\n", step+1, loss,
				min(o.PrintEvery, step+1), mean(res.Losses[max(0, int64(len(res.Losses))-o.PrintEvery):]), opt.LR(0))
		}
		if stop, why := env.StopRequested(); stop {
			fmt.Fprintf(o.Out, "a callback asked to stop: %s\n", why)
			break
		}
	}
	res.Elapsed = time.Since(start)
	res.Steps = int64(len(res.Losses))
	k.Apply(env, torchenv.FitEnd)
	fmt.Fprintf(o.Out, "trained %d steps in %.1fs (%.1f steps/s)\n", res.Steps, res.Elapsed.Seconds(), float64(res.Steps)/res.Elapsed.Seconds())

	res.Checkpoint = filepath.Join(o.Dir, "last.pt")
	if err := checkpoint.Save(res.Checkpoint, model, opt, checkpoint.Info{Step: res.Steps, Epoch: float64(res.Steps) / perEpoch}); err != nil {
		return res, err
	}
	if o.SampleLen > 0 {
		res.Sample = sample(model, vocab, "The ", o.SampleLen, o.Temperature, o.Device)
		fmt.Fprintf(o.Out, "sample (temperature %.2g):\n%s\n", o.Temperature, res.Sample)
	}
	d := rundir.Dir(o.Dir)
	fmt.Fprintf(o.Out, "timing %s; feature maps %s; checkpoint %s; ledger %s\n", filepath.Join(o.Dir, "timing"),
		filepath.Join(o.Dir, "featviz", "index.html"), res.Checkpoint, d.Path(rundir.Applied))
	return res, nil
}

// sample continues prompt by n characters, each drawn with aten::multinomial from the softmax
// of the last position's logits over temperature (the default generator: bridge.ManualSeed).
func sample(m *GPT, v *vocabulary, prompt string, n int, temperature float64, dev bridge.Device) string {
	nn.Eval(m)
	defer nn.Train(m, true)
	ctx := v.encode(prompt)
	var out strings.Builder
	out.WriteString(prompt)
	bridge.NoGrad(func() {
		for range n {
			bridge.Scope(func() {
				window := ctx[max(0, int64(len(ctx))-m.Config.Block):]
				idx := bridge.FromSlice(window, 1, int64(len(window))).To(dev)
				logits := aten.Select(m.Forward(idx), 0, int64(len(window))-1) // the last position: [V]
				probs := softmax(aten.DivScalar(logits, aten.FloatScalar(temperature)), -1)
				next := aten.Multinomial(probs, 1, false).Int64s()[0]
				ctx = append(ctx, next)
				out.WriteRune(v.chars[next])
			})
		}
	})
	return out.String()
}

// freeBatch frees the previous step's batch now rather than when the garbage collector gets to
// it; the last one stays in env for the callbacks of fit_end.
func freeBatch(env *torchenv.Env) {
	for _, t := range []*bridge.Tensor{env.Inputs, env.Targets} {
		if t != nil {
			t.Free()
		}
	}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}
