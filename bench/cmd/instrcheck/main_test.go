package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bench/harness"
)

// TestCommittedRunsAgree checks the committed reports of three consecutive make bench-instr
// runs: every instruction ratio within ±1% of its median.
func TestCommittedRunsAgree(t *testing.T) {
	dir := filepath.Join("..", "..", "results")
	paths, _ := filepath.Glob(filepath.Join(dir, "instr-*.json"))
	if len(paths) < 3 {
		t.Skipf("%d reports in %s: make bench-instr writes them", len(paths), dir)
	}
	reps, _, err := newest(dir, 3)
	require.NoError(t, err)
	rows, err := harness.InstrSpread(reps)
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	require.NoError(t, harness.CheckInstrSpread(rows, 0.01))
	for _, r := range rows {
		require.Len(t, r.Go.Values, 3, r.Name)
	}
}
