package stats_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callbacks/stats"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
)

func TestGradStatsReportsToTheMetricsStream(t *testing.T) {
	env, _ := newEnv(t)
	model := models.MLP(4, 8, 3)
	x, y := tinyBatch()
	step(env, model, x, y)
	gs, err := stats.NewGradStats("gs", map[string]any{"every": 2})
	require.NoError(t, err)
	defer gs.Close()
	got := map[string]float64{}
	env.Step = 1
	require.NoError(t, gs.Handle(torchenv.BackwardEnd, env))
	env.DrainReports(func(n string, v float64) { got[n] = v })
	require.Empty(t, got, "not a reporting step")
	env.Step = 2
	require.NoError(t, gs.Handle(torchenv.BackwardEnd, env))
	env.DrainReports(func(n string, v float64) { got[n] = v })
	require.Equal(t, map[string]float64{stats.MetricGradNorm: gs.Last().Norm, stats.MetricGradMaxAbs: gs.Last().MaxAbs}, got)
	require.Greater(t, got[stats.MetricGradNorm], 0.0)
}
