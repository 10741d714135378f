package harness

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
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

	require.Nil(t, r.PyRounds)
	require.Zero(t, r.PyRatio)

	r, err = NewResult(Spec{Name: "add", Unit: "ns/op"}, m)
	require.NoError(t, err)
	require.Nil(t, r.Met, "no goal, no verdict")
	require.InDelta(t, 1.1e6, r.GoMedian, 1e-6)
}

func TestNewResultWithPython(t *testing.T) {
	m := Measurement{Iters: 10, Go: []float64{1e-4, 1e-4, 1e-4}, Ref: []float64{9.5e-5, 9.5e-5, 9.5e-5},
		Python: []float64{1.2e-4, 1.5e-4, 1.4e-4}}
	spec := Spec{Name: "tiny", Unit: "us/step", MaxRatio: 1.10, MinPythonRatio: 1.3}
	r, err := NewResult(spec, m)
	require.NoError(t, err)
	require.InDelta(t, 140, r.PyMedian, 1e-9)
	require.InDelta(t, 120, r.PyMin, 1e-9)
	require.InDelta(t, 150, r.PyMax, 1e-9)
	require.InDelta(t, 1.4, r.PyRatio, 1e-12, "python/go: Go is 1.4x faster")
	require.True(t, *r.Met, "go/c++ 1.053 <= 1.10")
	require.True(t, *r.PyMet)
	require.Equal(t, "python/go >= 1.3", r.PyGoal)

	m.Python = []float64{1.2e-4, 1.2e-4, 1.2e-4}
	r, err = NewResult(spec, m)
	require.NoError(t, err)
	require.False(t, *r.PyMet, "1.2 < 1.3")

	// A goal without Python rounds (Python skipped) has no verdict.
	m.Python = nil
	r, err = NewResult(spec, m)
	require.NoError(t, err)
	require.Nil(t, r.PyMet)
	require.Equal(t, "python/go >= 1.3", r.PyGoal)
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

	require.NotContains(t, res, "python_median", "no Python fields on a row without Python")

	var sb strings.Builder
	require.NoError(t, rep.WriteTable(&sb))
	require.Contains(t, sb.String(), "<= 1.03: met")
}

// Python as a third column: measured, or skipped with the reason in the table and the JSON.
func TestReportPython(t *testing.T) {
	yes, no := true, false
	py, cpp := 0.5, 0.5
	rep := &Report{
		Python: &Python{Executable: "/usr/bin/python3", Version: "3.11.2", Torch: "1.13.0a0", Threads: 1},
		Results: []Result{
			{Name: "tiny", Unit: "us/step", GoMedian: 100, CppMedian: 90, Ratio: 1.11, MaxRatio: 1.1, Met: &no,
				PyMedian: 150, PyMin: 140, PyMax: 160, PyRatio: 1.5, PyRounds: []float64{150},
				PyGoal: "python/go >= 1.3", PyMinRatio: 1.3, PyMet: &yes,
				Check: &Check{Go: 0.5, Cpp: &cpp, Python: &py, GoLosses: []float64{0.5, 0.4}}},
			{Name: "add", Unit: "ns/op", GoMedian: 2000, CppMedian: 700, Ratio: 2.9},
		},
	}
	var sb strings.Builder
	require.NoError(t, rep.WriteTable(&sb))
	out := sb.String()
	require.Contains(t, out, "Python: /usr/bin/python3 3.11.2, torch 1.13.0a0")
	require.Contains(t, out, "1.500")
	require.Contains(t, out, "go/c++ <= 1.1: NOT MET; py/go >= 1.3: met")

	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, rep.WriteJSON(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	res := doc["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"python_median", "python_min", "python_max", "python_go_ratio", "python_goal", "python_met", "python_rounds", "check"} {
		require.Contains(t, res, k)
	}
	require.Equal(t, 0.5, res["check"].(map[string]any)["python"])
	require.NotContains(t, doc["results"].([]any)[1].(map[string]any), "python_median")

	rep.Python = &Python{Executable: "/usr/bin/python3", Skipped: "torch not importable: ModuleNotFoundError"}
	rep.Results[0].PyRounds, rep.Results[0].PyMet = nil, nil
	rep.Results[0].PySkipped = rep.Python.Skipped
	sb.Reset()
	require.NoError(t, rep.WriteTable(&sb))
	out = sb.String()
	require.Contains(t, out, "Python: SKIPPED (/usr/bin/python3): torch not importable")
	require.Contains(t, out, "skipped")
	require.Contains(t, out, "py/go >= 1.3: not measured")
	require.NoError(t, rep.WriteJSON(path))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), `"python_skipped": "torch not importable: ModuleNotFoundError"`)
	require.Contains(t, string(b), `"skipped": "torch not importable`)
}

