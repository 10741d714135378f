package serve

import (
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecimateSmallSeriesIsWhole(t *testing.T) {
	idx := Decimate(5, 2000, false, func(int) float64 { return 1 })
	require.Equal(t, []int{0, 1, 2, 3, 4}, idx)
	require.Empty(t, Decimate(0, 10, false, nil))
}

func TestDecimateKeepsEndsAndExtremes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{2001, 5000, 100_000, 1_000_003} {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = math.Sin(float64(i)/1000) + 0.01*rng.Float64()
		}
		spike, dip := n/3, 2*n/3+1
		vals[spike], vals[dip] = 50, -50
		for _, max := range []int{4, 100, 2000} {
			idx := Decimate(n, max, false, func(i int) float64 { return vals[i] })
			require.LessOrEqual(t, len(idx), max, "n=%d max=%d", n, max)
			require.Equal(t, 0, idx[0])
			require.Equal(t, n-1, idx[len(idx)-1])
			require.True(t, slices.IsSorted(idx))
			require.Equal(t, len(idx), len(slices.Compact(slices.Clone(idx))), "no index twice")
			require.Contains(t, idx, spike, "the spike survives n=%d max=%d", n, max)
			require.Contains(t, idx, dip, "the dip survives n=%d max=%d", n, max)
			if max == 2000 {
				require.Greater(t, len(idx), 1900, "the budget is used")
			}
		}
	}
}

func TestDecimateKeepsNaN(t *testing.T) {
	n := 100_000
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = float64(i % 7)
	}
	vals[12345] = math.NaN()
	vals[54321] = math.Inf(1)
	idx := Decimate(n, 2000, true, func(i int) float64 { return vals[i] })
	require.LessOrEqual(t, len(idx), 2000)
	require.Contains(t, idx, 12345, "a NaN loss stays visible")
	require.Contains(t, idx, 54321)
	// Min and max of a bucket are finite even when it has a NaN.
	for _, i := range idx {
		if i != 12345 && i != 54321 {
			require.False(t, math.IsNaN(vals[i]) || math.IsInf(vals[i], 0))
		}
	}
}

func writeFile(t testing.TB, p, s string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
}

func appendFile(t testing.TB, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func openRoot(t testing.TB, dir string) *os.Root {
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	return root
}

// The metrics reader takes hotcb's lines with extra fields, nested metrics, Python's bare NaN,
// a torn last line (kept for later), bad lines (skipped), a rewind after a resume, and a
// replaced file.
func TestMetricsReaderTolerant(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, MetricsFile)
	writeFile(t, p, `{"step": 1, "epoch": 0, "metrics": {"loss": 2.5, "lr": 0.1}, "wall_time": 1.5, "future": {"x": [1]}}
not json
{"step": 2, "metrics": {"loss": NaN, "val": {"acc": 0.5}}}
{"metrics": {"loss": 1}}
{"step": 3, "metrics": {"loss": 1.5, "name": "text", "flag": true, "nil": null}}
{"step": 4, "metr`)
	src := NewMetricsSource(openRoot(t, dir), MetricsFile)
	require.True(t, src.Poll())
	require.Equal(t, []string{"loss", "lr", "val.acc"}, src.Names())
	steps, vals, total := src.Range("loss", math.MinInt64, math.MaxInt64, 100)
	require.Equal(t, []int64{1, 2, 3}, steps)
	require.Equal(t, 3, total)
	require.Equal(t, 2.5, vals[0])
	require.True(t, math.IsNaN(vals[1]), "Python's NaN is read as NaN")
	step, last := src.Last()
	require.Equal(t, int64(3), step)
	require.Equal(t, 1.5, last["loss"])
	require.False(t, src.Poll(), "the torn line waits")

	appendFile(t, p, `ics": {"loss": 1.25}}`+"\n")
	require.True(t, src.Poll())
	step, last = src.Last()
	require.Equal(t, int64(4), step)
	require.Equal(t, 1.25, last["loss"])

	// since: only what is after a step
	steps, _, _ = src.Range("loss", 3, math.MaxInt64, 100)
	require.Equal(t, []int64{3, 4}, steps)

	// A resumed run writes from step 2 again: the old points from 2 on give way.
	appendFile(t, p, `{"step": 2, "metrics": {"loss": 9}}`+"\n")
	require.True(t, src.Poll())
	steps, vals, _ = src.Range("loss", math.MinInt64, math.MaxInt64, 100)
	require.Equal(t, []int64{1, 2}, steps)
	require.Equal(t, 9.0, vals[1])

	// A replaced (shorter) file is read from its start.
	writeFile(t, p+".new", `{"step": 7, "metrics": {"acc": 0.25}}`+"\n")
	require.NoError(t, os.Rename(p+".new", p))
	require.True(t, src.Poll())
	require.Equal(t, []string{"acc"}, src.Names())
	require.False(t, src.Poll())
}

func TestMetricsReaderSkipsOverlongLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, MetricsFile)
	big := make([]byte, maxLine+10)
	for i := range big {
		big[i] = 'x'
	}
	writeFile(t, p, `{"step": 1, "metrics": {"loss": 1}}`+"\n"+string(big)+"\n"+`{"step": 2, "metrics": {"loss": 2}}`+"\n")
	src := newSeriesFile(openRoot(t, dir), MetricsFile, metricsValues)
	require.True(t, src.Poll())
	steps, _, _ := src.Range("loss", math.MinInt64, math.MaxInt64, 100)
	require.Equal(t, []int64{1, 2}, steps)
	require.Equal(t, 1, src.t.bad)
}

func TestMetricsReaderManyChunks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, MetricsFile)
	f, err := os.Create(p)
	require.NoError(t, err)
	n := 150_000 // > readChunk bytes, so lines straddle chunk ends
	for i := 1; i <= n; i++ {
		f.WriteString(`{"step": ` + strconv.Itoa(i) + `, "metrics": {"loss": ` + strconv.FormatFloat(1/float64(i), 'g', -1, 64) + `}}` + "\n")
	}
	require.NoError(t, f.Close())
	src := NewMetricsSource(openRoot(t, dir), MetricsFile)
	require.True(t, src.Poll())
	steps, vals, total := src.Range("loss", math.MinInt64, math.MaxInt64, 2000)
	require.Equal(t, n, total)
	require.LessOrEqual(t, len(steps), 2000)
	require.Equal(t, int64(1), steps[0])
	require.Equal(t, int64(n), steps[len(steps)-1])
	require.Equal(t, 1.0, vals[0], "the maximum is kept")
}

func TestQuoteNonFinite(t *testing.T) {
	require.Equal(t, `{"a":"NaN","b":"-Infinity","s":"NaN in text","c":["Infinity"]}`,
		string(quoteNonFinite([]byte(`{"a":NaN,"b":-Infinity,"s":"NaN in text","c":[Infinity]}`))))
	require.Equal(t, `{"s":"a\"NaN"}`, string(quoteNonFinite([]byte(`{"s":"a\"NaN"}`))))
}
