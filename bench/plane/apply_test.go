package plane

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMeasureApplyRowsAndGoals(t *testing.T) {
	rows, err := MeasureApply(ApplyOptions{Rounds: 2, RoundTime: 2 * time.Millisecond, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, rows, 12)
	goals := 0
	for _, r := range rows {
		t.Logf("%-45s %8.1f ns [%.1f–%.1f] allocs %.2f", r.Name, r.Median, r.Min, r.Max, r.AllocsPerOp)
		require.Len(t, r.Rounds, 2, r.Name)
		require.Greater(t, r.Median, 0.0, r.Name)
		require.LessOrEqual(t, r.Min, r.Median)
		require.LessOrEqual(t, r.Median, r.Max)
		if r.GoalMax > 0 {
			goals++
			require.NotNil(t, r.Met, r.Name)
			require.Equal(t, r.Median <= r.GoalMax, *r.Met, r.Name)
		} else {
			require.Nil(t, r.Met, r.Name)
		}
	}
	require.Equal(t, 4, goals) // controller 32, kernel 32, two interpreted
	for _, r := range rows[9:] {
		require.Equal(t, "metrics stream", r.Kind)
		require.Equal(t, "ns/step", r.Unit)
	}
	require.Contains(t, rows[9].Name, "off")
}
