package harness

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Stats
	}{
		{"empty", nil, Stats{}},
		{"one", []float64{3}, Stats{Median: 3, Min: 3, Max: 3, N: 1}},
		{"odd unsorted", []float64{5, 1, 4, 2, 3}, Stats{Median: 3, Min: 1, Max: 5, N: 5}},
		{"even takes the mean of the middle two", []float64{4, 1, 3, 2}, Stats{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{"outlier leaves the median alone", []float64{1, 1.1, 0.9, 1.05, 50}, Stats{Median: 1.05, Min: 0.9, Max: 50, N: 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			require.Equal(t, tc.want, Summarize(tc.in))
			require.Equal(t, in, tc.in, "Summarize must not reorder its input")
		})
	}
}

func TestUnitScale(t *testing.T) {
	for unit, want := range map[string]float64{"ns/op": 1e9, "us/step": 1e6, "µs/step": 1e6, "ms/step": 1e3, "s": 1} {
		got, err := UnitScale(unit)
		require.NoError(t, err, unit)
		require.Equal(t, want, got, unit)
	}
	_, err := UnitScale("furlongs/op")
	require.Error(t, err)
}

func TestNewResult(t *testing.T) {
	m := Measurement{Iters: 100, Go: []float64{2e-3, 1.1e-3, 1e-3}, Ref: []float64{1e-3, 1e-3, 0.9e-3}}
	r, err := NewResult(Spec{Name: "mlp", Unit: "ms/step", MaxRatio: 1.03}, m)
	require.NoError(t, err)
	require.InDelta(t, 1.1, r.GoMedian, 1e-12)
	require.InDelta(t, 1.0, r.CppMedian, 1e-12)
	require.InDelta(t, 1.0, r.GoMin, 1e-12)
	require.InDelta(t, 2.0, r.GoMax, 1e-12)
	require.InDelta(t, 0.9, r.CppMin, 1e-12)
	require.InDelta(t, 1.1, r.Ratio, 1e-12)
	require.NotNil(t, r.Met)
	require.False(t, *r.Met)
	require.Equal(t, 3, r.Rounds)
	require.Equal(t, 100, r.Iters)

	r, err = NewResult(Spec{Name: "add", Unit: "ns/op"}, m)
	require.NoError(t, err)
	require.Nil(t, r.Met, "no goal, no verdict")
	require.InDelta(t, 1.1e6, r.GoMedian, 1e-6)
}

// The JSON report is read by later tooling: keep its field names stable.
func TestReportJSONShape(t *testing.T) {
	met := true
	rep := &Report{
		Date:     time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Machine:  Machine{CPU: "Some CPU", NProc: 2, MemoryBytes: 1 << 30, Memory: "1.0 GiB"},
		Libtorch: "1.13.0", GoVersion: "go1.26", Threads: 1,
		BLAS: BLAS{Kind: "openblas", Libraries: []string{"/x/libopenblas.so.0"}},
		Results: []Result{{Name: "mlp", Unit: "ms/step", GoMedian: 1, CppMedian: 1, Ratio: 1,
			Goal: "go/c++ <= 1.03", MaxRatio: 1.03, Met: &met, GoRounds: []float64{1}, CppRounds: []float64{1}}},
	}
	path := filepath.Join(t.TempDir(), "sub", "latest.json")
	require.NoError(t, rep.WriteJSON(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)

	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	for _, k := range []string{"date", "machine", "go_version", "libtorch_version", "blas", "threads", "results"} {
		require.Contains(t, doc, k)
	}
	require.Equal(t, "2025-01-02T03:04:05Z", doc["date"])
	machine := doc["machine"].(map[string]any)
	require.Equal(t, "Some CPU", machine["cpu"])
	require.EqualValues(t, 2, machine["nproc"])
	require.Equal(t, "openblas", doc["blas"].(map[string]any)["kind"])

	results := doc["results"].([]any)
	require.Len(t, results, 1)
	res := results[0].(map[string]any)
	for _, k := range []string{"name", "unit", "go_median", "cpp_median", "go_min", "go_max", "cpp_min", "cpp_max", "ratio", "goal", "met"} {
		require.Contains(t, res, k)
	}
	require.Equal(t, true, res["met"])

	var sb strings.Builder
	require.NoError(t, rep.WriteTable(&sb))
	require.Contains(t, sb.String(), "<= 1.03: met")
}

func TestClassifyBLAS(t *testing.T) {
	maps := `7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
7f01-7f02 r--p 00001000 08:01 1 /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
7f02-7f03 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so
7f03-7f04 r-xp 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13
7f04-7f05 rw-p 00000000 00:00 0 [heap]
`
	libs := BLASLibraries(maps)
	require.Equal(t, []string{
		"/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
		"/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so",
	}, libs)
	b := ClassifyBLAS(libs)
	require.Equal(t, "openblas", b.Kind)
	require.Empty(t, b.Warning)

	b = ClassifyBLAS([]string{ReferenceBLAS})
	require.Equal(t, "reference", b.Kind)
	require.Contains(t, b.Warning, "WARNING")

	require.Contains(t, ClassifyBLAS(nil).Warning, "WARNING")
}

func TestMeasureAlternates(t *testing.T) {
	var order []string
	fake := func(side string, perIter float64) Runner {
		return func(iters int) (float64, error) {
			order = append(order, side)
			return perIter * float64(iters), nil
		}
	}
	m, err := Measure(Plan{Rounds: 3, RoundTime: 10 * time.Millisecond}, fake("go", 2e-6), fake("ref", 1e-6))
	require.NoError(t, err)
	require.Equal(t, 10000, m.Iters, "calibrated on the reference: 10ms / 1µs")
	require.Len(t, m.Go, 3)
	require.Len(t, m.Ref, 3)
	require.InDelta(t, 2e-6, m.Go[0], 1e-15)
	// Calibration runs the reference only; then one warm-up each, then strict alternation.
	n := len(order)
	require.Equal(t, []string{"go", "ref", "go", "ref", "go", "ref", "go", "ref"}, order[n-8:])
	for _, s := range order[:n-8] {
		require.Equal(t, "ref", s)
	}

	boom := errors.New("boom")
	_, err = Measure(Plan{Rounds: 1, RoundTime: time.Millisecond},
		func(int) (float64, error) { return 0, boom }, fake("ref", 1e-6))
	require.ErrorIs(t, err, boom)
}

func TestMemTotal(t *testing.T) {
	require.EqualValues(t, 2048<<10, memTotal("MemTotal:        2048 kB\nMemFree: 1 kB\n"))
	require.Zero(t, memTotal("nothing here"))
}
