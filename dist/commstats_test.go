package dist

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

func init() {
	roles["commstats"] = roleCommStats
}

type commStatsArg struct {
	Steps   int
	SleepMs int // rank 1 sleeps this long between its forward and backward passes on odd steps
}

type commStatsResult struct {
	// After step k's backward pass (before the next forward) and after step k+1's forward pass.
	AfterBackward, AfterForward []CommStats
	Final                       CommStats
	NoGradIteration             int64   // the latest iteration measured after a forward pass without grad
	SampledIteration            []int64 // after 12 iterations with CommStatsEvery 20, then -1
	SampledOK                   []bool

	ShareA          []float64
	ShareB          []string // as text: NaN has no JSON
	MissingB        []int
	ShareBTook      float64 // seconds
	ShareC          []float64
	ShareD          []float64
	OwnADeleted     bool // rank 0's value of "a" is gone after two more Shares
	ShareTimeoutErr string
}

func roleCommStats(t *testing.T, g *Group, raw json.RawMessage) any {
	var a commStatsArg
	require.NoError(t, json.Unmarshal(raw, &a))
	bridge.ManualSeed(7)
	m := newModel("mlp")
	d, err := NewDDP(g, m, DDPOptions{})
	require.NoError(t, err)
	defer d.Close()
	opt := sgd(m)
	ds := ddpData(64)
	x, y := ds.Batch([]int64{0, 1, 2, 3, 4, 5, 6, 7})
	var res commStatsResult
	_, ok := d.CommStats()
	require.False(t, ok, "nothing measured before the first iteration")
	for k := 1; k <= a.Steps; k++ {
		nn.ZeroGrad(m)
		out := d.Forward(x)
		if k > 1 {
			s, ok := d.CommStats()
			require.True(t, ok, "step %d", k)
			res.AfterForward = append(res.AfterForward, s)
		}
		loss := bridge.CrossEntropy(out, y)
		if g.Rank() == 1 && k%2 == 1 {
			time.Sleep(time.Duration(a.SleepMs) * time.Millisecond)
		}
		require.NoError(t, d.Backward(loss))
		opt.Step()
		s, ok := d.CommStats()
		require.Equal(t, k > 1, ok, "step %d", k)
		res.AfterBackward = append(res.AfterBackward, s)
	}
	// An evaluation pass (no grad) through the DDP measures nothing; the next training forward
	// pass measures the last training step.
	bridge.NoGrad(func() { d.Forward(x) })
	s, _ := d.CommStats()
	res.NoGradIteration = s.Iteration
	d.Forward(x)
	res.Final, _ = d.CommStats()

	// Fewer measurements: the first 10 iterations and one in CommStatsEvery; none at all.
	for _, every := range []int{20, -1} {
		m2 := newModel("mlp")
		d2, err := NewDDP(g, m2, DDPOptions{CommStatsEvery: every})
		require.NoError(t, err)
		for range 12 {
			require.NoError(t, d2.Backward(bridge.CrossEntropy(d2.Forward(x), y)))
		}
		s, ok := d2.CommStats()
		res.SampledIteration = append(res.SampledIteration, s.Iteration)
		res.SampledOK = append(res.SampledOK, ok)
		d2.Close()
	}

	// Share: every rank's value; a rank that does not answer is missing after the timeout.
	res.ShareA, _, err = g.Share("a", float64(10*g.Rank()+1), testTimeout)
	require.NoError(t, err)
	if g.Rank() == 0 {
		start := time.Now()
		var vals []float64
		vals, res.MissingB, err = g.Share("b", 2, 300*time.Millisecond)
		res.ShareBTook = time.Since(start).Seconds()
		require.NoError(t, err)
		for _, v := range vals {
			res.ShareB = append(res.ShareB, fmt.Sprint(v))
		}
	}
	res.ShareC, _, err = g.Share("c", float64(g.Rank())+0.5, testTimeout)
	require.NoError(t, err)
	res.ShareD, _, err = g.Share("d", math.Pi*float64(g.Rank()), testTimeout)
	require.NoError(t, err)
	require.NoError(t, g.Barrier())
	if g.Rank() == 0 {
		set, err := g.Store().Check(sharePrefix + "a/0")
		require.NoError(t, err)
		res.OwnADeleted = !set
	}
	_, _, err = g.Share("e", 0, 0)
	require.Error(t, err)
	res.ShareTimeoutErr = err.Error()
	return res
}

