package metrics

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestReadSkipsBadLinesAndReadsHotcbs(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	appendFile(t, path, strings.Join([]string{
		// hotcb's own lines: epoch null, a bare NaN (Python's json.dumps), extra keys.
		`{"step": 1, "epoch": null, "wall_time": 1.5, "metrics": {"loss": 2.5, "lr": 0.001}}`,
		`{"step": 2, "epoch": 0, "wall_time": 2.5, "metrics": {"loss": NaN, "val_loss": Infinity, "x": -Infinity}}`,
		`not json`,
		`{"epoch": 0, "metrics": {"loss": 1}}`, // no step
		``,
		`{"step": 3, "epoch": 1, "wall_time": 3.5, "metrics": {"loss": 1, "name": "NaN-ish", "list": [1], "n": null}, "phase": "train"}`,
		`{"step": 4, "metrics": {"lo`, // torn, unterminated
	}, "\n"))
	recs, err := Read(path, -1)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, map[string]float64{"loss": 2.5, "lr": 0.001}, recs[0].Metrics)
	require.Equal(t, 1.5, recs[0].WallTime)
	require.True(t, math.IsNaN(recs[1].Metrics["loss"]))
	require.True(t, math.IsInf(recs[1].Metrics["val_loss"], 1))
	require.True(t, math.IsInf(recs[1].Metrics["x"], -1))
	require.Equal(t, map[string]float64{"loss": 1}, recs[2].Metrics, "values that are not numbers are left out")
	require.Equal(t, 1.0, recs[2].Epoch)
	require.Equal(t, []string{"loss", "lr", "val_loss", "x"}, Names(recs))

	none, err := Read(filepath.Join(t.TempDir(), "absent.jsonl"), -1)
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestQuoteNonFiniteLeavesStringsAlone(t *testing.T) {
	out, ok := quoteNonFinite([]byte(`{"a NaN \" Infinity": NaN, "b": [-Infinity, Infinity]}`))
	require.True(t, ok)
	require.Equal(t, `{"a NaN \" Infinity": "NaN", "b": ["-Infinity", "Infinity"]}`, string(out))
}

func TestEffectiveAppliesEveryMarker(t *testing.T) {
	mk := func(step int64, restart bool) Record {
		r := Record{Step: step}
		if restart {
			r.Restart = &Restart{}
		}
		return r
	}
	var recs []Record
	for s := int64(0); s < 10; s++ { // run 1: 0..9
		recs = append(recs, mk(s, false))
	}
	recs = append(recs, mk(6, true), mk(6, false), mk(7, false), mk(8, false)) // resumed at 6
	recs = append(recs, mk(4, true), mk(4, false), mk(5, false))               // resumed at 4
	var steps []int64
	for _, r := range Effective(recs) {
		steps = append(steps, r.Step)
	}
	require.Equal(t, []int64{0, 1, 2, 3, 4, 4, 5}, steps)
}

func TestTailFollows(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	tl := NewTail(path)
	recs, reset, err := tl.Poll()
	require.NoError(t, err)
	require.False(t, reset)
	require.Empty(t, recs, "no file yet")

	appendFile(t, path, `{"step": 0, "metrics": {"loss": 1}}`+"\n"+`{"step": 1, "metr`)
	recs, _, err = tl.Poll()
	require.NoError(t, err)
	require.Len(t, recs, 1, "the unterminated line waits")

	appendFile(t, path, `ics": {"loss": 0.5}}`+"\n")
	recs, reset, err = tl.Poll()
	require.NoError(t, err)
	require.False(t, reset)
	require.Len(t, recs, 1)
	require.Equal(t, int64(1), recs[0].Step)
	require.Equal(t, 0.5, recs[0].Metrics["loss"])

	recs, _, err = tl.Poll()
	require.NoError(t, err)
	require.Empty(t, recs)

	// Replaced by a shorter file: start over.
	require.NoError(t, os.Remove(path))
	appendFile(t, path, `{"step": 0, "metrics": {"loss": 9}}`+"\n")
	recs, reset, err = tl.Poll()
	require.NoError(t, err)
	require.True(t, reset)
	require.Len(t, recs, 1)
	require.Equal(t, 9.0, recs[0].Metrics["loss"])

	// Truncated in place.
	require.NoError(t, os.Truncate(path, 0))
	appendFile(t, path, `{"step": 5, "metrics": {}}`+"\n")
	recs, reset, err = tl.Poll()
	require.NoError(t, err)
	require.True(t, reset)
	require.Len(t, recs, 1)
	require.Equal(t, int64(5), recs[0].Step)
}

func TestTailOfAWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, Options{FlushInterval: time.Millisecond})
	tl := NewTail(path)
	var got []Record
	for s := int64(0); s < 500; s++ {
		w.Write(entry(s, "loss", float64(s)))
		if s%50 == 0 {
			recs, reset, err := tl.Poll()
			require.NoError(t, err)
			require.False(t, reset)
			got = append(got, recs...)
		}
	}
	require.NoError(t, w.Close())
	recs, _, err := tl.Poll()
	require.NoError(t, err)
	got = append(got, recs...)
	require.Len(t, got, 500)
	for i, r := range got {
		require.Equal(t, int64(i), r.Step)
	}
}

func TestLongLinesAreSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	huge := `{"step": 1, "metrics": {"a": 1}, "pad": "` + strings.Repeat("x", maxLine+10) + `"}`
	big := `{"step": 2, "metrics": {"a": 2}, "pad": "` + strings.Repeat("y", 200<<10) + `"}`
	appendFile(t, path, `{"step": 0, "metrics": {"a": 0}}`+"\n"+huge+"\n"+big+"\n"+`{"step": 3, "metrics": {"a": 3}}`+"\n")
	recs, err := Read(path, -1)
	require.NoError(t, err)
	var steps []int64
	for _, r := range recs {
		steps = append(steps, r.Step)
	}
	require.Equal(t, []int64{0, 2, 3}, steps, "a line longer than the reader's buffer is read; one over 16 MiB skipped")
}

func TestSeriesDownsamples(t *testing.T) {
	var recs []Record
	for s := int64(0); s < 1000; s++ {
		recs = append(recs, Record{Step: s, Metrics: map[string]float64{"loss": float64(s)}})
	}
	recs[500].Metrics["loss"] = math.NaN()
	pts := Series(recs, "loss", 10)
	require.Len(t, pts, 10)
	require.Equal(t, Point{Step: 99, Value: 49.5, Min: 0, Max: 99, N: 100}, pts[0])
	require.Equal(t, int64(999), pts[9].Step, "the last point ends at the last step")
	require.True(t, math.IsNaN(pts[5].Value), "a NaN shows")
	require.Equal(t, 501.0, pts[5].Min)
	require.Len(t, Series(recs, "loss", 0), 1000)
	require.Len(t, Series(recs, "loss", 5000), 1000)
	require.Empty(t, Series(recs, "absent", 10))

	// Uneven: 7 points into 3.
	n := 0
	for _, p := range Series(recs[:7], "loss", 3) {
		n += p.N
	}
	require.Equal(t, 7, n)
}

func ExampleSeries() {
	recs := []Record{
		{Step: 0, Metrics: map[string]float64{"loss": 4}},
		{Step: 1, Metrics: map[string]float64{"loss": 2}},
		{Step: 2, Metrics: map[string]float64{"loss": 3}},
		{Step: 3, Metrics: map[string]float64{"loss": 1}},
	}
	for _, p := range Series(recs, "loss", 2) {
		fmt.Printf("step %d: mean %g (min %g, max %g)\n", p.Step, p.Value, p.Min, p.Max)
	}
	// Output:
	// step 1: mean 3 (min 2, max 4)
	// step 3: mean 2 (min 1, max 3)
}
