// Command benchrun measures the bridge against the same work done by libtorch from C++ and by
// PyTorch from Python: per-op overhead on tiny tensors, MLP training steps, a SmallCNN training
// step, a GPT training step (examples/gpt's model through trainer.StepWith, AdamW, clipping) and
// a TorchScript model's training step (bridge/jit, against Python only, on the file Python
// scripted), and data-parallel training of the SmallCNN on 2 ranks (package dist against
// PyTorch's DistributedDataParallel, both run as jobs of rank processes) with its one-process
// baseline and the scaling between them. It builds bench/cpp/ref.cpp when needed, starts it and bench/python/ref.py,
// checks that all sides compute the same losses, alternates Go, C++ and Python rounds, prints a
// table and writes a JSON report (see bench/harness). The other sections (bench/plane) measure
// the control plane's cost per safe point, command latency from the CLI, the CLI's own run time,
// the overhead of the built-in callbacks on a training step and RSS over long runs, each printed
// as its own table and written to the same report.
//
//	go run ./bench/cmd/benchrun -out bench/results/latest.json
//	go run ./bench/cmd/benchrun -smoke          # under two minutes, writes bench/results/smoke.json
//	go run ./bench/cmd/benchrun -python ""      # without the Python column
//	go run ./bench/cmd/benchrun -sections plane,latency -out /tmp/plane.json
//	go run ./bench/cmd/benchrun -sections cli -out /tmp/cli.json
//	go run ./bench/cmd/benchrun -sections steps -only TorchScript -out /tmp/jit.json
//	go run ./bench/cmd/benchrun -sections steps -only DDP -out /tmp/ddp.json
package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bench/plane"
	"github.com/hotcb/hotcb/bench/workload"
	"github.com/hotcb/hotcb/bridge"
)

