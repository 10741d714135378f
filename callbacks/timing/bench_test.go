package timing

import (
	"testing"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/torchenv"
)

func benchTiming(b *testing.B) (*Timing, *torchenv.Env) {
	tm, err := New("timing", map[string]any{"every": 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	env := &torchenv.Env{RunDir: b.TempDir(), Log: func(string) {}}
	if err := tm.OnAttach(env); err != nil {
		b.Fatal(err)
	}
	return tm, env
}

// BenchmarkHandle is the cost of one timed event on the CPU that does not close a step (forward_end,
// backward_end, optimizer_step_end): a clock read and a ring write.
func BenchmarkHandle(b *testing.B) {
	tm, env := benchTiming(b)
	b.ReportAllocs()
	evs := phases[:3]
	i := 0
	for b.Loop() {
		if err := tm.Handle(evs[i], env); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(evs) {
			i = 0
		}
	}
}

// BenchmarkHandleStep is a whole step of the four phase events (per event), with the inputs'
// batch size read at train_step_end.
func BenchmarkHandleStep(b *testing.B) {
	for _, tc := range []struct {
		name   string
		inputs *bridge.Tensor
	}{{"no_inputs", nil}, {"inputs", bridge.Zeros(bridge.Shape{64, 1, 28, 28})}} {
		b.Run(tc.name, func(b *testing.B) {
			tm, env := benchTiming(b)
			env.Inputs = tc.inputs
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := tm.Handle(phases[i], env); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(phases) {
					i = 0
					env.Step++
				}
			}
		})
	}
}

// BenchmarkHandleIgnored is an event the callback does not time.
func BenchmarkHandleIgnored(b *testing.B) {
	tm, env := benchTiming(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := tm.Handle(torchenv.TrainBatchEnd, env); err != nil {
			b.Fatal(err)
		}
	}
}
