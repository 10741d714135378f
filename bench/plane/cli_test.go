package plane

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/rundir"
)

func TestMeasureCLIWithAFakeCLI(t *testing.T) {
	dir := t.TempDir()
	rows, err := MeasureCLI(CLIOptions{CLI: fakeCLI(t, "exit 0"), TorchCLI: fakeCLI(t, "exit 0"), Runs: 4, TorchRuns: 2, Dir: dir})
	require.NoError(t, err)
	require.Len(t, rows, 3)
	for i, r := range rows {
		t.Logf("%s: %.3f ms [%.3f–%.3f]", r.Name, r.Median, r.Min, r.Max)
		require.Empty(t, r.Errors)
		require.Equal(t, map[int]int{0: 4, 1: 4, 2: 2}[i], r.Runs)
		require.Len(t, r.Times, r.Runs)
		require.Positive(t, r.Min)
		require.Equal(t, "ms", r.Unit)
		if i < 2 {
			require.NotNil(t, r.Met)
			require.Equal(t, r.Median <= GoalCLIMs, *r.Met)
		} else {
			require.Nil(t, r.Met, "the hotcb-torch row has no goal")
		}
	}
	st, err := rundir.ReadStatus(filepath.Join(dir, "cli", rundir.Status))
	require.NoError(t, err)
	require.Len(t, st.Callbacks, 8)

	// A CLI that fails is an error and fails the goal; three are enough.
	rows, err = MeasureCLI(CLIOptions{CLI: fakeCLI(t, "echo broken >&2; exit 1"), Runs: 5, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Len(t, rows[0].Errors, 3)
	require.Contains(t, rows[0].Errors[0], "broken")
	require.False(t, *rows[0].Met)

	_, err = MeasureCLI(CLIOptions{CLI: filepath.Join(t.TempDir(), "missing"), Dir: t.TempDir()})
	require.ErrorIs(t, err, os.ErrNotExist)
}
