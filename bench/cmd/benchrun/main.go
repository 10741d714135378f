// Command benchrun measures the bridge against the same work done by libtorch from C++: per-op
// overhead on tiny tensors and MLP training steps. It builds bench/cpp/ref.cpp when needed,
// alternates Go and C++ rounds, prints a table and writes a JSON report (see bench/harness).
//
//	go run ./bench/cmd/benchrun -out bench/results/latest.json
//	go run ./bench/cmd/benchrun -smoke          # under a minute, writes bench/results/smoke.json
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bench/workload"
	"github.com/hotcb/hotcb/bridge"
)

// bench is one row: a Go workload, the ref.cpp mode it is compared with, and how to report it.
type bench struct {
	harness.Spec
	Workload string
	Options  workload.Options
	Mode     string  // ref.cpp mode
	Scale    float64 // multiplies the round time (big steps need fewer, longer rounds)
}

var benches = []bench{
	{Spec: harness.Spec{Name: "add [4]+[4]", Unit: "ns/op"}, Workload: "add", Mode: "add", Scale: 1},
	{Spec: harness.Spec{Name: "add [4]+[4], Free", Unit: "ns/op",
		Note: "Go frees each result at once instead of leaving it to the GC"},
		Workload: "add", Options: workload.Options{Free: true}, Mode: "add", Scale: 1},
	{Spec: harness.Spec{Name: "relu [64]", Unit: "ns/op"}, Workload: "relu", Mode: "relu", Scale: 1},
	{Spec: harness.Spec{Name: "matmul [8x8]·[8x8]", Unit: "ns/op"}, Workload: "matmul", Mode: "matmul", Scale: 1},
	{Spec: harness.Spec{Name: "sum [16]", Unit: "ns/op"}, Workload: "sum", Mode: "sum", Scale: 1},
	{Spec: harness.Spec{Name: "MLP 784-256-10 b64 step", Unit: "ms/step", MaxRatio: 1.03},
		Workload: "mlp", Mode: "mlp", Scale: 3},
	{Spec: harness.Spec{Name: "MLP 784-256-10 b64 step, LockOSThread", Unit: "ms/step",
		Note: "the Go loop runs on one OS thread (runtime.LockOSThread)"},
		Workload: "mlp", Options: workload.Options{LockOSThread: true}, Mode: "mlp", Scale: 3},
	{Spec: harness.Spec{Name: "MLP 784-256-10 b64 step, Free+LockOSThread", Unit: "ms/step",
		Note: "the Go loop frees gradient handles and the loss, on one OS thread"},
		Workload: "mlp", Options: workload.Options{Free: true, LockOSThread: true}, Mode: "mlp", Scale: 3},
	{Spec: harness.Spec{Name: "MLP 32-64-10 b16 step", Unit: "us/step"},
		Workload: "mlp-tiny", Mode: "mlp-tiny", Scale: 2},
	{Spec: harness.Spec{Name: "MLP 32-64-10 b16 step, Free+LockOSThread", Unit: "us/step",
		Note: "the Go loop frees gradient handles and the loss, on one OS thread"},
		Workload: "mlp-tiny", Options: workload.Options{Free: true, LockOSThread: true}, Mode: "mlp-tiny", Scale: 2},
}

