package timing

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func msDurations(vals ...float64) []int64 {
	out := make([]int64, len(vals))
	for i, v := range vals {
		out[i] = int64(v * float64(time.Millisecond))
	}
	return out
}

func TestSummarizeFixedDurations(t *testing.T) {
	var oneTo100 []float64
	for i := 1; i <= 100; i++ {
		oneTo100 = append(oneTo100, float64(i))
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(oneTo100), func(i, j int) { oneTo100[i], oneTo100[j] = oneTo100[j], oneTo100[i] })
	for _, tc := range []struct {
		name string
		in   []float64
		want Stats
	}{
		// numpy.percentile(np.arange(1, 101), [50, 95]) = 50.5, 95.05
		{"1..100 shuffled", oneTo100, Stats{N: 100, Mean: 50.5, P50: 50.5, P95: 95.05, Max: 100}},
		{"one value", []float64{7}, Stats{N: 1, Mean: 7, P50: 7, P95: 7, Max: 7}},
		{"two values", []float64{10, 20}, Stats{N: 2, Mean: 15, P50: 15, P95: 19.5, Max: 20}},
		// a spike moves max and p95 but not p50
		{"spike", []float64{10, 10, 10, 10, 10, 10, 10, 10, 10, 100}, Stats{N: 10, Mean: 19, P50: 10, P95: 59.5, Max: 100}},
		{"odd count", []float64{3, 1, 2, 5, 4}, Stats{N: 5, Mean: 3, P50: 3, P95: 4.8, Max: 5}},
		{"empty", nil, Stats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(msDurations(tc.in...))
			require.Equal(t, tc.want.N, got.N)
			require.InDelta(t, tc.want.Mean, got.Mean, 1e-9)
			require.InDelta(t, tc.want.P50, got.P50, 1e-9)
			require.InDelta(t, tc.want.P95, got.P95, 1e-9)
			require.InDelta(t, tc.want.Max, got.Max, 1e-9)
		})
	}
}

func TestRingKeepsTheLastWindow(t *testing.T) {
	r := newRing(4)
	require.Empty(t, r.values(nil))
	for i := int64(1); i <= 10; i++ {
		r.push(i)
	}
	require.Equal(t, []int64{7, 8, 9, 10}, r.values(nil))
	require.EqualValues(t, 10, r.total)
	// statistics over the window only: 7..10 ms
	r2 := newRing(4)
	for _, v := range msDurations(1000, 1, 2, 3, 4) {
		r2.push(v)
	}
	s := summarize(r2.values(nil))
	require.InDelta(t, 4, s.Max, 1e-9, "the 1000 ms value left the window")
	require.InDelta(t, 2.5, s.P50, 1e-9)

	r.resize(2)
	require.Equal(t, []int64{9, 10}, r.values(nil))
	r.resize(5)
	require.Equal(t, []int64{9, 10}, r.values(nil))
	r.push(11)
	require.Equal(t, []int64{9, 10, 11}, r.values(nil))
	require.EqualValues(t, 11, r.total)
}

func TestHistoryStaysBounded(t *testing.T) {
	var h history
	n := 3*maxPoints + 5
	for i := range n {
		h.push(int64(100+i), float64(i%2)) // alternating 0, 1: averages to 0.5
	}
	xs, ys := h.points()
	require.Less(t, len(xs), maxPoints)
	require.Len(t, ys, len(xs))
	require.Equal(t, 4, h.stride)
	for _, y := range ys {
		require.InDelta(t, 0.5, y, 1e-6)
	}
	require.InDelta(t, 100+1.5, xs[0], 1e-9, "a point sits in the middle of the steps it averages")
	require.Less(t, xs[len(xs)-1], float64(100+n))
	for i := 1; i < len(xs); i++ {
		require.Greater(t, xs[i], xs[i-1])
	}
}

func TestNiceStepAndTicks(t *testing.T) {
	for in, want := range map[float64]float64{0.7: 1, 1: 1, 1.2: 2, 3: 5, 7: 10, 0.013: 0.02, 120: 200, 0: 1} {
		require.InDelta(t, want, niceStep(in), 1e-12, "niceStep(%v)", in)
	}
	require.Equal(t, "0.25", formatTick(0.25, 0.05))
	require.Equal(t, "40", formatTick(40, 20))
}
