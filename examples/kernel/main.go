// Command kernel is the smallest complete training loop under a HotKernel: the loop of
// examples/cnn (a SmallCNN on the synthetic shapes), with kernel.New(runDir) as its whole control
// plane. The kernel tails the run directory's hotcb.commands.jsonl and hotcb.yaml, routes each op
// to the callbacks (module cb), the optimizer (module opt) or freeze/replay (module core), and
// records every op in the ledger hotcb.applied.jsonl.
//
//	go run ./examples/kernel -steps 200 -dir runs/kernel-example
//
// While it trains (-delay slows it down; commands already in a new run directory's commands
// file are applied at the first step), drive it from another terminal with the hotcb CLI:
//
//	hotcb --dir runs/kernel-example cb load feat_viz --file examples/callbacks/feat_viz.go --symbol FeatureVizCallback --init every=50
//	hotcb --dir runs/kernel-example cb load gradnorm --file examples/callbacks/grad_norm.go --symbol GradNorm --init every=20
//	hotcb --dir runs/kernel-example opt set_params lr=1e-3
//	hotcb --dir runs/kernel-example status
//
// or by appending the same JSON lines yourself:
//
//	echo '{"op":"load","id":"gradnorm","target":{"kind":"go_file","path":"examples/callbacks/grad_norm.go","symbol":"GradNorm"},"init":{"every":20}}' >> runs/kernel-example/hotcb.commands.jsonl
//	echo '{"module":"opt","op":"set_params","id":"main","params":{"lr":0.001}}' >> runs/kernel-example/hotcb.commands.jsonl
//	cat runs/kernel-example/hotcb.applied.jsonl
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	_ "github.com/hotcb/hotcb/callbacks/all" // the built-in callbacks, by Go and hotcb names
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

func main() {
	steps := flag.Int64("steps", 200, "training steps")
	dir := flag.String("dir", "runs/kernel-example", "run directory (created 0700)")
	device := flag.String("device", "cpu", "cpu or cuda[:n]")
	lr := flag.Float64("lr", 3e-3, "Adam learning rate (change it live: hotcb opt set_params lr=...)")
	delay := flag.Duration("delay", 50*time.Millisecond, "pause after each step, to leave time to type commands")
	flag.Parse()
	dev, err := bridge.ParseDevice(*device)
	if err != nil {
		log.Fatal(err)
	}
	// Ctrl-C finishes the current step and closes the kernel (callbacks' Close, ledger).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, options{Dir: *dir, Steps: *steps, Device: dev, LR: *lr, Delay: *delay, Out: os.Stdout}); err != nil {
		log.Fatal(err)
	}
}

// options configure run; the zero value needs only Dir and Steps.
type options struct {
	Dir    string
	Steps  int64
	Device bridge.Device
	LR     float64       // default 3e-3
	Delay  time.Duration // pause after each step
	Out    io.Writer     // default os.Stdout
	Kernel kernel.Options
}

// result is what a run reports.
type result struct {
	Steps int64
	Loss  float64 // the last step's loss
	LR    float64 // the learning rate at the end: opt set_params changes it
}

func run(ctx context.Context, o options) (res result, err error) {
	if o.LR <= 0 {
		o.LR = 3e-3
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	// One OS thread for the loop: libtorch keeps grad mode and the CUDA stream per thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	train, err := data.Shapes(data.ShapesOptions{N: 2000, Seed: 1})
	if err != nil {
		return res, err
	}
	bridge.ManualSeed(0)
	model := models.NewSmallCNN(1, int64(len(train.Classes)))
	nn.To(model, o.Device)
	ao := optim.DefaultAdam()
	ao.LR = o.LR
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), ao)
	if err != nil {
		return res, err
	}
	dev := o.Device
	loader, err := data.NewLoader(train, data.LoaderOptions{BatchSize: 32, Shuffle: true, Seed: 2, Device: &dev})
	if err != nil {
		return res, err
	}
	defer loader.Close()

	// The kernel: one call gives the run directory its commands, YAML, ledger, status and log.
	k, err := kernel.New(o.Dir, o.Kernel)
	if err != nil {
		return res, err
	}
	defer func() {
		// Close unloads the callbacks (their Close) and settles replay; keep its error.
		if cerr := k.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	k.RegisterOptimizer("main", opt) // what `hotcb opt set_params` addresses by default

	env := &torchenv.Env{Framework: "hotcb-go", Model: model, Optimizer: opt, Device: o.Device, RunDir: o.Dir,
		Phase: "train", Log: func(s string) { fmt.Fprintln(o.Out, s) }}
	d := rundir.Dir(o.Dir)
	fmt.Fprintf(o.Out, "kernel example: libtorch %s on %s, %d steps; run dir %s\n", bridge.Version(), o.Device, o.Steps, o.Dir)
	fmt.Fprintf(o.Out, `drive it from another terminal:
  hotcb --dir %[1]s cb load feat_viz --file examples/callbacks/feat_viz.go --symbol FeatureVizCallback --init every=50
  hotcb --dir %[1]s opt set_params lr=1e-3
  echo '{"op":"load","id":"gradnorm","target":{"kind":"go_file","path":"examples/callbacks/grad_norm.go","symbol":"GradNorm"},"init":{"every":20}}' >> %[2]s
  tail %[3]s
`, o.Dir, d.Path(rundir.Commands), d.Path(rundir.Applied))

	// The phase events, in hotcb's order; each Apply is a safe point where pending ops land.
	k.Apply(env, torchenv.FitStart)
	var step int64
train:
	for epoch := 0; step < o.Steps && ctx.Err() == nil; epoch++ {
		for b := range loader.Epoch(ctx, epoch) {
			env.Step, env.Inputs, env.Targets = step, b.X, b.Y
			env.Epoch = float64(epoch) + float64(b.Index)/float64(loader.Len())
			// The step as hotcb train runs it: in a bridge.Scope (its tensors freed on return),
			// the kernel's callbacks unscoped, env left with detached copies after the update.
			trainer.Step(k, env, model, opt)
			step++
			if step%50 == 0 || step == o.Steps {
				fmt.Fprintf(o.Out, "step %4d  loss %.4f  lr %.2g\n", step, env.Loss.Item(), opt.LR(0))
			}
			if stop, why := env.StopRequested(); stop { // e.g. anomaly_guard with action=stop
				fmt.Fprintf(o.Out, "a callback asked to stop: %s\n", why)
				break train
			}
			if step >= o.Steps {
				break
			}
			if o.Delay > 0 {
				time.Sleep(o.Delay)
			}
		}
		k.Apply(env, torchenv.EpochEnd)
	}
	k.Apply(env, torchenv.FitEnd)
	res.Steps, res.LR = step, opt.LR(0)
	if env.Loss != nil {
		res.Loss = env.Loss.Item()
	}
	fmt.Fprintf(o.Out, "done: %d steps, loss %.4f; ledger %s, status %s\n", res.Steps, res.Loss, d.Path(rundir.Applied), d.Path(rundir.Status))
	return res, nil
}
