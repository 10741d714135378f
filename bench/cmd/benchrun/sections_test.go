package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSections(t *testing.T) {
	s, err := parseSections("memory, plane,plane")
	require.NoError(t, err)
	require.Equal(t, []string{"plane", "memory"}, s.list) // run order, no duplicates
	require.True(t, s.has("plane"))
	require.False(t, s.has("steps"))

	s, err = parseSections("all")
	require.NoError(t, err)
	require.Equal(t, allSections, s.list)

	_, err = parseSections("plane,latncy")
	require.ErrorContains(t, err, `unknown section "latncy"`)
	_, err = parseSections(" , ")
	require.ErrorContains(t, err, "no section")
}

func TestSmokeSizesAreSmaller(t *testing.T) {
	full, smoke := sizes(false), sizes(true)
	require.Less(t, smoke.apply.Rounds*int(smoke.apply.RoundTime), full.apply.Rounds*int(full.apply.RoundTime))
	require.Less(t, smoke.latency.Commands, full.latency.Commands)
	require.Less(t, smoke.cli.Runs+smoke.cli.TorchRuns, full.cli.Runs+full.cli.TorchRuns)
	require.Equal(t, 30, full.cli.Runs)
	require.Less(t, smoke.overhead.Rounds*smoke.overhead.StepsPerRound, full.overhead.Rounds*full.overhead.StepsPerRound)
	require.Less(t, smoke.memory.CNNSteps, full.memory.CNNSteps)
	require.Equal(t, 20000, full.memory.MLPSteps)
	require.Equal(t, 2000, full.memory.CNNSteps)
}
