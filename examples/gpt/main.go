// Command gpt trains a small character-level GPT — token and position embeddings, transformer
// blocks with causal self-attention, a linear head — whose maths is generated ATen ops (package
// aten: embedding, layer_norm, linear, chunk, bmm, tril, masked_fill, softmax, dropout, gelu),
// on a built-in text, with AdamW (weight decay on the matrices only), a linear warm-up then a
// cosine decay of the learning rate and gradient clipping, through trainer.StepWith with the
// model's own loss (cross-entropy over every position of [B, T, V] logits), optionally
// accumulating gradients over micro-batches, under a HotKernel with the timing instrument and
// feature maps (the blocks' token × channel activations and the attention probabilities, one
// T × T map per head), then samples text with aten::multinomial.
//
//	go run ./examples/gpt -steps 400 -dir runs/gpt
//
// The run directory gets timing/timing.jsonl and .png, featviz/index.html (one row per capture
// step) and last.pt. While it trains, the kernel takes commands from another terminal:
//
//	hotcb --dir runs/gpt opt set_params lr=1e-3
//	hotcb --dir runs/gpt cb set_params feat_viz every=20
//	hotcb --dir runs/gpt status
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	_ "github.com/hotcb/hotcb/callbacks/all" // the built-in callbacks, by Go and hotcb names
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/examples/gpt/gpt"
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
	flag.Float64Var(&o.LR, "lr", o.LR, "peak AdamW learning rate (change it live: hotcb opt set_params lr=...)")
	flag.Float64Var(&o.WeightDecay, "wd", o.WeightDecay, "AdamW weight decay of the matrices")
	flag.Int64Var(&o.Warmup, "warmup", o.Warmup, "steps of linear learning-rate warm-up (then cosine decay)")
	flag.Float64Var(&o.MinLR, "min-lr", o.MinLR, "learning rate at the end of the cosine decay, as a fraction of -lr")
	flag.Float64Var(&o.Clip, "clip", o.Clip, "clip the gradients' total norm to this (0: no clipping)")
	flag.Int64Var(&o.Batch, "batch", o.Batch, "sequences per optimizer step")
	flag.IntVar(&o.Accumulate, "accumulate", o.Accumulate, "micro-batches per optimizer step (gradient accumulation; must divide -batch)")
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
	LR          float64 // peak learning rate
	WeightDecay float64
	Warmup      int64      // linear warm-up steps, then cosine decay to MinLR·LR at the last step
	MinLR       float64    // fraction of LR
	Clip        float64    // max total gradient norm; 0: none
	Batch       int64      // sequences per optimizer step
	Accumulate  int        // micro-batches per optimizer step
	Model       gpt.Config // Vocab is set from the text
	Text        string     // "" is the built-in corpus
	TimingEvery int        // timing's summary interval (steps)
	FeatEvery   int        // feature-map capture interval (steps)
	PrintEvery  int64
	SampleLen   int
	Temperature float64
	Seed        uint64
	Out         io.Writer
	Kernel      kernel.Options
}

func defaults() options {
	return options{Steps: 400, LR: 3e-3, WeightDecay: 0.1, Warmup: 40, MinLR: 0.1, Clip: 1, Batch: 32, Accumulate: 1,
		TimingEvery: 50, FeatEvery: 100, PrintEvery: 50, SampleLen: 300, Temperature: 0.8, Seed: 1, Out: os.Stdout,
		Model: gpt.Config{Block: 48, Embd: 64, Heads: 4, Layers: 2, Dropout: 0, InitStd: 0.02, ResidualInitStdN: true}}
}

// result is what a run reports.
type result struct {
	Steps      int64
	Losses     []float64 // every step's loss
	LRs        []float64 // every step's learning rate
	GradNorms  []float64 // every step's gradient norm before clipping
	Sample     string
	Checkpoint string
	Elapsed    time.Duration // the training steps alone
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
	return rundir.Dir(dir).WriteConfigIfAbsent(cfg)
}

