package timing

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/torchenv"
)

// fakeRanks is a data-parallel run as the timing callback sees it: the wait totals are set by
// the test, and Share answers with the other ranks' values in others (absent: not answered).
type fakeRanks struct {
	rank, size int
	wait       torchenv.AllReduceWait
	measured   bool
	others     map[int]float64
	shareErr   error

	keys     []string
	shared   []float64
	timeouts []time.Duration
}

func (f *fakeRanks) Rank() int { return f.rank }
func (f *fakeRanks) Size() int { return f.size }
func (f *fakeRanks) AllReduceWait() (torchenv.AllReduceWait, bool) {
	return f.wait, f.measured
}
func (f *fakeRanks) Share(key string, v float64, timeout time.Duration) ([]float64, []int, error) {
	f.keys, f.shared, f.timeouts = append(f.keys, key), append(f.shared, v), append(f.timeouts, timeout)
	if f.shareErr != nil {
		return nil, nil, f.shareErr
	}
	vals := make([]float64, f.size)
	var missing []int
	for r := range vals {
		switch v2, ok := f.others[r]; {
		case r == f.rank:
			vals[r] = v
		case ok:
			vals[r] = v2
		default:
			vals[r] = math.NaN()
			missing = append(missing, r)
		}
	}
	return vals, missing, nil
}

// add records n iterations (one step's, n > 1 with gradient accumulation) that waited w ms in all.
func (f *fakeRanks) add(n int64, w float64) {
	d := time.Duration(w * 1e6)
	f.measured = true
	f.wait.Iteration += n
	f.wait.Measured += n
	f.wait.Last = d / time.Duration(n)
	f.wait.Total += d
}

// TestDataParallelWaitAndSlowestRank: rank 0 of 3 with 20 ms steps that wait 2 or 6 ms for the
// all-reduce; rank 1 answers a larger compute time, rank 2 a smaller one.
func TestDataParallelWaitAndSlowestRank(t *testing.T) {
	r := newRig(t, map[string]any{"every": 10, "window": 100})
	f := &fakeRanks{size: 3, others: map[int]float64{1: 24, 2: 15}}
	r.env.Ranks = f
	for k := range 21 {
		if k > 0 { // c10d measures a step when the next one begins
			f.add(1, float64(2+4*(k%2)))
		}
		r.step(1, 3, 10, 6, 0)
	}
	recs := r.records()
	require.Len(t, recs, 2)
	for i, rec := range recs {
		dp := rec.DataParallel
		require.NotNil(t, dp, "record %d", i)
		require.Equal(t, 0, dp.Rank)
		require.Equal(t, 3, dp.Size)
		require.EqualValues(t, 10, dp.Steps, "the interval since the previous record")
		require.Equal(t, 10, dp.AllReduceWaitMs.N)
		require.InDelta(t, 4, dp.AllReduceWaitMs.Mean, 1e-9)
		require.InDelta(t, 4, dp.AllReduceWaitMs.P50, 1e-9)
		require.InDelta(t, 6, dp.AllReduceWaitMs.Max, 1e-9)
		require.InDelta(t, 0.2, dp.AllReduceWaitShare, 1e-9)
		require.InDelta(t, 16, dp.ComputeMs, 1e-9)
		require.Len(t, dp.RankComputeMs, 3)
		require.InDelta(t, 16, *dp.RankComputeMs[0], 1e-9)
		require.InDelta(t, 24, *dp.RankComputeMs[1], 1e-9)
		require.InDelta(t, 15, *dp.RankComputeMs[2], 1e-9)
		require.NotNil(t, dp.SlowestRank)
		require.Equal(t, 1, *dp.SlowestRank)
		require.InDelta(t, 9, dp.SlowestByMs, 1e-9)
		require.InDelta(t, 60, dp.SlowestByPct, 1e-9)
		require.Empty(t, dp.Missing)
		require.Empty(t, dp.Note)
	}
	require.Equal(t, []string{"timing/timing/10/10", "timing/timing/20/20"}, f.keys, "keys named by the step")
	require.Equal(t, []time.Duration{1080 * time.Millisecond, 1080 * time.Millisecond}, f.timeouts, "1s + 4 max steps")
	require.Contains(t, r.lines[1], "| rank 0/3: all-reduce wait p50 4.00ms mean 4.00 (20% of step); slowest rank 1 by 9.00ms (+60%)")

	b, err := os.ReadFile(filepath.Join(r.env.RunDir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.Split(string(b), "\n")[0]), &raw))
	dp := raw["data_parallel"].(map[string]any)
	for _, k := range []string{"rank", "size", "steps", "allreduce_wait_ms", "allreduce_wait_share", "compute_ms",
		"rank_compute_ms", "slowest_rank", "slowest_by_ms", "slowest_by_pct"} {
		require.Contains(t, dp, k)
	}
}

