// Package trainer is the built-in training run behind `hotcb train` and `make demo`: a small CNN
// (or an MLP) on the synthetic shapes dataset (or MNIST IDX files), on the CPU or a CUDA device,
// instrumented live through a HotKernel over the run directory. It shows progress, dispatches the
// phase events, evaluates each epoch, checkpoints (Python-loadable), resumes, and stops cleanly on
// Ctrl-C or when a callback asks for a stop. Its loss is a loss.Loss registered as loss "main"
// (terms ce, smooth and l2: see TermCE), which `hotcb loss set_params` changes live.
//
// Options.Model may instead name a TorchScript file (torch.jit.save of a scripted or traced
// classifier), which trains the same way through package bridge/jit: its forward must map the
// data's [N, C, H, W] images to [N, classes] logits, which one forward checks before anything is
// written to the run directory. Its submodules are hooked by their PyTorch names (feature maps
// of "layer1.0.conv1"), last.pt holds its state dict under those names, and the run ends by
// writing the trained module as TorchScript to RUN_DIR/model.pt (ScriptFile) for Python's
// torch.jit.load.
package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/jit"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/bridge/torchfile"
	_ "github.com/hotcb/hotcb/callbacks/all" // built-ins, loadable by Go and hotcb names
	"github.com/hotcb/hotcb/checkpoint"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// Options configure a run. The zero value plus a Dir is a sensible default.
type Options struct {
	Dir    string        // run directory (created 0700)
	Device bridge.Device // CPU by default
	Model  string        // "cnn" (default), "mlp", or a TorchScript file of a classifier (package doc)
	Data   string        // "shapes" (default) or "mnist:DIR"
	Epochs int           // default 5
	Steps  int64         // train this many steps in total instead of Epochs epochs
	Batch  int           // default 64
	LR     float64       // Adam learning rate, default 3e-3
	Seed   uint64
	Resume bool // continue from Dir/last.pt
	// TrainN and TestN size the shapes dataset (default 10000 and 2000).
	TrainN, TestN int
	// Progress forces (1) or disables (-1) the one-line progress bar; 0 picks it when Out is a
	// terminal.
	Progress int
	Out      io.Writer // default os.Stdout
	// Kernel tunes the control plane (go_file permissions, budgets, the watchdog, ...).
	Kernel kernel.Options
	// StopGrace is how long a stop (ctx cancelled) lets one safe point run before it gives up on
	// it: it abandons a go_file call, or stops without a compiled callback that holds the
	// training goroutine (default 10s); see Run.
	StopGrace time.Duration
	// DistTimeout bounds each wait for the other ranks of a data-parallel run (default
	// DefaultDistTimeout).
	DistTimeout time.Duration
}

// Summary is what a run reports at the end.
type Summary struct {
	Steps      int64
	Epochs     float64
	TestAcc    float64
	Elapsed    time.Duration
	Checkpoint string
	Script     string // the trained TorchScript module, RUN_DIR/model.pt ("" for a built-in model)
	FeatViz    string // the feature-map gallery ("" when it shows no frame)
	Timing     string // the timing directory ("" when nothing was timed)
	Stopped    string // why the run stopped early ("" when it finished)
}

// DefaultConfig is the hotcb.yaml a new run directory gets: the timing instrument and feature
// maps on, other built-ins listed.
const DefaultConfig = `# hotcb desired state — edit while training runs; reconciled at the next safe point.
version: 1
callbacks:
  timing:
    enabled: true
    target: {kind: module, path: hotcb.modules.cb.callbacks.timing, symbol: TimingCallback}
    init: {every: 50}
  feat_viz:
    enabled: true
    target: {kind: module, path: github.com/hotcb/hotcb/callbacks/featviz, symbol: FeatureViz}
    init: {every: 100, samples: 2, channels: 16}
  # grad_stats:
  #   enabled: true
  #   target: {kind: module, path: hotcb.modules.cb.callbacks.grad_stats, symbol: GradStatsCallback}
  #   init: {every: 50}
  # guard:
  #   enabled: true
  #   target: {kind: module, path: hotcb.modules.cb.callbacks.anomaly_guard, symbol: AnomalyGuardCallback}
  #   init: {action: stop}
`

