// Command unet trains a small UNet — conv, group_norm, silu, max_pool2d, conv_transpose2d,
// upsample_bilinear2d + conv, skip connections with cat, all generated ATen ops (package aten)
// — on synthetic images of circles and squares, for one of two tasks:
//
//   - segment (the default): per-pixel classes (background, circle, square) with a
//     cross-entropy loss, reporting each class's intersection over union on held-out images;
//   - denoise: blind Gaussian denoising with an MSE loss, the UNet predicting the noise that was
//     added (-predict noise, residual learning) or the clean image (-predict clean), reporting
//     the held-out PSNR of the noisy and the denoised images.
//
// It trains with Adam through trainer.StepWith (the denoiser with its own loss; -accumulate N
// splits each batch into N micro-batches) under a HotKernel with the timing instrument and
// feature maps of the encoder and decoder blocks.
//
//	go run ./examples/unet -steps 300 -dir runs/unet
//	go run ./examples/unet -task denoise -steps 300 -dir runs/unet-denoise
//
// The run directory gets timing/timing.jsonl and .png, featviz/index.html (the outputs of
// enc1, enc2, mid, dec2, dec1 and the head at each capture step), predictions.png (held-out
// images, their masks, the predicted masks) or denoised.png (clean, noisy and denoised
// held-out images) and last.pt. While it trains, the kernel takes commands from another
// terminal:
//
//	hotcb --dir runs/unet opt set_params lr=1e-3
//	hotcb --dir runs/unet cb set_params feat_viz every=25
//	hotcb --dir runs/unet status
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
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

func main() {
	o := defaults()
	flag.Int64Var(&o.Steps, "steps", o.Steps, "training steps")
	flag.StringVar(&o.Dir, "dir", "runs/unet", "run directory (created 0700)")
	device := flag.String("device", "cpu", "cpu or cuda[:n]")
	flag.Float64Var(&o.LR, "lr", o.LR, "Adam learning rate (change it live: hotcb opt set_params lr=...)")
	flag.StringVar(&o.Task, "task", o.Task, "segment (classes per pixel, cross-entropy) or denoise (MSE)")
	flag.StringVar(&o.Predict, "predict", o.Predict, "denoise: what the UNet predicts, noise (the denoised image is noisy − noise) or clean")
	flag.Float64Var(&o.NoiseMin, "noise-min", o.NoiseMin, "denoise: smallest noise standard deviation")
	flag.Float64Var(&o.NoiseMax, "noise-max", o.NoiseMax, "denoise: largest noise standard deviation")
	flag.Int64Var(&o.Batch, "batch", o.Batch, "images per optimizer step")
	flag.IntVar(&o.Accumulate, "accumulate", o.Accumulate, "micro-batches per optimizer step (gradient accumulation; must divide -batch)")
	flag.Int64Var(&o.Size, "size", o.Size, "image side (a multiple of 4)")
	flag.Int64Var(&o.Width, "width", o.Width, "channels of the first level (doubled at each level down)")
	flag.Int64Var(&o.TestN, "test", o.TestN, "held-out images for the IoU")
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
	Task        string // taskSegment or taskDenoise
	Predict     string // denoise: predictNoise or predictClean
	NoiseMin    float64
	NoiseMax    float64
	Steps       int64
	Device      bridge.Device
	LR          float64
	Batch       int64 // images per optimizer step
	Accumulate  int   // micro-batches per optimizer step
	Size        int64 // image side
	Width       int64 // channels of the first level
	TestN       int64
	TimingEvery int // timing's summary interval (steps)
	FeatEvery   int // feature-map capture interval (steps)
	PrintEvery  int64
	Seed        uint64
	Out         io.Writer
	Kernel      kernel.Options
}

func defaults() options {
	return options{Task: taskSegment, Predict: predictNoise, NoiseMin: 0.1, NoiseMax: 0.5,
		Steps: 300, LR: 3e-3, Batch: 16, Accumulate: 1, Size: 32, Width: 16, TestN: 256,
		TimingEvery: 50, FeatEvery: 50, PrintEvery: 25, Seed: 1, Out: os.Stdout}
}

// Tasks.
const (
	taskSegment = "segment"
	taskDenoise = "denoise"
)

// result is what a run reports.
type result struct {
	Steps     int64
	Losses    []float64           // every step's loss
	IoUBefore [numClasses]float64 // segment
	IoU       [numClasses]float64 // per class on the held-out images, after training
	PixelAcc  float64
	// denoise: held-out PSNR (dB) of the noisy images, of the denoised ones before training and
	// after it
	PSNRNoisy, PSNRBefore, PSNR float64
	Checkpoint                  string
	Elapsed                     time.Duration // the training steps alone
}

