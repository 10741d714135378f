package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// rankTestEnv marks a Go rank process that TestDataParallelJobs started from this test binary.
const rankTestEnv = "HOTCB_BENCH_TEST_DDP_RANK"

// TestDDPRankProcess is not a test of its own: it is the body of a Go rank of
// TestDataParallelJobs's job (this test binary re-executed); run directly, it skips.
func TestDDPRankProcess(t *testing.T) {
	if os.Getenv(rankTestEnv) == "" {
		t.Skip("a rank of TestDataParallelJobs: runs only as its subprocess")
	}
	if err := runDDPRank(1); err != nil {
		fmt.Fprintln(os.Stderr, "rank:", err)
		os.Exit(1)
	}
	os.Exit(0) // no test output on stdout after rank 0's answers
}

// TestDataParallelJobs runs both data-parallel rows the way benchrun does, on a Go job of this
// test binary's ranks and ref.py's, in two short rounds: the jobs start, load the saved inputs,
// agree on rank 0's losses in both modes, and time rounds; DDP's later losses differ from the
// one process's (the gradients are averaged with the other rank's), and the scaling is computed.
func TestDataParallelJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four rank processes")
	}
	py := torchpy.Interpreter(t)
	for _, kv := range harness.ThreadEnvFor(1) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv(rankTestEnv, "1")
	s := &session{dir: t.TempDir(), checks: map[string]*harness.Check{}, meter: harness.StartCPUMeter(), threads: 1,
		python: py, pySrc: "../../python/ref.py",
		goRank: []string{os.Args[0], "-test.run=^TestDDPRankProcess$", "-test.count=1"}}
	defer s.closeJobs()
	plan := harness.Plan{Rounds: 2, RoundTime: 20 * time.Millisecond}
	var results []harness.Result
	for _, b := range benches {
		if !b.Job {
			continue
		}
		res, err := s.runJob(b, plan)
		require.NoError(t, err, b.Name)
		require.Len(t, res.GoRounds, 2)
		require.Len(t, res.PyRounds, 2)
		require.False(t, res.HasCpp())
		require.NotNil(t, res.Check)
		require.LessOrEqual(t, res.Check.MaxRelDiff, lossTol, "Go and Python agree")
		t.Logf("%s: go %.2f ms, python %.2f ms; rank 0's losses %v", b.Name, res.GoMedian, res.PyMedian, res.Check.GoLosses)
		results = append(results, res)
	}
	require.Len(t, results, 2)
	local, ddp := results[0].Check.GoLosses, results[1].Check.GoLosses
	require.Equal(t, local[0], ddp[0], "the same first forward pass")
	require.NotEqual(t, local[1], ddp[1], "DDP's second step follows the gradient averaged over both ranks")

	s.closeJobs()
	require.Nil(t, s.jobs)
	addScaling(results)
	sc := results[1].Scaling
	require.NotNil(t, sc)
	require.Equal(t, results[0].Name, sc.Baseline)
	require.InDelta(t, 2*results[0].GoMedian/results[1].GoMedian, sc.GoSpeedup, 1e-9)
	require.InDelta(t, 2*results[0].PyMedian/results[1].PyMedian, sc.PySpeedup, 1e-9)
	t.Log(sc)
}
