package timing

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hotcb/hotcb/torchenv"
)

// DataParallel is the part of a record that a data-parallel run adds (env.Ranks set): how long
// this rank's steps waited for the gradient all-reduce, and which rank is the slowest. It covers
// the interval since the previous record (its Steps steps), not the window.
type DataParallel struct {
	Rank  int   `json:"rank"`
	Size  int   `json:"size"`
	Steps int64 `json:"steps"` // steps in the interval

	// AllReduceWaitMs is, per step, the time the backward pass waited for the gradient
	// all-reduce once its own gradients were ready (c10d's DDP times: the all-reduce minus the
	// part that overlapped the backward pass): for the network, and for slower ranks. N counts
	// the steps measured; each step's wait is known at the next step's forward pass, so the
	// interval's waits are those of the steps before its last. Percentiles cover at most the
	// last window of them, the mean all.
	AllReduceWaitMs Stats `json:"allreduce_wait_ms"`
	// AllReduceWaitShare is the mean wait over the mean step time, 0 to 1.
	AllReduceWaitShare float64 `json:"allreduce_wait_share"`
	// ComputeMs is the mean step time less the mean wait: the time the rank spends on its own
	// work. The ranks of a data-parallel run step together, so their step times agree; the
	// slowest rank is the one with the most compute (the others wait for it).
	ComputeMs float64 `json:"compute_ms"`

	// RankComputeMs is every rank's ComputeMs at this record, compared through the store (null
	// for a rank that did not answer in time, listed in Missing too).
	RankComputeMs []*float64 `json:"rank_compute_ms,omitempty"`
	Missing       []int      `json:"ranks_missing,omitempty"`
	// SlowestRank has the largest ComputeMs, SlowestByMs more than the fastest's (SlowestByPct:
	// as a percentage of the fastest's). Absent when fewer than two ranks answered.
	SlowestRank  *int    `json:"slowest_rank,omitempty"`
	SlowestByMs  float64 `json:"slowest_by_ms,omitempty"`
	SlowestByPct float64 `json:"slowest_by_pct,omitempty"`
	// Note says why the ranks were not (all) compared.
	Note string `json:"note,omitempty"`
}

// rankTimes is the data-parallel state of the timing callback: the all-reduce waits and the
// step times of the interval since the last record.
type rankTimes struct {
	ranks torchenv.Ranks
	prev  torchenv.AllReduceWait // at the previous step close
	based bool                   // prev is set

	waits   *ring // this interval's per-step waits, ns (the last window of them)
	waitSum int64 // all of them summed
	waitN   int64
	stepSum int64 // this interval's step times, ns
	steps   int64
}

// sample reads the waits measured since the previous step close: the step's wait (all its
// iterations' with gradient accumulation; a step measured late counts in the interval it lands
// in). The first reading only sets the base, so a callback loaded mid-run starts from there.
func (rt *rankTimes) sample() {
	w, ok := rt.ranks.AllReduceWait()
	if !ok {
		rt.based = true // nothing measured yet: the totals start at zero
		return
	}
	if rt.based && w.Measured > rt.prev.Measured && w.Total >= rt.prev.Total {
		d := int64(w.Total - rt.prev.Total)
		rt.waits.push(d)
		rt.waitSum += d
		rt.waitN++
	}
	rt.prev, rt.based = w, true
}

// stepped adds a step of d ns to the interval.
func (rt *rankTimes) stepped(d int64) {
	rt.stepSum += d
	rt.steps++
}

// reset starts the next interval.
func (rt *rankTimes) reset() {
	rt.waits.n, rt.waits.next = 0, 0
	rt.waitSum, rt.waitN, rt.stepSum, rt.steps = 0, 0, 0, 0
}

// dataParallel is the interval's numbers on this rank (nil in one process).
func (t *Timing) dataParallel() *DataParallel {
	rt := t.rt
	if rt == nil {
		return nil
	}
	dp := &DataParallel{Rank: rt.ranks.Rank(), Size: rt.ranks.Size(), Steps: rt.steps,
		AllReduceWaitMs: t.stats(rt.waits)}
	if rt.waitN > 0 {
		dp.AllReduceWaitMs.N = int(rt.waitN)
		dp.AllReduceWaitMs.Mean = ms(float64(rt.waitSum) / float64(rt.waitN))
	}
	if rt.steps > 0 {
		step := float64(rt.stepSum) / float64(rt.steps) / 1e6
		dp.ComputeMs = round3(step - dp.AllReduceWaitMs.Mean)
		if step > 0 {
			dp.AllReduceWaitShare = round3(dp.AllReduceWaitMs.Mean / step)
		}
	}
	return dp
}

// compare shares this rank's ComputeMs with the others under a key named by the step and
// names the slowest; a rank that does not answer within timeout is listed as missing.
func (t *Timing) compare(dp *DataParallel, timeout time.Duration) {
	key := fmt.Sprintf("timing/%s/%d/%d", t.ID(), t.lastStep, t.steps)
	vals, missing, err := t.rt.ranks.Share(key, dp.ComputeMs, timeout)
	if err != nil {
		dp.Note = "ranks not compared: " + err.Error()
		return
	}
	dp.Missing = missing
	dp.RankComputeMs = make([]*float64, len(vals))
	slow, fast := -1, -1
	for r, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		dp.RankComputeMs[r] = &v
		if slow < 0 || v > vals[slow] {
			slow = r
		}
		if fast < 0 || v < vals[fast] {
			fast = r
		}
	}
	if len(missing) > 0 {
		who := "rank "
		if len(missing) > 1 {
			who = "ranks "
		}
		dp.Note = fmt.Sprintf("%s%s did not answer within %v", who, joinInts(missing), timeout.Round(time.Millisecond))
	}
	if len(vals)-len(missing) < 2 {
		return
	}
	dp.SlowestRank = &slow
	dp.SlowestByMs = round3(vals[slow] - vals[fast])
	if vals[fast] > 0 {
		dp.SlowestByPct = round3(100 * (vals[slow] - vals[fast]) / vals[fast])
	}
}

// shareTimeout bounds the wait for the other ranks' numbers: they step with this one, so they
// reach the same record within about a step.
func shareTimeout(stepMaxMs float64) time.Duration {
	return min(time.Second+time.Duration(4*stepMaxMs*float64(time.Millisecond)), 30*time.Second)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// summaryRanks is the data-parallel part of the summary line:
//
//	rank 0/2: all-reduce wait p50 61.20ms mean 30.60 (45% of step); slowest rank 1 by 30.50ms (+98%)
func summaryRanks(b *strings.Builder, dp *DataParallel) {
	fmt.Fprintf(b, " | rank %d/%d: all-reduce wait", dp.Rank, dp.Size)
	if dp.AllReduceWaitMs.N == 0 {
		b.WriteString(" not measured yet")
	} else {
		fmt.Fprintf(b, " p50 %.2fms mean %.2f (%.0f%% of step)", dp.AllReduceWaitMs.P50, dp.AllReduceWaitMs.Mean,
			100*dp.AllReduceWaitShare)
	}
	if dp.SlowestRank != nil {
		fmt.Fprintf(b, "; slowest rank %d by %.2fms (+%.0f%%)", *dp.SlowestRank, dp.SlowestByMs, dp.SlowestByPct)
	}
	if dp.Note != "" {
		b.WriteString("; " + dp.Note)
	}
}