// TestDDPCommStatsAndShare: rank 1 computes 200 ms longer on odd steps; rank 0's backward pass
// waits for it in the all-reduce on exactly those steps (c10d's latest-iteration times, not a
// running mean), and rank 1 hardly waits. Share compares numbers across the ranks through the
// store, and names a rank that does not answer instead of waiting for it.
func TestDDPCommStatsAndShare(t *testing.T) {
	const steps, sleep = 12, 200 // ms: the margins below (0.4 and 0.6 of it) hold on a loaded 2-core machine
	j := startRanks(t, "commstats", 2, testTimeout, commStatsArg{Steps: steps, SleepMs: sleep})
	j.wait(2 * time.Minute)
	var res []commStatsResult
	j.requireOK(&res)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	for r, x := range res {
		require.Len(t, x.AfterForward, steps-1)
		require.Len(t, x.AfterBackward, steps)
		var total time.Duration
		for i, s := range x.AfterForward {
			k := i + 2 // the step whose forward pass measured step k-1
			assert.Equal(t, int64(k-1), s.Iteration, "rank %d: at step %d's forward the latest measured is step %d", r, k, k-1)
			assert.Equal(t, int64(k-1), s.Measured)
			assert.Equal(t, s, x.AfterBackward[k-1], "rank %d: a backward pass is measured at the next forward only", r)
			assert.GreaterOrEqual(t, s.Wait, time.Duration(0))
			assert.LessOrEqual(t, s.Wait, s.BackwardComm)
			assert.Equal(t, s.BackwardComm-s.Overlap, s.Wait)
			assert.Positive(t, s.Forward)
			assert.Positive(t, s.BackwardCompute)
			total += s.Wait
			assert.Equal(t, total, s.TotalWait)
			slow := (k-1)%2 == 1
			t.Logf("rank %d step %2d: wait %6.2f ms  comm %6.2f  overlap %5.2f  backward compute %6.2f  forward %5.2f", r, k-1,
				ms(s.Wait), ms(s.BackwardComm), ms(s.Overlap), ms(s.BackwardCompute), ms(s.Forward))
			switch {
			case r == 0 && slow:
				assert.Greater(t, ms(s.Wait), 0.6*sleep, "rank 0 step %d waits for rank 1", k-1)
			case r == 1 && slow:
				assert.Greater(t, ms(s.BackwardCompute), 0.9*sleep, "rank 1 step %d: its sleep is backward compute", k-1)
				assert.Less(t, ms(s.Wait), 0.4*sleep)
			default:
				assert.Less(t, ms(s.Wait), 0.4*sleep, "rank %d step %d", r, k-1)
			}
		}
		assert.Equal(t, int64(steps-1), x.NoGradIteration, "rank %d: a forward pass without grad measures nothing", r)
		assert.Equal(t, int64(steps), x.Final.Iteration)
		assert.Equal(t, int64(steps), x.Final.Measured)

		assert.Equal(t, []int64{10, 0}, x.SampledIteration, "rank %d: with CommStatsEvery 20, iterations 1-10 are measured, then the 20th", r)
		assert.Equal(t, []bool{true, false}, x.SampledOK)

		assert.Equal(t, []float64{1, 11}, x.ShareA)
		assert.Equal(t, []float64{0.5, 1.5}, x.ShareC)
		assert.Equal(t, []float64{0, math.Pi}, x.ShareD)
		assert.Contains(t, x.ShareTimeoutErr, "timeout must be positive")
	}
	assert.Equal(t, []string{"2", "NaN"}, res[0].ShareB)
	assert.Equal(t, []int{1}, res[0].MissingB)
	assert.InDelta(t, 0.3, res[0].ShareBTook, 0.25)
	assert.True(t, res[0].OwnADeleted, "a rank's values go two Shares later")
}