func main() {
	var (
		out       = flag.String("out", "", "JSON report path (default bench/results/latest.json, or smoke.json with -smoke)")
		smoke     = flag.Bool("smoke", false, "cut-down run: few short rounds")
		threads   = flag.Int("threads", 1, "intra-op threads for libtorch, OpenMP and OpenBLAS on both sides")
		rounds    = flag.Int("rounds", 9, "measured rounds per side and benchmark")
		roundTime = flag.Duration("round", 300*time.Millisecond, "aimed duration of one C++ round (scaled per benchmark)")
		only      = flag.String("only", "", "run only benchmarks whose name contains this")
		src       = flag.String("ref-src", "bench/cpp/ref.cpp", "C++ reference source")
		refBin    = flag.String("ref", "build/bench/ref", "C++ reference binary (rebuilt when older than its source)")
		cxx       = flag.String("cxx", envOr("CXX", "g++"), "C++ compiler")
		torchInc  = flag.String("torch-include", "/usr/include", "libtorch include directory")
		torchLib  = flag.String("torch-lib", "", "libtorch library directory (empty: the system's)")
	)
	flag.Parse()
	if *threads < 1 {
		fail(fmt.Errorf("-threads must be at least 1"))
	}
	// OpenBLAS and OpenMP read their thread counts when they load: set them and start again.
	if err := harness.ReexecWithThreads(*threads); err != nil {
		fail(err)
	}
	if *smoke {
		*rounds, *roundTime = 3, 40*time.Millisecond
	}
	if *out == "" {
		*out = "bench/results/latest.json"
		if *smoke {
			*out = "bench/results/smoke.json"
		}
	}
	start := time.Now()

	args := []string{"-O2", "-std=c++17", "-I" + *torchInc, "-I" + *torchInc + "/torch/csrc/api/include"}
	if *torchLib != "" {
		args = append(args, "-L"+*torchLib, "-Wl,-rpath,"+*torchLib)
	}
	args = append(args, "-ltorch", "-ltorch_cpu", "-lc10")
	if _, err := harness.BuildCpp(*cxx, *src, *refBin, args); err != nil {
		fail(err)
	}
	ref, err := harness.StartRef(*refBin, []string{"-threads", fmt.Sprint(*threads), "serve"}, nil)
	if err != nil {
		fail(err)
	}
	defer ref.Close()

	bridge.SetNumThreads(*threads)
	rep := &harness.Report{
		Date:       start.UTC().Truncate(time.Second),
		Smoke:      *smoke,
		Machine:    harness.DescribeMachine(),
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Libtorch:   bridge.Version(),
		Threads:    bridge.NumThreads(),
		ThreadEnv:  harness.ThreadEnvFor(*threads),
		Rounds:     *rounds,
		RoundTime:  roundTime.Seconds(),
	}
	// Load the BLAS for sure before looking for it.
	bridge.Randn(bridge.Shape{64, 64}).MatMul(bridge.Randn(bridge.Shape{64, 64})).Free()
	if rep.BLAS, err = harness.MappedBLAS(); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun: reading /proc/self/maps:", err)
	}
	var info struct {
		Torch   string   `json:"torch"`
		Threads int      `json:"threads"`
		BLAS    []string `json:"blas"`
	}
	if err := ref.Do("info", &info); err != nil {
		fail(err)
	}
	rep.RefBLAS = info.BLAS
	if rep.BLAS.Warning != "" {
		banner(rep.BLAS.Warning)
	}
	if info.Torch != rep.Libtorch || info.Threads != rep.Threads {
		fail(fmt.Errorf("C++ reference runs libtorch %s with %d threads, Go %s with %d",
			info.Torch, info.Threads, rep.Libtorch, rep.Threads))
	}

	checked := map[string]bool{}
	for _, b := range benches {
		if *only != "" && !strings.Contains(b.Name, *only) {
			continue
		}
		res, err := run(b, ref, harness.Plan{Rounds: *rounds, RoundTime: time.Duration(float64(*roundTime) * b.Scale)}, checked)
		if err != nil {
			fail(fmt.Errorf("%s: %w", b.Name, err))
		}
		fmt.Fprintf(os.Stderr, "  %-45s go %10s  c++ %10s  ratio %.3f\n", b.Name,
			fmt.Sprintf("%.4g", res.GoMedian), fmt.Sprintf("%.4g", res.CppMedian), res.Ratio)
		rep.Results = append(rep.Results, res)
	}
	rep.WallSeconds = math.Round(time.Since(start).Seconds()*10) / 10

	fmt.Println()
	if err := rep.WriteTable(os.Stdout); err != nil {
		fail(err)
	}
	if rep.BLAS.Warning != "" {
		banner(rep.BLAS.Warning)
	}
	if err := rep.WriteJSON(*out); err != nil {
		fail(err)
	}
	fmt.Printf("\nwrote %s (%.0f s)\n", *out, rep.WallSeconds)
}

// run measures one benchmark after checking that both sides built the same inputs.
func run(b bench, ref *harness.Ref, p harness.Plan, checked map[string]bool) (harness.Result, error) {
	// Start each benchmark without the garbage of the previous one.
	harness.Settle()
	w, err := workload.New(b.Workload, b.Options)
	if err != nil {
		return harness.Result{}, err
	}
	if !checked[b.Workload] {
		want, err := ref.Check(b.Mode)
		if err != nil {
			return harness.Result{}, err
		}
		got := w.Check()
		if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			return harness.Result{}, fmt.Errorf("Go and C++ inputs differ: check value %v vs %v", got, want)
		}
		checked[b.Workload] = true
	}
	goRun := func(iters int) (float64, error) {
		var err error
		t0 := time.Now()
		if e := bridge.Try(func() { w.Run(iters) }); e != nil {
			err = e
		}
		// Releasing what the round dropped is part of its cost.
		harness.DrainCleanups(10 * time.Second)
		return time.Since(t0).Seconds(), err
	}
	m, err := harness.Measure(p, goRun, ref.Runner(b.Mode))
	if err != nil {
		return harness.Result{}, err
	}
	return harness.NewResult(b.Spec, m)
}

func banner(msg string) {
	line := strings.Repeat("!", 100)
	fmt.Fprintf(os.Stderr, "\n%s\n%s\n%s\n\n", line, msg, line)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchrun:", err)
	os.Exit(1)
}