func run(ctx context.Context, o options) (res result, err error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Text == "" {
		o.Text = gpt.Corpus
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

	vocab := gpt.NewVocabulary(o.Text)
	data := vocab.Encode(o.Text)
	if int64(len(data)) <= o.Model.Block+1 {
		return res, fmt.Errorf("text of %d characters is too short for a block of %d", len(data), o.Model.Block)
	}
	if o.Accumulate < 1 || o.Batch%int64(o.Accumulate) != 0 {
		return res, fmt.Errorf("%d micro-batches do not split a batch of %d", o.Accumulate, o.Batch)
	}
	o.Model.Vocab = vocab.Size()
	bridge.ManualSeed(o.Seed)
	model := gpt.New(o.Model)
	nn.To(model, o.Device)
	params := nn.Parameters(model)
	// AdamW, weight decay on the matrices only; the rate warms up linearly from LR/Warmup to LR
	// over Warmup steps, then follows a cosine down to MinLR·LR at the last step.
	ao := optim.DefaultAdamW()
	ao.LR = o.LR
	opt, err := optim.NewAdamW(gpt.DecayGroups(model, o.WeightDecay), ao)
	if err != nil {
		return res, err
	}
	warmup := min(max(o.Warmup, 1), max(o.Steps-1, 1))
	sched, err := optim.NewWarmupCosine(opt, 1/float64(warmup), int(warmup), int(max(o.Steps-warmup, 1)), o.MinLR*o.LR)
	if err != nil {
		return res, err
	}
	var nparams int64
	for _, p := range params {
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
	fmt.Fprintf(o.Out, "gpt: libtorch %s on %s; %d characters of text, vocabulary %d; %d layers × %d heads, width %d, context %d: %d parameters; "+
		"AdamW lr %.2g (warm-up %d steps, cosine to %.2g), weight decay %.2g, clip %.2g; batch %d in %d micro-batch(es); run dir %s\n",
		bridge.Version(), o.Device, len(data), o.Model.Vocab, o.Model.Layers, o.Model.Heads, o.Model.Embd, o.Model.Block, nparams,
		o.LR, warmup, o.MinLR*o.LR, o.WeightDecay, o.Clip, o.Batch, o.Accumulate, o.Dir)

	// The step: the model's own loss over every position, the gradients clipped between the
	// backward pass(es) and AdamW, the schedule advanced after it.
	var gradNorm float64
	step := trainer.StepOptions{
		Loss: func(env *torchenv.Env) *bridge.Tensor {
			env.Outputs = model.Forward(env.Inputs) // [B, T, V]
			return gpt.Loss(env.Outputs, env.Targets)
		},
		Accumulate: o.Accumulate,
		BeforeOptimizerStep: func(*torchenv.Env) {
			if o.Clip > 0 {
				gradNorm = optim.ClipGradNorm(params, o.Clip, 2)
			}
		},
		AfterOptimizerStep: func(*torchenv.Env) { sched.Step() },
	}

	// Random windows of the text: x = text[i : i+T], y = text[i+1 : i+T+1].
	rng := rand.New(rand.NewPCG(o.Seed, 2))
	t := o.Model.Block
	batch := func() (x, y *bridge.Tensor) {
		xs, ys := gpt.Windows(rng, data, o.Batch, t)
		return bridge.FromSlice(xs, o.Batch, t).To(o.Device), bridge.FromSlice(ys, o.Batch, t).To(o.Device)
	}

	k.Apply(env, torchenv.FitStart)
	start := time.Now()
	perEpoch := float64(len(data)) / float64(o.Batch*t)
	for i := int64(0); i < o.Steps && ctx.Err() == nil; i++ {
		x, y := batch()
		freeBatch(env)
		env.Step, env.Epoch, env.Inputs, env.Targets = i, float64(i)/perEpoch, x, y
		lr := opt.LR(0)
		// forward and loss, backward (per micro-batch), clipping, AdamW, the schedule; the
		// kernel's callbacks at each phase event; the step's tensors freed when it returns.
		if err := trainer.StepWith(k, env, model, opt, step); err != nil {
			return res, fmt.Errorf("step %d: %w", i, err)
		}
		loss := env.Loss.Item()
		res.Losses = append(res.Losses, loss)
		res.LRs = append(res.LRs, lr)
		res.GradNorms = append(res.GradNorms, gradNorm)
		if i == 0 || (i+1)%o.PrintEvery == 0 || i+1 == o.Steps {
			fmt.Fprintf(o.Out, "step %4d  loss %.4f  (mean of the last %d: %.4f)  lr %.2g  grad norm %.3g\n", i+1, loss,
				min(o.PrintEvery, i+1), mean(res.Losses[max(0, int64(len(res.Losses))-o.PrintEvery):]), lr, gradNorm)
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
func sample(m *gpt.GPT, v *gpt.Vocabulary, prompt string, n int, temperature float64, dev bridge.Device) string {
	nn.Eval(m)
	defer nn.Train(m, true)
	ctx := v.Encode(prompt)
	var out strings.Builder
	out.WriteString(prompt)
	bridge.NoGrad(func() {
		for range n {
			bridge.Scope(func() {
				window := ctx[max(0, int64(len(ctx))-m.Config.Block):]
				idx := bridge.FromSlice(window, 1, int64(len(window))).To(dev)
				logits := aten.Select(aten.Select(m.Forward(idx), 0, 0), 0, int64(len(window))-1) // the last position: [V]
				probs := gpt.Softmax(aten.DivScalar(logits, aten.FloatScalar(temperature)), -1)
				next := aten.Multinomial(probs, 1, false).Int64s()[0]
				ctx = append(ctx, next)
				out.WriteRune(v.Chars[next])
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