// cleanups run before the process exits, also through fail.
var cleanups []func()

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
		refMalloc = flag.String("ref-malloc", "same", "glibc malloc thresholds of the C++ and Python processes: same (as the bridge set in Go, through GLIBC_TUNABLES) or default")
		cxx       = flag.String("cxx", envOr("CXX", "g++"), "C++ compiler")
		torchInc  = flag.String("torch-include", "/usr/include", "libtorch include directory")
		torchLib  = flag.String("torch-lib", "", "libtorch library directory (empty: the system's)")
		python    = flag.String("python", envOr("HOTCB_BENCH_PYTHON", "/usr/bin/python3"), "Python with torch for the Python column (empty: skip Python)")
		pySrc     = flag.String("py-src", "bench/python/ref.py", "Python reference source")
		sectFlag  = flag.String("sections", strings.Join(defaultSections, ","), "sections to run, comma-separated (all: every one): "+strings.Join(allSections, ", "))
		// A memory child: benchrun re-executes itself to measure RSS in a fresh process.
		memChild = flag.String("memory-child", "", "(internal) run the memory section's child for this workload")
		memSteps = flag.Int("memory-steps", 0, "(internal) steps of the memory child")
		// A rank of the data-parallel rows' Go job: benchrun re-executes itself once per rank.
		ddpRank = flag.Bool("ddp-rank", false, "(internal) run as one rank of the data-parallel rows' job (torchrun's variables)")
		// The instruction-count section's Go side: benchrun re-executed under callgrind.
		instrServe = flag.Bool("instr-serve", false, "(internal) serve the instruction-count section's Go side (under callgrind)")
		valgrind   = flag.String("valgrind", "valgrind", "valgrind executable for the instr section")
		instrKeep  = flag.String("instr-keep", "", "instr section: keep the callgrind dumps in this directory (for callgrind_annotate)")
		instrCache = flag.Bool("instr-cache", false, "instr section: add callgrind's cache simulation (first- and last-level misses; about twice as slow)")
		counted    = flag.Bool("counted", false, "steps section: only the rows the instr section counts (make bench-instr)")
	)
	flag.Parse()
	if *threads < 1 {
		fail(fmt.Errorf("-threads must be at least 1"))
	}
	// OpenBLAS and OpenMP read their thread counts when they load: set them and start again.
	if err := harness.ReexecWithThreads(*threads); err != nil {
		fail(err)
	}
	if *ddpRank {
		if err := runDDPRank(*threads); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun -ddp-rank:", err)
			os.Exit(1)
		}
		return
	}
	if *instrServe {
		if err := runInstrServe(*threads, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun -instr-serve:", err)
			os.Exit(1)
		}
		return
	}
	if *memChild != "" {
		bridge.SetNumThreads(*threads)
		dir, err := os.MkdirTemp("", "hotcb-bench-memory-")
		if err != nil {
			fail(err)
		}
		err = plane.RunMemoryChild(*memChild, *memSteps, dir, os.Stdout)
		os.RemoveAll(dir)
		if err != nil {
			fail(err)
		}
		return
	}
	sections, err := parseSections(*sectFlag)
	if err != nil {
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
	otherBefore := harness.OtherLoadNow(time.Second)
	if otherBefore > harness.NoisyLoad {
		banner(fmt.Sprintf("WARNING: other processes keep %.2f CPUs busy: the numbers will be noisy", otherBefore))
	}

	dir, err := os.MkdirTemp("", "hotcb-bench-")
	if err != nil {
		fail(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	defer runCleanups()

	bridge.SetNumThreads(*threads)
	rep := &harness.Report{
		Sections:   sections.list,
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
		GoMalloc:   describeMalloc(bridge.Malloc()),
	}
	// Load the BLAS for sure before looking for it.
	bridge.Randn(bridge.Shape{64, 64}).MatMul(bridge.Randn(bridge.Shape{64, 64})).Free()
	if rep.BLAS, err = harness.MappedBLAS(); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun: reading /proc/self/maps:", err)
	}
	if rep.BLAS.Warning != "" {
		banner(rep.BLAS.Warning)
	}
	refEnv, refMallocNote, err := refMallocEnv(*refMalloc, bridge.Malloc())
	if err != nil {
		fail(err)
	}
	meter := harness.StartCPUMeter()
	if sections.has("steps") {
		rep.RefMalloc = refMallocNote
		runSteps(rep, meter, stepFlags{smoke: *smoke, threads: *threads, rounds: *rounds, roundTime: *roundTime,
			only: *only, counted: *counted, src: *src, refBin: *refBin, cxx: *cxx, torchInc: *torchInc, torchLib: *torchLib,
			python: *python, pySrc: *pySrc, dir: dir, refEnv: refEnv})
	}
	if sections.has("instr") {
		runInstr(rep, instrFlags{smoke: *smoke, threads: *threads, only: *only, src: *src, refBin: *refBin, cxx: *cxx,
			torchInc: *torchInc, torchLib: *torchLib, python: *python, pySrc: *pySrc, dir: dir, refEnv: refEnv,
			valgrind: *valgrind, keep: *instrKeep, cacheSim: *instrCache})
	}
	runPlane(rep, sections, planeFlags{smoke: *smoke, threads: *threads, dir: dir})
	rep.WallSeconds = math.Round(time.Since(start).Seconds()*10) / 10
	rep.OtherLoadBefore, rep.OtherLoad = otherBefore, meter.OtherLoad()

	fmt.Println()
	if err := rep.WriteTable(os.Stdout); err != nil {
		fail(err)
	}
	if err := rep.WriteInstrTable(os.Stdout); err != nil {
		fail(err)
	}
	if err := rep.WriteSections(os.Stdout); err != nil {
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

// stepFlags are the flags of the training-step rows.
type stepFlags struct {
	smoke, counted                                                 bool
	threads, rounds                                                int
	roundTime                                                      time.Duration
	only, src, refBin, cxx, torchInc, torchLib, python, pySrc, dir string
	refEnv                                                         []string // added to the references' environment
}

// runSteps measures the training-step rows (Go against C++ and Python) into rep; the meter
// counts the reference processes as ours. They stay up until the run's cleanups.
func runSteps(rep *harness.Report, meter *harness.CPUMeter, f stepFlags) {
	if err := buildCppRef(f.cxx, f.src, f.refBin, f.torchInc, f.torchLib); err != nil {
		fail(err)
	}
	ref, err := harness.StartRef(f.refBin, []string{"-threads", fmt.Sprint(f.threads), "serve"}, f.refEnv)
	if err != nil {
		fail(err)
	}
	cleanups = append(cleanups, func() { ref.Close() })
	var info struct {
		Torch   string   `json:"torch"`
		Threads int      `json:"threads"`
		BLAS    []string `json:"blas"`
	}
	if err := ref.Do("info", &info); err != nil {
		fail(err)
	}
	rep.RefBLAS = info.BLAS
	if info.Torch != rep.Libtorch || info.Threads != rep.Threads {
		fail(fmt.Errorf("C++ reference runs libtorch %s with %d threads, Go %s with %d",
			info.Torch, info.Threads, rep.Libtorch, rep.Threads))
	}

	var py *harness.Ref
	rep.Python, py = startPython(f.python, f.pySrc, f.threads, rep.Threads, f.refEnv)
	if py != nil {
		cleanups = append(cleanups, func() { py.Close() })
		if v := rep.Python.Torch; !sameMinor(v, rep.Libtorch) {
			banner(fmt.Sprintf("WARNING: Python's torch is %s, the bridge's libtorch %s: the Python column "+
				"compares different libtorch builds", v, rep.Libtorch))
		}
	}

	meter.Add(ref.Pid())
	if py != nil {
		meter.Add(py.Pid())
	}
	s := &session{cpp: ref, py: py, dir: f.dir, checks: map[string]*harness.Check{}, written: map[string]workload.Options{},
		meter: meter, threads: f.threads, python: f.python, pySrc: f.pySrc, refEnv: f.refEnv}
	cleanups = append(cleanups, s.closeJobs)
	countedRows := map[string]bool{}
	for _, r := range instrRows(f.only, f.smoke) {
		countedRows[r.Name] = true
	}
	for _, b := range benches {
		if f.only != "" && !strings.Contains(b.Name, f.only) {
			continue
		}
		if f.counted && !countedRows[b.Name] {
			continue
		}
		if (b.NoCpp || b.PyWrites) && py == nil {
			res := harness.SkippedResult(b.Spec, "needs Python: "+rep.Python.Skipped)
			fmt.Fprintf(os.Stderr, "  %-45s skipped (%s)\n", b.Name, res.Skipped)
			rep.Results = append(rep.Results, res)
			continue
		}
		plan := harness.Plan{Rounds: f.rounds, RoundTime: time.Duration(float64(f.roundTime) * b.Scale)}
		var res harness.Result
		var err error
		if b.Job {
			res, err = s.runJob(b, plan)
		} else {
			res, err = s.run(b, plan)
		}
		if err != nil {
			fail(fmt.Errorf("%s: %w", b.Name, err))
		}
		if b.Python && py == nil {
			res.PySkipped = rep.Python.Skipped
		}
		line := fmt.Sprintf("  %-45s go %10.4g", b.Name, res.GoMedian)
		if res.HasCpp() {
			line += fmt.Sprintf("  c++ %10.4g  go/c++ %.3f", res.CppMedian, res.Ratio)
		}
		if len(res.PyRounds) > 0 {
			line += fmt.Sprintf("  python %10.4g  py/go %.3f", res.PyMedian, res.PyRatio)
		}
		fmt.Fprintln(os.Stderr, line)
		rep.Results = append(rep.Results, res)
	}
	s.closeJobs()
	addScaling(rep.Results)
}

// addScaling gives the data-parallel rows whose one-process baseline ran their Scaling.
func addScaling(results []harness.Result) {
	for _, b := range benches {
		if b.ScalingBase == "" {
			continue
		}
		var row, base *harness.Result
		for i := range results {
			switch results[i].Name {
			case b.Name:
				row = &results[i]
			case b.ScalingBase:
				base = &results[i]
			}
		}
		if row == nil || base == nil || row.Skipped != "" || base.Skipped != "" {
			continue
		}
		sc, err := harness.NewScaling(*row, *base, workload.DDPSmall.Ranks, workload.DDPSmall.Batch)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun: scaling:", err)
			continue
		}
		row.Scaling = sc
		fmt.Fprintf(os.Stderr, "  %s\n", sc)
	}
}

// startPython starts bench/python/ref.py and reads its info. Python is optional: when it cannot
// run (no interpreter, torch not importable, a different thread count) the report says why and
// the Python column reads "skipped".
func startPython(python, src string, threads, goThreads int, env []string) (*harness.Python, *harness.Ref) {
	info := &harness.Python{Executable: python}
	skip := func(why string) (*harness.Python, *harness.Ref) {
		info.Skipped = why
		banner("Python reference skipped: " + why)
		return info, nil
	}
	if python == "" {
		return skip("disabled with -python \"\"")
	}
	if _, err := exec.LookPath(python); err != nil {
		return skip(err.Error())
	}
	if _, err := os.Stat(src); err != nil {
		return skip(err.Error())
	}
	ref, err := harness.StartRef(python, []string{src, "-threads", fmt.Sprint(threads), "serve"}, env)
	if err != nil {
		return skip(err.Error())
	}
	var a struct {
		Python  string   `json:"python"`
		Torch   string   `json:"torch"`
		Threads int      `json:"threads"`
		BLAS    []string `json:"blas"`
	}
	if err := ref.Do("info", &a); err != nil {
		ref.Close()
		return skip(err.Error())
	}
	info.Version, info.Torch, info.Threads, info.BLAS = a.Python, a.Torch, a.Threads, a.BLAS
	if a.Threads != goThreads {
		ref.Close()
		return skip(fmt.Sprintf("Python's torch runs %d threads, Go %d", a.Threads, goThreads))
	}
	if b := harness.ClassifyBLAS(a.BLAS); b.Kind == "reference" {
		banner("Python: " + b.Warning)
	}
	return info, ref
}

// session holds the reference processes and what was checked.
type session struct {
	cpp, py *harness.Ref // py is nil when Python is skipped
	dir     string       // where workloads save their inputs for the references
	checks  map[string]*harness.Check
	written map[string]workload.Options // by mode: the files ref.py wrote for the Go side

	// The data-parallel rows (runJob): their jobs, and what starting them needs.
	jobs          *jobs
	meter         *harness.CPUMeter
	threads       int
	python, pySrc string
	refEnv        []string
	goRank        []string // the Go rank's command line (default: this binary -threads N -ddp-rank)
}

// run measures one benchmark after checking that all sides compute the same values.
func (s *session) run(b bench, p harness.Plan) (harness.Result, error) {
	// Start each benchmark without the garbage of the previous one.
	harness.Settle()
	o := b.Options
	if b.PyWrites {
		files, err := s.write(b.Mode)
		if err != nil {
			return harness.Result{}, err
		}
		o.Script, o.Batch = files.Script, files.Batch
	}
	w, err := workload.New(b.Workload, o)
	if err != nil {
		return harness.Result{}, err
	}
	py := s.py
	if !b.Python {
		py = nil
	}
	key := fmt.Sprintf("%s python=%v", b.Workload, py != nil)
	chk, ok := s.checks[key]
	if !ok {
		if chk, err = s.check(b, w, py); err != nil {
			return harness.Result{}, err
		}
		s.checks[key] = chk
		harness.Settle()
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
	var cppRun, pyRun harness.Runner
	if !b.NoCpp {
		cppRun = s.cpp.Runner(b.Mode)
	}
	if py != nil {
		pyRun = py.Runner(b.Mode)
	}
	m, err := harness.Measure(p, goRun, cppRun, pyRun)
	if err != nil {
		return harness.Result{}, err
	}
	res, err := harness.NewResult(b.Spec, m)
	res.Check = chk
	return res, err
}

// write has ref.py write mode's files into the run's directory, once per run, and returns
// their paths as workload options (Script, Batch).
func (s *session) write(mode string) (workload.Options, error) {
	if o, ok := s.written[mode]; ok {
		return o, nil
	}
	var a struct{ Script, Batch string }
	if err := s.py.Do("write "+mode+" "+s.dir, &a); err != nil {
		return workload.Options{}, err
	}
	o := workload.Options{Script: a.Script, Batch: a.Batch}
	s.written[mode] = o
	return o, nil
}

// side is one reference process of a check.
type side struct {
	name string
	ref  *harness.Ref
}

// check makes the references load the workload's inputs if it saves them, then compares the
// check values and, for training steps, the first losses of a fresh model on every side.
func (s *session) check(b bench, w workload.Workload, py *harness.Ref) (*harness.Check, error) {
	w = workload.Unwrap(w)
	var refs []side
	if !b.NoCpp {
		refs = append(refs, side{"C++", s.cpp})
	}
	if py != nil {
		refs = append(refs, side{"Python", py})
	}
	if sv, ok := w.(workload.Saver); ok {
		path := filepath.Join(s.dir, b.Mode+".pt")
		if err := sv.Save(path); err != nil {
			return nil, err
		}
		for _, r := range refs {
			if err := r.ref.Load(b.Mode, path); err != nil {
				return nil, err
			}
		}
	}
	c := &harness.Check{}
	var goVal float64
	if e := bridge.Try(func() { goVal = w.Check() }); e != nil {
		return nil, e
	}
	c.Go = goVal
	tr, trains := w.(workload.Trainer)
	if trains {
		if e := bridge.Try(func() { c.GoLosses = tr.Losses(lossSteps) }); e != nil {
			return nil, e
		}
	}
	return c, compareRefs(b, c, trains, refs, s.cpp)
}

// compareRefs asks every reference for b's check value (and, for a training step, the losses of
// a fresh model's first lossSteps steps), records them in c beside Go's, which c already holds,
// and fails unless they agree. cpp is the C++ reference: its values go to c.Cpp.
func compareRefs(b bench, c *harness.Check, trains bool, refs []side, cpp *harness.Ref) error {
	var errs []error
	compare := func(side string, got, want float64, tol float64) {
		d := math.Abs(got-want) / math.Max(1, math.Abs(want))
		c.MaxRelDiff = math.Max(c.MaxRelDiff, d)
		if !(d <= tol) {
			errs = append(errs, fmt.Errorf("%s computes %v, Go %v", side, got, want))
		}
	}
	for _, r := range refs {
		var val float64
		var losses []float64
		var err error
		if trains {
			val, losses, err = r.ref.Losses(b.Mode, lossSteps)
		} else {
			val, err = r.ref.Check(b.Mode)
		}
		if err != nil {
			return err
		}
		compare(r.name+" check", val, c.Go, checkTol)
		for k, l := range losses {
			compare(fmt.Sprintf("%s loss of step %d", r.name, k+1), l, c.GoLosses[k], lossTol)
		}
		if r.ref == cpp {
			c.Cpp, c.CppLosses = &val, losses
		} else {
			c.Python, c.PythonLosses = &val, losses
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the sides compute different values: %w", errors.Join(errs...))
	}
	msg := fmt.Sprintf("  check %-12s go %.9g", b.Workload, c.Go)
	if trains {
		msg = fmt.Sprintf("  check %-12s losses go %.9g", b.Workload, c.GoLosses)
	}
	var names []string
	for _, r := range refs {
		names = append(names, r.name)
	}
	agree := "agree"
	if len(names) == 1 {
		agree = "agrees"
	}
	fmt.Fprintf(os.Stderr, "%s: %s %s (max rel diff %.2g)\n", msg, strings.Join(names, " and "), agree, c.MaxRelDiff)
	return nil
}

// sameMinor reports whether two versions agree in major and minor ("1.13.0a0", "1.13.0").
func sameMinor(a, b string) bool {
	minor := func(v string) string {
		parts := strings.SplitN(v, ".", 3)
		return strings.Join(parts[:min(2, len(parts))], ".")
	}
	return minor(a) == minor(b)
}

func runCleanups() {
	for _, f := range cleanups {
		f()
	}
	cleanups = nil
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
	runCleanups()
	fmt.Fprintln(os.Stderr, "benchrun:", err)
	os.Exit(1)
}

// describeMalloc says what the bridge set in glibc's malloc (HOTCB_MALLOC).
func describeMalloc(m bridge.MallocTuning) string {
	if !m.Applied {
		return "glibc defaults (" + m.Note + ")"
	}
	return fmt.Sprintf("M_TRIM_THRESHOLD %d MiB, M_MMAP_THRESHOLD %d MiB (bridge default; HOTCB_MALLOC=default to compare)",
		m.TrimThreshold>>20, m.MmapThreshold>>20)
}

// refMallocEnv returns the environment that gives the reference processes the malloc thresholds
// the bridge set in this one ("same"), or none ("default"), and says which in the report.
func refMallocEnv(mode string, m bridge.MallocTuning) ([]string, string, error) {
	switch mode {
	case "default":
		return nil, "glibc defaults (-ref-malloc default)", nil
	case "same":
		if !m.Applied {
			return nil, "glibc defaults, as the Go process", nil
		}
		return []string{fmt.Sprintf("GLIBC_TUNABLES=glibc.malloc.trim_threshold=%d:glibc.malloc.mmap_threshold=%d",
				m.TrimThreshold, m.MmapThreshold)},
			"same thresholds as Go, through GLIBC_TUNABLES", nil
	}
	return nil, "", fmt.Errorf("-ref-malloc %q: want same or default", mode)
}
