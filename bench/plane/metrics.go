package plane

import (
	"fmt"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/metrics"
	"github.com/hotcb/hotcb/torchenv"
)

// The metrics-stream rows of MeasureApply: the kernel's safe points of one training step as
// trainer.StepWith makes them (train_step_start, forward_end, backward_end, then
// optimizer_step_end + train_step_end + train_batch_end), with the env of a real step on the
// CPU — a scalar loss, an SGD optimizer, a batch of 64 inputs — and no callbacks, with the
// stream off, on at a step it writes (loss read, lr, batch size, throughput, a line formatted
// and, every 500 ms, written), and on at a step the stride skips. The stream's cost per step
// is the difference with the first row.
const (
	streamOff       = "off"
	streamEvery     = "every step written"
	streamDecimated = "decimated"
)

var streamModes = []string{streamOff, streamEvery, streamDecimated}

// stepEvents are a step's safe points, as slices so that the calls allocate nothing themselves.
var stepEvents = [][]string{{torchenv.TrainStepStart}, {torchenv.ForwardEnd}, {torchenv.BackwardEnd},
	{torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd}}

// openStream is a kernel over dir with the metrics stream in mode, and the env of a step.
func openStream(dir, mode string) (*plane, *torchenv.Env, error) {
	mo := kernel.MetricsOptions{Off: mode == streamOff}
	if mode == streamEvery {
		mo.Stream.Full = -1
	}
	reg := callback.NewRegistry()
	k, err := kernel.New(dir, kernel.Options{Metrics: mo, Controller: controller.Options{Registry: reg}})
	if err != nil {
		return nil, nil, err
	}
	w := bridge.Ones(bridge.Shape{4}).SetRequiresGrad(true)
	opt, err := optim.NewSGD(optim.Params(w), optim.SGDOptions{LR: 0.1})
	if err != nil {
		k.Close()
		return nil, nil, err
	}
	env := &torchenv.Env{Phase: "train", Loss: bridge.Scalar(0.5), Optimizer: opt,
		Inputs: bridge.Zeros(bridge.Shape{64, 1, 28, 28}), Framework: "hotcb-go"}
	if mode == streamDecimated {
		env.Step = 1 << 40 // deep in the stride: 2^26 steps apart
	}
	return &plane{target: Kernel, dir: dir, k: k, ctl: k.Controller()}, env, nil
}

// stepOf runs one step's safe points.
func stepOf(p *plane, env *torchenv.Env) func() {
	return func() {
		for _, ev := range stepEvents {
			p.Apply(env, ev...)
		}
		env.Step++
	}
}

func streamRow(mode string) harness.PlaneResult {
	r := harness.PlaneResult{Name: "kernel step (4 safe points), metrics stream " + mode, Target: Kernel,
		Kind: "metrics stream", Unit: "ns/step"}
	switch mode {
	case streamOff:
		r.Note = "the stream's cost per step is the difference of the next two rows with this one"
	case streamEvery:
		r.Note = fmt.Sprintf("what the first %d steps of a run cost: loss (CPU .item()), lr, batch size, throughput, one line formatted (%s)",
			metrics.DefaultFull, "written in batches by a goroutine")
	case streamDecimated:
		r.Note = "a step the stride skips: what is reported is carried, nothing read or formatted"
	}
	return r
}