func (o *Options) defaults() {
	if o.Model == "" {
		o.Model = "cnn"
	}
	if o.Data == "" {
		o.Data = "shapes"
	}
	if o.Epochs <= 0 {
		o.Epochs = 5
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.LR <= 0 {
		o.LR = 3e-3
	}
	if o.TrainN <= 0 {
		o.TrainN = 10000
	}
	if o.TestN <= 0 {
		o.TestN = 2000
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func loadData(o Options) (train, test *data.TensorDataset, err error) {
	switch {
	case o.Data == "shapes":
		train, err = data.Shapes(data.ShapesOptions{N: o.TrainN, Seed: o.Seed + 1})
		if err != nil {
			return nil, nil, err
		}
		test, err = data.Shapes(data.ShapesOptions{N: o.TestN, Seed: o.Seed + 2, Norm: &train.Norm})
		return train, test, err
	case strings.HasPrefix(o.Data, "mnist:"):
		dir := strings.TrimPrefix(o.Data, "mnist:")
		if train, err = data.LoadMNIST(dir, true); err != nil {
			return nil, nil, err
		}
		test, err = data.LoadMNIST(dir, false)
		return train, test, err
	}
	return nil, nil, fmt.Errorf("unknown data %q (want shapes or mnist:DIR)", o.Data)
}

func buildModel(o Options, train *data.TensorDataset) (nn.Module, error) {
	s := train.Images.Shape()
	classes := int64(len(train.Classes))
	switch {
	case o.Model == "cnn":
		return models.NewSmallCNN(s[1], classes), nil
	case o.Model == "mlp":
		return models.MLP(s[1]*s[2]*s[3], 256, classes), nil
	case torchfile.NamesFile(o.Model, "cnn", "mlp"):
		return loadScript(o.Model, o.Device, train)
	}
	return nil, fmt.Errorf("unknown model %q (want cnn, mlp or the path of a TorchScript file)", o.Model)
}

// Run trains until the epochs (or steps) are done, ctx is cancelled (the current step finishes,
// a checkpoint is saved and callbacks are closed), or a callback requests a stop.
// A tensor operation that fails in a training step or the evaluation (a TorchScript model given
// a batch it cannot take, memory running out) ends the run with an error that says where; the
// callbacks are closed and last.pt is as the last epoch left it.
//
// A stop never waits forever on a callback that does not return: once ctx is cancelled, a safe
// point open for StopGrace has its go_file call abandoned (see package controller) and the run
// stops as usual; if a compiled callback holds it, Run saves the checkpoint (a safe point is
// never inside an optimizer step) and returns ErrStuck, leaving the training goroutine behind
// (the process should exit: nothing can end that goroutine).
func Run(ctx context.Context, o Options) (Summary, error) {
	type result struct {
		sum Summary
		err error
	}
	o.defaults()
	done := make(chan result, 1)
	l := &live{}
	go func() {
		sum, err := run(ctx, o, l)
		done <- result{sum, err}
	}()
	select {
	case r := <-done:
		return r.sum, r.err
	case <-ctx.Done():
	}
	grace := o.StopGrace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	t0 := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			return r.sum, r.err
		case <-tick.C:
		}
		k := l.kernel.Load()
		if k == nil || time.Since(t0) < grace {
			continue
		}
		rep := k.Controller().AbandonStuck(grace)
		if rep == nil || rep.Abandonable {
			continue // not stuck, or abandoned and about to return
		}
		return l.emergencyStop(o, rep)
	}
}

// ErrStuck is returned by Run when it stopped while a compiled callback held a safe point.
var ErrStuck = errors.New("stopped with a safe point stuck in a callback")

// live is what the stop path needs of a running run.
type live struct {
	kernel atomic.Pointer[kernel.Kernel]
	model  nn.Module
	opt    *optim.Optimizer
	ckpt   string
	script string        // where a TorchScript model is saved ("" for a built-in one)
	epoch  atomic.Uint64 // float64 bits of env.Epoch at the last safe point seen
}

// emergencyStop ends a run whose training goroutine is stuck in a compiled callback. A safe
// point is never inside an optimizer step, so the model and optimizer are consistent and are
// saved (with the steps completed: the step's own update counts once its optimizer step
// ended); the ledger and the status file are on disk already.
func (l *live) emergencyStop(o Options, rep *rundir.Stuck) (Summary, error) {
	k := l.kernel.Load()
	k.Controller().Logf(nil, "stopping without the training goroutine: %s", rep)
	steps := rep.Step
	switch rep.Event {
	case torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd:
		steps++
	}
	sum := Summary{Steps: steps, Stopped: "interrupted while " + rep.String(), Checkpoint: l.ckpt}
	if l.ckpt == "" { // a rank > 0 of a data-parallel run: rank 0 saves
		return sum, fmt.Errorf("%w: %s", ErrStuck, rep)
	}
	if err := checkpoint.Save(l.ckpt, l.model, l.opt, checkpoint.Info{Step: steps, Epoch: math.Float64frombits(l.epoch.Load())}); err != nil {
		return sum, fmt.Errorf("%w: %s; the checkpoint could not be saved: %v", ErrStuck, rep, err)
	}
	if l.script != "" {
		if err := l.model.(*jit.Module).Save(l.script); err != nil {
			return sum, fmt.Errorf("%w: %s; checkpoint saved to %s, but the TorchScript module could not be: %v", ErrStuck, rep, l.ckpt, err)
		}
		sum.Script = l.script
	}
	fmt.Fprintf(o.Out, "stopped while %s\n  checkpoint  %s (step %d)\n", rep, l.ckpt, steps)
	if sum.Script != "" {
		fmt.Fprintf(o.Out, "  torchscript %s\n", sum.Script)
	}
	fmt.Fprintf(o.Out, "  the callback is still loaded: 'hotcb cb unload %s' before the next start, or start with --no-restore\n", rep.Callback)
	return sum, fmt.Errorf("%w: %s; checkpoint saved to %s", ErrStuck, rep, l.ckpt)
}

// run is Run's training loop, on a goroutine of its own.
func run(ctx context.Context, o Options, l *live) (sum Summary, err error) {
	o.defaults()
	if o.Dir == "" {
		return sum, errors.New("no run directory")
	}
	runtime.LockOSThread() // libtorch's per-thread state; one malloc arena (see README, Memory)
	defer runtime.UnlockOSThread()
	start := time.Now()
	out := o.Out
	progress := o.Progress > 0 || (o.Progress == 0 && isTerminal(out))

	// A data-parallel run (WORLD_SIZE > 1): join the other ranks first; each rank keeps its
	// ledger and outputs in its own directory (rank 0: the run directory).
	rk, err := joinRanks(o)
	if err != nil {
		return sum, fmt.Errorf("joining the data-parallel run: %w", err)
	}
	defer func() {
		if cerr := rk.close(err != nil); cerr != nil && err == nil {
			err = fmt.Errorf("leaving the data-parallel run: %w", cerr)
		}
	}()
	dir := o.Dir
	if rk != nil {
		dir = rundir.RankDir(o.Dir, rk.rank())
		if o.Device.IsCUDA() {
			o.Device = bridge.CUDA(rk.g.LocalRank())
		}
		progress = progress && rk.rank() == 0
	}

	// The data and the model come first: a model that does not load or fit them leaves the run
	// directory as it was.
	train, test, err := loadData(o)
	if err != nil {
		return sum, err
	}
	fmt.Fprintf(out, "hotcb train: libtorch %s on %s; %s: %d train / %d test images, %d classes; model %s; run dir %s\n",
		bridge.Version(), o.Device, o.Data, train.Len(), test.Len(), len(train.Classes), o.Model, dir)
	if rk != nil {
		fmt.Fprintf(out, "data-parallel: rank %d of %d (%s), batch %d per rank (%d in all)\n",
			rk.rank(), rk.g.Size(), rk.g.Backend(), o.Batch, o.Batch*rk.g.Size())
	}
	test = test.To(o.Device)

	bridge.ManualSeed(o.Seed)
	model, err := buildModel(o, train)
	if err != nil {
		return sum, err
	}
	nn.To(model, o.Device)
	nn.Train(model, true) // a TorchScript module may have been saved in eval mode
	if err := rundir.Dir(dir).Ensure(); err != nil {
		return sum, err
	}
	if dir == o.Dir { // rank 0 reads the YAML for every rank
		if err := rundir.Dir(o.Dir).WriteConfigIfAbsent(DefaultConfig); err != nil {
			return sum, err
		}
	}
	ao := optim.DefaultAdam()
	ao.LR = o.LR
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), ao)
	if err != nil {
		return sum, err
	}
	ckpt := filepath.Join(o.Dir, "last.pt")
	sum.Checkpoint = ckpt
	script := ""
	if _, ok := model.(*jit.Module); ok {
		script = filepath.Join(o.Dir, ScriptFile)
	}
	var step int64
	firstEpoch := 0
	if o.Resume {
		info, _, err := checkpoint.Load(ckpt, model, opt)
		if err != nil {
			return sum, fmt.Errorf("resume: %w", err)
		}
		step, firstEpoch = info.Step, int(info.Epoch)
		fmt.Fprintf(out, "resumed from %s: epoch %d, step %d\n", ckpt, firstEpoch, step)
	}
	saver := rk.rank() == 0 // rank 0 writes the checkpoint and the TorchScript module
	l.model, l.opt, l.ckpt, l.script = model, opt, ckpt, script
	if !saver {
		l.ckpt, l.script = "", ""
	}
	if rk != nil {
		if model, err = rk.wrap(model); err != nil {
			return sum, err
		}
	}

	printer := &lineWriter{out: out, tty: progress}
	ko := o.Kernel
	if rk != nil {
		ko.Ranks = rk.g.Board("hotcb/ops")
	}
	// Callbacks' lines and the control plane's go to hotcb.log and to the terminal; the
	// control plane's with a prefix, as the controller marks them in a loop's own log.
	ko.Controller.Log = teeLog(ko.Controller.Log, func(s string) { printer.line("[hotcb] " + s) })
	ko.Controller.Echo = teeLog(ko.Controller.Echo, printer.line)
	k, err := kernel.New(dir, ko)
	if err != nil {
		return sum, err
	}
	l.kernel.Store(k)
	k.RegisterOptimizer("main", opt)
	defer func() {
		if cerr := k.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	env := &torchenv.Env{Framework: "hotcb-go", Model: model, Optimizer: opt, Device: o.Device,
		RunDir: dir} // Log: the kernel's (hotcb.log and the terminal)
	if rk != nil { // not a nil *ranks in the interface
		env.Ranks = rk
	}
	if saver {
		printHints(out, o.Dir)
	}

	device := o.Device
	lopts := data.LoaderOptions{BatchSize: o.Batch, Shuffle: true, Seed: o.Seed + 3, Device: &device}
	loaderCtx := ctx
	if rk != nil { // each rank its share; the ranks stop together (rk.stop), not when ctx ends
		lopts.Shuffle = false
		if lopts.Sampler, err = data.NewDistributedSampler(train.Len(), rk.rank(), rk.g.Size(),
			data.DistributedSamplerOptions{Shuffle: true, Seed: o.Seed + 3}); err != nil {
			return sum, err
		}
		loaderCtx = context.WithoutCancel(ctx)
	}
	loader, err := data.NewLoader(train, lopts)
	if err != nil {
		return sum, err
	}
	defer loader.Close()
	perEpoch := int64(loader.Len())
	totalSteps := int64(o.Epochs) * perEpoch
	epochs := o.Epochs
	if o.Steps > 0 { // --steps wins over --epochs
		totalSteps = o.Steps
		epochs = int((o.Steps + perEpoch - 1) / perEpoch)
	}
	lossCfg := NewLoss(totalSteps) // registered before the first safe point, which restores it
	k.SetTotalSteps(totalSteps)
	k.RegisterLoss("main", lossCfg)
	stepOpts := StepOptions{Loss: lossOf(lossCfg, model, nn.Parameters(unwrapModel(model)))}
	env.Step = step // a resumed run starts where it stopped (ranks schedule ops from here)
	k.Apply(env, torchenv.FitStart)
	t0, s0 := time.Now(), step
	var correct, seen float64
	stop := ""
train:
	for epoch := firstEpoch; epoch < epochs && step < totalSteps; epoch++ {
		env.Phase = "train"
		correct, seen = 0, 0
		for b := range loader.Epoch(loaderCtx, epoch) {
			env.Step, env.Inputs, env.Targets = step, b.X, b.Y
			env.Epoch = float64(epoch) + float64(b.Index)/float64(perEpoch)
			l.epoch.Store(math.Float64bits(env.Epoch))
			// in a bridge.Scope, callbacks unscoped
			if err := StepWith(k, env, model, opt, stepOpts); err != nil {
				where := fmt.Sprintf("training step %d (epoch %d)", step, epoch+1)
				if rk != nil {
					where += fmt.Sprintf(" on rank %d of %d (when another rank stops or dies, the gradient all-reduce fails here)", rk.rank(), rk.g.Size())
				}
				return sum, &modelError{where, err}
			}
			step++
			if step%10 == 0 || step == totalSteps {
				var acc float64
				bridge.NoGrad(func() {
					acc = env.Outputs.Argmax(1, false).Eq(b.Y).To(bridge.Float32).Sum().Item()
				})
				n := float64(b.Y.Size(0))
				correct += acc
				seen += n
				env.Report(MetricAccuracy, acc/n) // into this step's line of the metrics stream
				rate := float64(step-s0) / time.Since(t0).Seconds()
				eta := time.Duration(float64(totalSteps-step)/rate) * time.Second
				printer.progress(fmt.Sprintf("epoch %d/%d step %d/%d loss %.4f acc %.1f%% %.1f steps/s ETA %s",
					epoch+1, epochs, step, totalSteps, env.Loss.Item(), 100*correct/seen, rate, eta.Round(time.Second)))
			}
			if rk != nil {
				why, ok, err := rk.stop(ctx, env, step)
				if err != nil {
					return sum, fmt.Errorf("data-parallel stop: %w", err)
				}
				if ok {
					stop = why
					break train
				}
			} else if why, ok := stopReason(ctx, env); ok {
				stop = why
				break train
			}
			if step >= totalSteps {
				break
			}
		}
		if stop == "" && ctx.Err() != nil && rk == nil {
			stop = "interrupted"
		}
		var valLoss float64
		if sum.TestAcc, valLoss, err = evaluate(k, env, model, test); err != nil {
			return sum, &modelError{fmt.Sprintf("evaluation after epoch %d", epoch+1), err}
		}
		env.Report(MetricValAccuracy, sum.TestAcc)
		env.Report(MetricValLoss, valLoss)
		env.Extra = map[string]any{"metrics": map[string]float64{"test_acc": sum.TestAcc}}
		k.Apply(env, torchenv.EpochEnd)
		printer.done(fmt.Sprintf("epoch %d: test accuracy %.1f%% (step %d, %.1fs)", epoch+1, 100*sum.TestAcc, step, time.Since(start).Seconds()))
		if saver {
			if err := checkpoint.Save(ckpt, unwrapModel(model), opt, checkpoint.Info{Step: step, Epoch: env.Epoch}); err != nil {
				return sum, fmt.Errorf("checkpoint: %w", err)
			}
		}
		if stop != "" {
			break
		}
	}
	if stop != "" && seen > 0 && saver {
		if err := checkpoint.Save(ckpt, unwrapModel(model), opt, checkpoint.Info{Step: step, Epoch: env.Epoch}); err != nil {
			return sum, fmt.Errorf("checkpoint: %w", err)
		}
	}
	if script != "" && saver { // the weights of last.pt, as TorchScript
		if err := unwrapModel(model).(*jit.Module).Save(script); err != nil {
			return sum, fmt.Errorf("saving the trained TorchScript module: %w", err)
		}
		sum.Script = script
	}
	k.Apply(env, torchenv.FitEnd)
	sum.Steps, sum.Epochs, sum.Stopped = step, env.Epoch, stop
	sum.Elapsed = time.Since(start)
	if pngs, _ := filepath.Glob(filepath.Join(dir, "featviz", "*.png")); len(pngs) > 0 {
		sum.FeatViz = filepath.Join(dir, "featviz", "index.html")
	}
	if p := filepath.Join(dir, "timing"); fileExists(filepath.Join(p, "timing.jsonl")) {
		sum.Timing = p
	}
	if !saver {
		sum.Checkpoint = ""
	}
	how := "done"
	if stop != "" {
		how = "stopped (" + stop + ")"
	}
	fmt.Fprintf(out, "%s after %d steps in %.1fs: test accuracy %.1f%%\n", how, step, sum.Elapsed.Seconds(), 100*sum.TestAcc)
	if saver {
		fmt.Fprintf(out, "  checkpoint  %s (Python: torch.load(p)[\"model\"])\n", ckpt)
	}
	if sum.Script != "" {
		fmt.Fprintf(out, "  torchscript %s (Python: torch.jit.load(p), trained, in training mode)\n", sum.Script)
	}
	if sum.FeatViz != "" {
		fmt.Fprintf(out, "  feature maps %s\n", sum.FeatViz)
	}
	if sum.Timing != "" {
		fmt.Fprintf(out, "  timing      %s (timing.jsonl, timing.png)\n", sum.Timing)
	}
	fmt.Fprintf(out, "  ledger      %s\n", rundir.Dir(dir).Path(rundir.Applied))
	return sum, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func stopReason(ctx context.Context, env *torchenv.Env) (string, bool) {
	if ctx.Err() != nil {
		return "interrupted", true
	}
	if ok, why := env.StopRequested(); ok {
		return "a callback asked to stop: " + why, true
	}
	return "", false
}

// modelError is a tensor operation of the model's that failed during the run: the run ends with
// it (the run directory closed, last.pt as the last epoch left it). Its message leaves out
// TorchScript's tracebacks; Unwrap gives the whole error.
type modelError struct {
	where string
	err   error
}

func (e *modelError) Error() string {
	var be *bridge.Error
	if errors.As(e.err, &be) {
		return e.where + ": torch: " + be.Op + ": " + torchMessage(be)
	}
	return e.where + ": " + e.err.Error()
}

func (e *modelError) Unwrap() error { return e.err }

// Names of what a run reports to the metrics stream (RUN_DIR/hotcb.metrics.jsonl) besides what
// the kernel reads itself (loss, lr, throughput): hotcb's names.
const (
	MetricAccuracy    = "accuracy"     // the batch's accuracy, every 10 steps
	MetricValAccuracy = "val_accuracy" // the test set's accuracy, after each epoch
	MetricValLoss     = "val_loss"     // the test set's mean cross-entropy, after each epoch
)

// evaluate runs the test set in eval mode, in batches, dispatching val_batch_end, and returns
// its accuracy and mean cross-entropy. A tensor operation that fails is its error.
func evaluate(k *kernel.Kernel, env *torchenv.Env, model nn.Module, test *data.TensorDataset) (acc, loss float64, err error) {
	nn.Eval(model)
	defer nn.Train(model, true)
	env.Phase = "val"
	defer func() { env.Phase = "train" }()
	n := int64(test.Len())
	var correct, lossSum float64
	const bs = 500
	for i := int64(0); i < n; i += bs {
		m := min(bs, n-i)
		err := bridge.Try(func() {
			bridge.NoGrad(func() {
				x := test.Images.Narrow(0, i, m)
				y := test.Labels.Narrow(0, i, m)
				out := model.Forward(x)
				correct += out.Argmax(1, false).Eq(y).To(bridge.Float32).Sum().Item()
				lossSum += bridge.CrossEntropy(out, y).Item() * float64(m)
				env.Outputs, env.Targets = out, y
			})
		})
		if err != nil {
			return 0, 0, err
		}
		k.Apply(env, torchenv.ValBatchEnd)
	}
	return correct / float64(n), lossSum / float64(n), nil
}

func printHints(out io.Writer, dir string) {
	on, off := configuredCallbacks(dir)
	switch {
	case on == nil && off == nil:
		fmt.Fprintf(out, "callbacks: none in %s (load one with 'hotcb --dir %s cb load', or list it there)\n", rundir.Config, dir)
	default:
		fmt.Fprintf(out, "callbacks in %s: on: %s; loaded but off: %s\n", rundir.Config, listOrNone(on), listOrNone(off))
	}
	fmt.Fprintf(out, "live control (another terminal):\n  hotcb --dir %s status\n", dir)
	if slices.Contains(on, "timing") || slices.Contains(off, "timing") {
		fmt.Fprintf(out, "  hotcb --dir %s cb set_params timing every=20\n", dir)
	}
	if len(off) > 0 {
		fmt.Fprintf(out, "  hotcb --dir %s enable %s\n", dir, off[0])
	}
	if !slices.Contains(on, "grad_stats") && !slices.Contains(off, "grad_stats") {
		fmt.Fprintf(out, "  hotcb --dir %s cb load grad_stats --path hotcb.modules.cb.callbacks.grad_stats --symbol GradStatsCallback --init every=25\n", dir)
	}
	fmt.Fprintf(out, "  hotcb --dir %s cb load gradnorm --file examples/callbacks/grad_norm.go --symbol GradNorm --init every=10\n", dir)
	fmt.Fprintf(out, "  hotcb --dir %s opt set_params lr=1e-3\n", dir)
	fmt.Fprintf(out, "  hotcb --dir %s loss set_params terms.smooth=true l2_w=5e-4\n", dir)
	if len(on) > 0 {
		fmt.Fprintf(out, "  hotcb --dir %s disable %s\n", dir, on[len(on)-1])
	}
}

// configuredCallbacks lists the callbacks the run directory's YAML turns on and those it loads
// turned off (both nil when it has none or cannot be read: the kernel says why).
func configuredCallbacks(dir string) (on, off []string) {
	b, _, err := rundir.ReadControl(rundir.Dir(dir).Path(rundir.Config))
	if err != nil {
		return nil, nil
	}
	specs, err := controller.ParseConfig(b)
	if err != nil {
		return nil, nil
	}
	for _, s := range specs {
		if s.Enabled {
			on = append(on, s.ID)
		} else {
			off = append(off, s.ID)
		}
	}
	return on, off
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// lineWriter prints log lines and progress: one rewritten line on a terminal, plain lines
// (every 50 steps' worth of updates) otherwise.
type lineWriter struct {
	mu   sync.Mutex // the watchdog logs from its own goroutine
	out  io.Writer
	tty  bool
	last string
	n    int
}

func (w *lineWriter) line(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tty && w.last != "" {
		fmt.Fprint(w.out, "\r\033[K")
	}
	fmt.Fprintln(w.out, s)
	if w.tty && w.last != "" {
		fmt.Fprint(w.out, w.last)
	}
}

func (w *lineWriter) progress(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if w.tty {
		w.last = s
		fmt.Fprint(w.out, "\r\033[K"+s)
		return
	}
	if w.n%5 == 0 {
		fmt.Fprintln(w.out, s)
	}
}

func (w *lineWriter) done(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tty {
		fmt.Fprint(w.out, "\r\033[K")
		w.last = ""
	}
	fmt.Fprintln(w.out, s)
}

// teeLog sends each line to both functions (either may be nil).
func teeLog(a, b func(string)) func(string) {
	if a == nil {
		return b
	}
	return func(s string) { a(s); b(s) }
}
