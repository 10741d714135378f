package system

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/torchenv"
)

func TestReportsToTheMetricsStream(t *testing.T) {
	env := &torchenv.Env{RunDir: t.TempDir(), Log: func(string) {}}
	c, err := New("sys", map[string]any{"every": 2, "log": false})
	require.NoError(t, err)
	defer c.Close()
	got := map[string]float64{}
	for s := int64(0); s < 3; s++ {
		env.Step = s
		require.NoError(t, c.Handle(torchenv.TrainStepEnd, env))
		switch s {
		case 0:
			env.DrainReports(func(n string, v float64) {
				require.NotEqual(t, MetricCPUPercent, n, "no CPU share on the first report")
			})
		case 1:
			env.DrainReports(func(n string, v float64) { t.Errorf("step 1 is not a report's: %s", n) })
		}
	}
	env.DrainReports(func(n string, v float64) { got[n] = v })
	s := c.Last()
	require.Equal(t, float64(s.RSS), got[MetricRSS])
	require.Equal(t, s.CPUPercent, got[MetricCPUPercent])
	require.Equal(t, float64(s.GoHeap), got[MetricGoHeap])
	require.Contains(t, got, MetricTorchLive)
	require.NotContains(t, got, MetricCUDAAllocated, "no CUDA figures on the CPU")
}