// A row with no C++ twin (Go against Python) has no C++ fields in the JSON and dashes in the
// table; a row that could not run says why.
func TestReportWithoutCpp(t *testing.T) {
	m := Measurement{Iters: 10, Go: []float64{2e-2, 2.2e-2, 2.1e-2}, Python: []float64{2.5e-2, 2.4e-2, 2.6e-2}}
	spec := Spec{Name: "jit", Unit: "ms/step", MinPythonRatio: 1, Note: "scripted"}
	r, err := NewResult(spec, m)
	require.NoError(t, err)
	require.False(t, r.HasCpp())
	require.InDelta(t, 21, r.GoMedian, 1e-9)
	require.InDelta(t, 25/21.0, r.PyRatio, 1e-12)
	require.True(t, *r.PyMet)
	require.Nil(t, r.Met, "no C++ goal")
	py := 2.3
	r.Check = &Check{Go: 2.3, Python: &py}

	skipped := SkippedResult(spec, "needs Python: torch not importable")
	require.Nil(t, skipped.PyMet)
	require.Equal(t, "python/go >= 1", skipped.PyGoal)
	rep := &Report{Results: []Result{r, skipped, {Name: "mlp", Unit: "ms/step", GoMedian: 1, CppMedian: 0.9, Ratio: 1.1,
		GoRounds: []float64{1}, CppRounds: []float64{0.9}}}}

	var sb strings.Builder
	require.NoError(t, rep.WriteTable(&sb))
	out := sb.String()
	require.Regexp(t, `jit +ms/step +21\.00 +- +25\.00 +- +1\.190 +\[20\.00–22\.00\] +- +\[24\.00–26\.00\] +py/go >= 1: met`, out)
	require.Regexp(t, `jit +ms/step +- +- +skipped .*skipped: needs Python: torch not importable`, out)
	require.Regexp(t, `mlp +ms/step +1\.000 +0\.900 +- +1\.100`, out)

	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, rep.WriteJSON(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	rows := doc["results"].([]any)
	jit, skip, mlp := rows[0].(map[string]any), rows[1].(map[string]any), rows[2].(map[string]any)
	for _, k := range []string{"cpp_median", "cpp_min", "cpp_max", "ratio", "cpp_rounds"} {
		require.NotContains(t, jit, k)
		require.NotContains(t, skip, k)
		require.Contains(t, mlp, k)
	}
	for _, k := range []string{"go_median", "python_median", "python_go_ratio", "python_met", "note", "check"} {
		require.Contains(t, jit, k)
	}
	require.NotContains(t, jit["check"].(map[string]any), "cpp")
	require.Equal(t, "needs Python: torch not importable", skip["skipped"])
	require.NotContains(t, skip, "python_met")
	require.NotContains(t, mlp, "skipped")
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
	m, err := Measure(Plan{Rounds: 3, RoundTime: 10 * time.Millisecond}, fake("go", 2e-6), fake("ref", 1e-6), nil)
	require.NoError(t, err)
	require.Equal(t, 10000, m.Iters, "calibrated on the reference: 10ms / 1µs")
	require.Len(t, m.Go, 3)
	require.Len(t, m.Ref, 3)
	require.Nil(t, m.Python, "no Python runner, no Python rounds")
	require.InDelta(t, 2e-6, m.Go[0], 1e-15)
	// Calibration runs the reference only; then one warm-up each, then strict alternation.
	n := len(order)
	require.Equal(t, []string{"go", "ref", "go", "ref", "go", "ref", "go", "ref"}, order[n-8:])
	for _, s := range order[:n-8] {
		require.Equal(t, "ref", s)
	}

	// A third side joins every round after the reference, with the same iteration count.
	order = nil
	m, err = Measure(Plan{Rounds: 2, RoundTime: 10 * time.Millisecond}, fake("go", 2e-6), fake("ref", 1e-6), fake("py", 3e-6))
	require.NoError(t, err)
	require.Equal(t, 10000, m.Iters, "calibrated on the reference, not on Python")
	require.Len(t, m.Python, 2)
	require.InDelta(t, 3e-6, m.Python[1], 1e-15)
	n = len(order)
	require.Equal(t, []string{"go", "ref", "py", "go", "ref", "py", "go", "ref", "py"}, order[n-9:])
	for _, s := range order[:n-9] {
		require.Equal(t, "ref", s)
	}

	// No C++ twin: Python calibrates, and the rounds alternate Go and Python.
	order = nil
	m, err = Measure(Plan{Rounds: 2, RoundTime: 10 * time.Millisecond}, fake("go", 2e-6), nil, fake("py", 4e-6))
	require.NoError(t, err)
	require.Equal(t, 2500, m.Iters, "calibrated on Python: 10ms / 4µs")
	require.Nil(t, m.Ref)
	require.Len(t, m.Go, 2)
	require.Len(t, m.Python, 2)
	n = len(order)
	require.Equal(t, []string{"go", "py", "go", "py", "go", "py"}, order[n-6:])
	for _, s := range order[:n-6] {
		require.Equal(t, "py", s)
	}
	// Go alone calibrates when there is no reference at all.
	m, err = Measure(Plan{Rounds: 1, RoundTime: 10 * time.Millisecond}, fake("go", 2e-6), nil, nil)
	require.NoError(t, err)
	require.Equal(t, 5000, m.Iters)

	boom := errors.New("boom")
	_, err = Measure(Plan{Rounds: 1, RoundTime: time.Millisecond},
		func(int) (float64, error) { return 0, boom }, fake("ref", 1e-6), nil)
	require.ErrorIs(t, err, boom)
	_, err = Measure(Plan{Rounds: 1, RoundTime: time.Millisecond},
		fake("go", 1e-6), fake("ref", 1e-6), func(int) (float64, error) { return 0, boom })
	require.ErrorIs(t, err, boom)
}

func TestCPUParsing(t *testing.T) {
	stat := "cpu  100 5 50 1000 20 3 2 0 7 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
	require.InDelta(t, (100+5+50+3+2+0)/100.0, parseStatBusy(stat), 1e-12, "user nice system irq softirq steal")
	require.Equal(t, -1.0, parseStatBusy("intr 1 2 3\n"))
	proc := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 30 0 0 20 0 1 0 100 0 0"
	require.InDelta(t, 2.8, parseProcStatCPU(proc), 1e-12, "utime 250 + stime 30 ticks")
	require.Equal(t, -1.0, parseProcStatCPU("garbage"))

	m := StartCPUMeter(os.Getpid())
	require.GreaterOrEqual(t, m.OtherLoad(), 0.0)
}

func TestMemTotal(t *testing.T) {
	require.EqualValues(t, 2048<<10, memTotal("MemTotal:        2048 kB\nMemFree: 1 kB\n"))
	require.Zero(t, memTotal("nothing here"))
}

// ref.py answers every command with an error when torch cannot be imported, so that benchrun can
// report Python as skipped instead of failing.
func TestPythonRefWithoutTorch(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	fake := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(fake, "torch.py"), []byte("raise ImportError('no torch here')\n"), 0o644))
	ref, err := StartRef(py, []string{"../python/ref.py", "-threads", "1", "serve"}, []string{"PYTHONPATH=" + fake})
	require.NoError(t, err)
	err = ref.Do("info", nil)
	require.ErrorContains(t, err, "torch not importable")
	require.ErrorContains(t, err, "no torch here")
	_, err = ref.Check("mlp")
	require.ErrorContains(t, err, "torch not importable")
	require.NoError(t, ref.Close())
}