// MeanIoU is the mean IoU of the shape classes (background left out).
func (r result) MeanIoU() float64 { return (r.IoU[circle] + r.IoU[square]) / 2 }

// writeConfig gives a new run directory its hotcb.yaml: timing, and feature maps of the UNet's
// blocks and head. An existing file (the user's) wins.
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
    init: {every: %d, samples: 1, channels: 16, layers: [enc1, enc2, mid, dec2, dec1, head]}
`, timingEvery, featEvery)
	return rundir.Dir(dir).WriteConfigIfAbsent(cfg)
}

func run(ctx context.Context, o options) (res result, err error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Size%4 != 0 {
		return res, fmt.Errorf("image size %d is not a multiple of 4", o.Size)
	}
	denoise := o.Task == taskDenoise
	switch {
	case o.Task != taskSegment && !denoise:
		return res, fmt.Errorf("unknown task %q (want %s or %s)", o.Task, taskSegment, taskDenoise)
	case denoise && o.Predict != predictNoise && o.Predict != predictClean:
		return res, fmt.Errorf("unknown -predict %q (want %s or %s)", o.Predict, predictNoise, predictClean)
	case o.Accumulate < 1 || o.Batch%int64(o.Accumulate) != 0:
		return res, fmt.Errorf("%d micro-batches do not split a batch of %d", o.Accumulate, o.Batch)
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

	// Held-out images, and the batches: segment — images and masks; denoise — noisy images and
	// the noise (or the clean images) the model is to predict.
	testRNG, rng := rand.New(rand.NewPCG(o.Seed, 7)), rand.New(rand.NewPCG(o.Seed, 2))
	var testX, testY, testClean *bridge.Tensor
	batch := func() (x, y *bridge.Tensor) { return shapes(rng, o.Batch, o.Size) }
	outChannels := int64(numClasses)
	if denoise {
		testClean, testX, _ = noisyBatch(testRNG, o.TestN, o.Size, o.NoiseMin, o.NoiseMax)
		testClean = testClean.To(o.Device)
		batch = func() (x, y *bridge.Tensor) {
			clean, noisy, noise := noisyBatch(rng, o.Batch, o.Size, o.NoiseMin, o.NoiseMax)
			if o.Predict == predictClean {
				return noisy, clean
			}
			return noisy, noise
		}
		outChannels = 1
	} else {
		testX, testY = shapes(testRNG, o.TestN, o.Size)
		testY = testY.To(o.Device)
	}
	testX = testX.To(o.Device)
	bridge.ManualSeed(o.Seed)
	model := newUNet(1, outChannels, o.Width)
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
	// The step: the segmentation's default loss (cross-entropy of the [N, 3, H, W] logits against
	// the [N, H, W] mask), or the denoiser's own (MSE of the [N, 1, H, W] prediction).
	step := trainer.StepOptions{Accumulate: o.Accumulate}
	if denoise {
		step.Loss = func(env *torchenv.Env) *bridge.Tensor {
			env.Outputs = model.Forward(env.Inputs)
			return bridge.MSELoss(env.Outputs, env.Targets)
		}
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
	what := "segmenting"
	if denoise {
		what = fmt.Sprintf("denoising (noise σ %.2g–%.2g, predicting the %s)", o.NoiseMin, o.NoiseMax, o.Predict)
	}
	fmt.Fprintf(o.Out, "unet: libtorch %s on %s; %s %d×%d images of circles and squares, batch %d in %d micro-batch(es), fresh every step; width %d: %d parameters; run dir %s\n",
		bridge.Version(), o.Device, what, o.Size, o.Size, o.Batch, o.Accumulate, o.Width, nparams, o.Dir)
	if denoise {
		res.PSNRNoisy = psnr(testX, testClean)
		res.PSNRBefore = psnr(denoised(model, testX, o.Predict), testClean)
	} else {
		res.IoUBefore, _ = evaluate(model, testX, testY)
	}

	k.Apply(env, torchenv.FitStart)
	start := time.Now()
	for i := int64(0); i < o.Steps && ctx.Err() == nil; i++ {
		x, y := batch()
		freeBatch(env)
		if o.Device != bridge.CPU {
			x, y = x.To(o.Device), y.To(o.Device)
		}
		env.Step, env.Inputs, env.Targets = i, x, y
		// forward and loss, backward (per micro-batch), Adam; the kernel's callbacks at each
		// phase event; the step's tensors freed when it returns.
		if err := trainer.StepWith(k, env, model, opt, step); err != nil {
			return res, fmt.Errorf("step %d: %w", i, err)
		}
		loss := env.Loss.Item()
		res.Losses = append(res.Losses, loss)
		if i == 0 || (i+1)%o.PrintEvery == 0 || i+1 == o.Steps {
			fmt.Fprintf(o.Out, "step %4d  loss %.4f  (mean of the last %d: %.4f)  lr %.2g\n", i+1, loss,
				min(o.PrintEvery, i+1), mean(res.Losses[max(0, int64(len(res.Losses))-o.PrintEvery):]), opt.LR(0))
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
	if err := checkpoint.Save(res.Checkpoint, model, opt, checkpoint.Info{Step: res.Steps}); err != nil {
		return res, err
	}
	show := min(8, o.TestN)
	var picture, rows string
	if denoise {
		out := denoised(model, testX, o.Predict)
		res.PSNR = psnr(out, testClean)
		fmt.Fprintf(o.Out, "held-out PSNR on %d images: noisy %.2f dB, denoised %.2f dB (before training %.2f dB)\n",
			o.TestN, res.PSNRNoisy, res.PSNR, res.PSNRBefore)
		picture, rows = filepath.Join(o.Dir, "denoised.png"), "clean, noisy, denoised"
		if err := saveDenoised(picture, testClean.Narrow(0, 0, show), testX.Narrow(0, 0, show), out.Narrow(0, 0, show)); err != nil {
			return res, err
		}
	} else {
		res.IoU, res.PixelAcc = evaluate(model, testX, testY)
		var ious []string
		for c := range numClasses {
			ious = append(ious, fmt.Sprintf("%s %.3f (before training %.3f)", classNames[c], res.IoU[c], res.IoUBefore[c]))
		}
		fmt.Fprintf(o.Out, "held-out IoU on %d images: %s; mean IoU of the shapes %.3f; pixel accuracy %.3f\n",
			o.TestN, strings.Join(ious, ", "), res.MeanIoU(), res.PixelAcc)
		pred := predict(model, testX.Narrow(0, 0, show))
		picture, rows = filepath.Join(o.Dir, "predictions.png"), "images, masks, predicted masks"
		if err := savePredictions(picture, testX.Narrow(0, 0, show), testY.Narrow(0, 0, show), pred); err != nil {
			return res, err
		}
	}
	fmt.Fprintf(o.Out, "timing %s; feature maps %s; %s (rows: %s); checkpoint %s\n",
		filepath.Join(o.Dir, "timing"), filepath.Join(o.Dir, "featviz", "index.html"), picture, rows, res.Checkpoint)
	return res, nil
}

// predict returns the class of each pixel, [N, H, W] int64, in evaluation mode.
func predict(m nn.Module, x *bridge.Tensor) *bridge.Tensor {
	nn.Eval(m)
	defer nn.Train(m, true)
	var p *bridge.Tensor
	bridge.NoGrad(func() { p = aten.Argmax(m.Forward(x), aten.I(1), false) })
	return p
}

// evaluate returns each class's intersection over union (summed over all images) and the pixel
// accuracy of the model's masks for x against y.
func evaluate(m nn.Module, x, y *bridge.Tensor) (iou [numClasses]float64, acc float64) {
	bridge.Scope(func() {
		pred := predict(m, x)
		for c := range numClasses {
			p, g := aten.EqScalar(pred, aten.IntScalar(int64(c))), aten.EqScalar(y, aten.IntScalar(int64(c)))
			inter := aten.Sum(aten.LogicalAnd(p, g), nil).Item()
			union := aten.Sum(aten.LogicalOr(p, g), nil).Item()
			if union > 0 {
				iou[c] = inter / union
			}
		}
		acc = aten.Mean(aten.Eq(pred, y), aten.D(bridge.Float32)).Item()
	})
	return iou, acc
}

// savePredictions writes a PNG grid: the images, their masks and the predicted masks, a row each.
func savePredictions(path string, x, y, pred *bridge.Tensor) error {
	var rows *bridge.Tensor
	err := bridge.Try(func() {
		half := aten.FloatScalar(float64(numClasses - 1))
		asImage := func(mask *bridge.Tensor) *bridge.Tensor {
			return aten.Unsqueeze(aten.DivScalar(aten.ToDtype(mask, bridge.Float32, false, false, nil), half), 1).To(bridge.CPU)
		}
		rows = aten.Cat([]*bridge.Tensor{aten.Clamp(x, aten.S(aten.FloatScalar(0)), aten.S(aten.FloatScalar(1))).To(bridge.CPU),
			asImage(y), asImage(pred)}, 0)
	})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|rundir.NoFollow, 0o600)
	if err != nil {
		return err
	}
	err = data.WriteGrid(f, rows, data.Identity(1), data.GridOptions{Cols: int(x.Size(0)), Scale: 3})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
