package kernel_test

import (
	"testing"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/metrics"
	"github.com/hotcb/hotcb/torchenv"
)

// BenchmarkMetricsStep is the kernel's cost for one training step's safe points (as
// trainer.StepWith makes them) on the CPU with no callbacks, by state of the metrics stream:
// off, at a step it writes, at a step the stride skips. The stream's own cost per step is the
// difference with off.
func BenchmarkMetricsStep(b *testing.B) {
	events := [][]string{{torchenv.TrainStepStart}, {torchenv.ForwardEnd}, {torchenv.BackwardEnd},
		{torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd}}
	for _, c := range []struct {
		name  string
		mo    kernel.MetricsOptions
		start int64
	}{
		{"off", kernel.MetricsOptions{Off: true}, 0},
		{"written", kernel.MetricsOptions{Stream: metrics.Options{Full: -1}}, 0},
		{"decimated", kernel.MetricsOptions{}, 1 << 40},
	} {
		b.Run(c.name, func(b *testing.B) {
			k, err := kernel.New(b.TempDir(), kernel.Options{Metrics: c.mo, Controller: controller.Options{Registry: callback.NewRegistry()}})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			w := bridge.Ones(bridge.Shape{4}).SetRequiresGrad(true)
			opt, err := optim.NewSGD(optim.Params(w), optim.SGDOptions{LR: 0.1})
			if err != nil {
				b.Fatal(err)
			}
			env := &torchenv.Env{Phase: "train", Step: c.start, Loss: bridge.Scalar(0.5), Optimizer: opt,
				Inputs: bridge.Zeros(bridge.Shape{64, 1, 28, 28})}
			b.ReportAllocs()
			for b.Loop() {
				for _, ev := range events {
					k.Apply(env, ev...)
				}
				env.Report("acc", 0.5)
				env.Step++
			}
		})
	}
}