func TestAtMost(t *testing.T) {
	require.Nil(t, AtMost(1, 0))
	require.Nil(t, AtMost(math.NaN(), 5))
	require.True(t, *AtMost(5, 5))
	require.False(t, *AtMost(5.01, 5))
}

func TestWriteSections(t *testing.T) {
	met, notMet := true, false
	r := &Report{
		ControlPlane: []PlaneResult{{Name: "kernel, 32 idle compiled", Median: 300, Min: 290, Max: 310, ReferenceNs: 42000,
			Goal: "<= 700 ns", Met: &met}},
		Latency: []LatencyResult{{Name: "kernel, step every 1ms", Commands: 3, Median: 0.5, SafePoints: []int{1, 0, 1},
			MaxSafePoints: 1, FromExit: Stats{Median: -2}, Goal: "next safe point", Met: &met}},
		CLI: []CLIResult{{Name: "hotcb status", Runs: 30, Median: 2.5, Min: 2, Max: 4, Reference: "Python ≈ 260 ms",
			Goal: "<= 20 ms", Met: &met}, {Name: "hotcb-torch status", Runs: 10, Median: 310}},
		Overhead: []OverheadResult{{Name: "timing + feature viz", Median: 20.4, OverheadPct: 2, Goal: "< 3%", Met: &met}},
		Memory:   []MemoryResult{{Name: "cnn", Steps: 2000, WarmupSteps: 200, StartMiB: 200, EndMiB: 210, GrowthPct: 5, Goal: "growth < 2%", Met: &notMet}},
	}
	var b strings.Builder
	require.NoError(t, r.WriteSections(&b))
	out := b.String()
	for _, want := range []string{"Control plane", "140× slower", "<= 700 ns: met", "0×1 1×2", "-2.000",
		"+2.00%", "< 3%: met", "CLI: one process", "hotcb status        30    2.500   [2.000–4.000]  0       Python ≈ 260 ms  <= 20 ms: met",
		"hotcb-torch status  10    310.0   [0.000–0.000]  0       -                -", "growth < 2%: NOT MET", "2000 (warm-up 200)"} {
		require.Contains(t, out, want)
	}
	// A report with sections only prints no training-step table.
	b.Reset()
	require.NoError(t, r.WriteTable(&b))
	require.NotContains(t, b.String(), "go/c++")
}

// The C++ reference is built with the standard the shim's Makefile picks: C++20 when the compiler
// has it (g++ 12 here), C++17 otherwise.
func TestCxxStd(t *testing.T) {
	if _, err := exec.LookPath("g++"); err == nil {
		require.Equal(t, "-std=c++20", CxxStd("g++"))
	}
	require.Equal(t, "-std=c++17", CxxStd("false"), "a compiler that refuses -std=c++20")
}
