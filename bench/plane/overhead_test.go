package plane

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOverheadRowsGoal(t *testing.T) {
	times := [][]float64{
		{10, 10, 11},     // none
		{10.1, 10.1, 11}, // timing
		{10.2, 10.4, 11}, // timing + feature viz: +2% on the medians
		{12, 13, 14},     // all
	}
	names := []string{"none", "timing", "timing + feature viz", "all built-ins"}
	cbs := [][]string{{}, {"timing"}, {"timing", "feat_viz"}, {"timing", "feat_viz", "grad_stats"}}
	rows := overheadRows(times, func(i int) (string, []string) { return names[i], cbs[i] }, 50, 50)
	require.Len(t, rows, 4)
	require.Zero(t, rows[0].OverheadPct)
	require.Nil(t, rows[0].Met)
	require.InDelta(t, 4.0, rows[2].OverheadPct, 1e-9) // median 10.4 vs 10
	require.NotNil(t, rows[2].Met)
	require.False(t, *rows[2].Met)
	require.InDelta(t, 2.0, rows[2].Paired.Median, 1e-9) // 2%, 4%, 0%
	require.InDelta(t, 30.0, rows[3].OverheadPct, 1e-9)
	require.Nil(t, rows[3].Met)
	require.Contains(t, rows[3].Note, "every 50 steps")

	times[2] = []float64{10.1, 10.2, 11}
	rows = overheadRows(times, func(i int) (string, []string) { return names[i], cbs[i] }, 50, 50)
	require.True(t, *rows[2].Met)
}

func TestMeasureOverheadSmall(t *testing.T) {
	dir := t.TempDir()
	rows, err := MeasureOverhead(OverheadOptions{Rounds: 1, StepsPerRound: 3, FeatvizEvery: 2, Dir: dir})
	require.NoError(t, err)
	require.Len(t, rows, 4)
	for _, r := range rows {
		t.Logf("%-22s %.2f ms/step %+.1f%%", r.Name, r.Median, r.OverheadPct)
		require.Greater(t, r.Median, 0.0)
		require.Len(t, r.Rounds, 1)
	}
	require.Equal(t, []string{"timing", "feat_viz"}, rows[2].Callbacks)
	require.Len(t, rows[3].Callbacks, 8)
	// feature viz captured in the run directory of its configuration
	_, err = os.Stat(filepath.Join(dir, "overhead-2", "featviz"))
	require.NoError(t, err)
}
