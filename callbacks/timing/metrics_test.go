package timing

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/torchenv"
)

func reports(env *torchenv.Env) map[string]float64 {
	out := map[string]float64{}
	env.DrainReports(func(n string, v float64) { out[n] = v })
	return out
}

// Each step's host times go to the metrics stream through env.Report.
func TestReportsEachStepsTimes(t *testing.T) {
	r := newRig(t, map[string]any{"every": 1000})
	r.step(1, 3, 10, 6, 0)
	require.Equal(t, map[string]float64{}, reports(r.env), "the first step only starts the clock")
	r.step(1, 3, 10, 6, 0)
	require.Equal(t, map[string]float64{
		MetricStep:           20,
		"time/forward_ms":    3,
		"time/backward_ms":   10,
		"time/optimizer_ms":  6,
		"time/data/other_ms": 1,
		"time/optimizer_step_end->train_step_end_ms": 0,
	}, reports(r.env))
	r.step(2, 4, 10, 6, 0)
	got := reports(r.env)
	require.Equal(t, 22.0, got[MetricStep])
	require.Equal(t, 4.0, got["time/forward_ms"])
	require.Equal(t, 2.0, got["time/data/other_ms"])
}

func TestReportsSumMicroBatches(t *testing.T) {
	r := newRig(t, map[string]any{"every": 1000})
	for range 2 {
		for _, ev := range []string{torchenv.TrainStepStart, torchenv.ForwardEnd, torchenv.BackwardEnd,
			torchenv.ForwardEnd, torchenv.BackwardEnd, torchenv.ForwardEnd, torchenv.BackwardEnd,
			torchenv.OptimizerStepEnd, torchenv.TrainStepEnd} {
			r.clock += map[string]int64{torchenv.ForwardEnd: 2e6, torchenv.BackwardEnd: 3e6}[ev] + 1e6
			require.NoError(t, r.tm.Handle(ev, r.env))
		}
		r.env.Step++
	}
	got := reports(r.env)
	require.Equal(t, 9.0, got["time/forward_ms"], "three micro-batches of 3 ms")
	require.Equal(t, 12.0, got["time/backward_ms"])
	require.Equal(t, 24.0, got[MetricStep])
}