// TestDataParallelRankThatDoesNotAnswer: a rank missing from the comparison is named, and the
// slowest is found among those that answered; with one left there is none.
func TestDataParallelRankThatDoesNotAnswer(t *testing.T) {
	r := newRig(t, map[string]any{"every": 5})
	f := &fakeRanks{rank: 1, size: 3, others: map[int]float64{0: 12}}
	r.env.Ranks = f
	for range 6 {
		f.add(1, 5)
		r.step(1, 1, 5, 2, 1) // 10 ms steps, 5 ms of wait: compute 5
	}
	dp := r.records()[0].DataParallel
	require.Equal(t, []int{2}, dp.Missing)
	require.Nil(t, dp.RankComputeMs[2])
	require.Equal(t, 0, *dp.SlowestRank)
	require.InDelta(t, 7, dp.SlowestByMs, 1e-9)
	require.Equal(t, "rank 2 did not answer within 1.04s", dp.Note)
	require.Contains(t, r.lines[0], "| rank 1/3: all-reduce wait p50 5.00ms mean 5.00 (50% of step); slowest rank 0 by 7.00ms (+140%); rank 2 did not answer within 1.04s")

	f.others = nil // nobody answers: no slowest rank
	for range 5 {
		f.add(1, 5)
		r.step(1, 1, 5, 2, 1)
	}
	dp = r.records()[1].DataParallel
	require.Equal(t, []int{0, 2}, dp.Missing)
	require.Nil(t, dp.SlowestRank)
	require.Equal(t, "ranks 0, 2 did not answer within 1.04s", dp.Note)

	f.shareErr = errors.New("store gone") // the channel fails: the record says so
	for range 5 {
		f.add(1, 5)
		r.step(1, 1, 5, 2, 1)
	}
	dp = r.records()[2].DataParallel
	require.Equal(t, "ranks not compared: store gone", dp.Note)
	require.InDelta(t, 5, dp.ComputeMs, 1e-9)
	require.Nil(t, dp.RankComputeMs)
}

// TestDataParallelWaitsFromMidRunAndAccumulation: a callback loaded mid-run starts from the
// totals it first sees; a step of several measured iterations (gradient accumulation) waits
// for all of them; steps not measured yet count in the step time only.
func TestDataParallelWaitsFromMidRunAndAccumulation(t *testing.T) {
	r := newRig(t, map[string]any{"every": 4})
	f := &fakeRanks{size: 2, others: map[int]float64{1: 1}}
	f.add(500, 5000) // before the callback: 5 s of waits
	r.env.Ranks = f
	r.step(1, 1, 1, 1, 1)
	for range 4 {
		f.add(2, 3) // two micro-batches waiting 1.5 ms each
		r.step(1, 1, 1, 1, 1)
	}
	dp := r.records()[0].DataParallel
	require.Equal(t, 4, dp.AllReduceWaitMs.N)
	require.InDelta(t, 3, dp.AllReduceWaitMs.P50, 1e-9)
	require.InDelta(t, 0.6, dp.AllReduceWaitShare, 1e-9)
	require.Equal(t, 0, *dp.SlowestRank)

	for range 4 { // nothing measured in these steps (a sampling rate, say)
		r.step(1, 1, 1, 1, 1)
	}
	dp = r.records()[1].DataParallel
	require.Equal(t, 0, dp.AllReduceWaitMs.N)
	require.EqualValues(t, 4, dp.Steps)
	require.InDelta(t, 5, dp.ComputeMs, 1e-9)
	require.Contains(t, r.lines[1], "rank 0/2: all-reduce wait not measured yet")
}

// TestDataParallelCloseWithoutFitEndDoesNotWaitForRanks: Close may run when the other ranks
// are gone: its record compares nothing.
func TestDataParallelCloseWithoutFitEndDoesNotWaitForRanks(t *testing.T) {
	r := newRig(t, map[string]any{"every": 100})
	f := &fakeRanks{size: 2, others: map[int]float64{1: 1}}
	r.env.Ranks = f
	for range 5 {
		f.add(1, 1)
		r.step(1, 1, 1, 1, 1)
	}
	require.NoError(t, r.tm.Close())
	require.Empty(t, f.keys)
	dp := r.records()[0].DataParallel
	require.Equal(t, "ranks not compared (closed without fit_end)", dp.Note)
	require.Equal(t, 4, dp.AllReduceWaitMs.N)

	// fit_end compares
	r = newRig(t, map[string]any{"every": 100})
	r.env.Ranks = f
	for range 5 {
		r.step(1, 1, 1, 1, 1)
	}
	require.NoError(t, r.tm.Handle(torchenv.FitEnd, r.env))
	require.Len(t, f.keys, 1)
	require.NotNil(t, r.records()[0].DataParallel.SlowestRank)
}

// TestOneProcessHasNoDataParallelFields: without env.Ranks the record and line are as before.
func TestOneProcessHasNoDataParallelFields(t *testing.T) {
	r := newRig(t, map[string]any{"every": 5})
	for range 6 {
		r.step(1, 1, 1, 1, 1)
	}
	b, err := os.ReadFile(filepath.Join(r.env.RunDir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	require.NotContains(t, string(b), "data_parallel")
	require.NotContains(t, r.lines[0], "all-reduce")
	require.Nil(t, r.tm.Snapshot().DataParallel)
}
