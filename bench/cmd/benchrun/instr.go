package main

// The instruction-count section (-sections instr): the Go side (this binary re-executed with
// -instr-serve), the C++ reference and the Python reference each run as one process under
// callgrind (bench/instr), uninstrumented until a row's counted window. For every row the
// harness makes the three processes build the same workload (the Go side saves the inputs the
// references load, or loads the files Python wrote, as in the training-step section), checks
// that they compute the same losses, warms each up, then has each run one counted window and
// reads its dump back: instructions per iteration of the thread that ran the window.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bench/instr"
	"github.com/hotcb/hotcb/bench/workload"
	"github.com/hotcb/hotcb/bridge"
)

// instrGOMAXPROCS is the counted Go process's GOMAXPROCS, fixed so that its runtime behaves
// alike on every machine. With one P, sysmon would take the P away during every long cgo call
// (and under valgrind every call is long); with two, the idle one keeps it from doing so.
const instrGOMAXPROCS = 2

// instrRow is one row of the instruction-count section: a training-step or per-op row, and how
// the Go side runs it when counted.
type instrRow struct {
	bench
	index   int              // in benches: the Go server's key
	opts    workload.Options // what the Go side runs (per-op rows: results freed at once)
	iters   int              // counted iterations per side
	warm    int              // uncounted iterations before them (after the check)
	note    string
	skipped string // why the row is not counted
}

// instrSizes returns the counted and warm-up iterations of a workload: windows of roughly
// 10–100 million instructions per side or more, enough that the window's fixed cost (the client
// requests, one dump: a few thousand instructions) is below 0.1%. Counts are deterministic, so
// a longer window buys nothing but time.
func instrSizes(name string, smoke bool) (iters, warm int) {
	switch name {
	case "mlp-tiny":
		iters, warm = 200, 20
	case "mlp":
		iters, warm = 10, 3
	case "cnn", "gpt", "jit":
		// jit: the profiling executor optimizes the graph on the second run; three warm-up
		// steps put the window on the optimized graph.
		iters, warm = 2, 3
	default: // per-op rows
		iters, warm = 2000, 200
	}
	if smoke {
		iters = max(1, iters/10)
	}
	return iters, warm
}

// instrRows lists the rows the section counts, in benches' order. Per-op rows are counted with
// each result freed at once (as C++ and Python free theirs): a dropped result is freed by the
// collector's cleanups, on other threads, at times the collector picks, which a count of one
// thread misses and a count of every thread makes depend on timing. For the same reason the
// training-step rows that leave their tensors to the collector (plain, LockOSThread) are not
// counted, nor are the data-parallel rows (several processes, Gloo's threads).
func instrRows(only string, smoke bool) []instrRow {
	var rows []instrRow
	freed := map[string]bool{} // op workloads with a row of their own that frees each result
	for _, b := range benches {
		if isOp(b.Workload) && b.Options.Free {
			freed[b.Workload] = true
		}
	}
	for i, b := range benches {
		if only != "" && !strings.Contains(b.Name, only) {
			continue
		}
		r := instrRow{bench: b, index: i, opts: b.Options}
		r.iters, r.warm = instrSizes(b.Workload, smoke)
		switch {
		case b.Job:
			continue // several processes: see above
		case isOp(b.Workload):
			if !b.Options.Free {
				if freed[b.Workload] {
					continue // counted under the row that frees each result
				}
				r.opts.Free = true
				r.note = "counted with each result freed at once, as C++ frees it"
			}
		case b.Options.Scoped, b.Options.FreeAll, b.Workload == "gpt", b.Workload == "jit":
		default:
			continue // plain and LockOSThread steps: their frees run in the collector
		}
		rows = append(rows, r)
	}
	return rows
}

func isOp(workload string) bool {
	switch workload {
	case "mlp", "mlp-tiny", "cnn", "gpt", "jit", "":
		return false
	}
	return true
}

// instrFlags are what the section needs from the command line.
type instrFlags struct {
	smoke                                                          bool
	threads                                                        int
	only, src, refBin, cxx, torchInc, torchLib, python, pySrc, dir string
	refEnv                                                         []string
	valgrind, keep                                                 string // keep: where the dumps go (default: the run's temporary directory)
	cacheSim                                                       bool
}

// instrProc is one side's process under callgrind.
type instrProc struct {
	name string // "go", "cpp", "python": the dumps' file name
	ref  *harness.Ref
	dir  string
	seen map[string]instr.Dump
}

// window runs a counted window of cmd ("instr MODE ITERS LABEL") and reads its dump.
func (p *instrProc) window(mode string, iters int, label string) (harness.InstrSide, error) {
	var a struct {
		Seconds      *float64 `json:"seconds"`
		GoAllocBytes float64  `json:"go_alloc_bytes"`
		GoAllocs     float64  `json:"go_allocs"`
	}
	if err := p.ref.Do(fmt.Sprintf("instr %s %d %s", mode, iters, label), &a); err != nil {
		return harness.InstrSide{}, err
	}
	if a.Seconds == nil {
		return harness.InstrSide{}, fmt.Errorf("%s: instr %s: answer without seconds", p.name, mode)
	}
	d, err := instr.FindWindow(p.dir, p.name, p.ref.Pid(), label, p.seen)
	if err != nil {
		return harness.InstrSide{}, err
	}
	side := harness.InstrSide{Seconds: *a.Seconds, Events: map[string]float64{},
		GoAllocBytes: a.GoAllocBytes / float64(iters), GoAllocs: a.GoAllocs / float64(iters)}
	for i, e := range d.Events {
		side.Events[e] = float64(d.Totals[i]) / float64(iters)
	}
	side.Ir = side.Events["Ir"]
	if side.Ir == 0 {
		return side, fmt.Errorf("%s: dump %s counted no instructions", p.name, d.Path)
	}
	if len(side.Events) == 1 {
		side.Events = nil // Ir says it all
	}
	return side, nil
}

// runInstr runs the instruction-count section into rep.
func runInstr(rep *harness.Report, f instrFlags) {
	start := time.Now()
	info := &harness.InstrInfo{CacheSim: f.cacheSim, GOMAXPROCS: instrGOMAXPROCS}
	rep.Instr = info
	defer func() { info.Seconds = time.Since(start).Round(100 * time.Millisecond).Seconds() }()
	skip := func(why string) {
		info.Skipped = why
		banner("instruction counts skipped: " + why)
	}
	vg, err := exec.LookPath(f.valgrind)
	if err != nil {
		skip(err.Error())
		return
	}
	if !bridge.CallgrindAvailable() {
		skip("benchrun was built without -tags callgrind (make bench-instr builds it so)")
		return
	}
	out, err := exec.Command(vg, "--version").Output()
	if err != nil {
		skip(fmt.Sprintf("%s --version: %v", vg, err))
		return
	}
	info.Valgrind = strings.TrimSpace(string(out))
	dir := f.keep
	if dir == "" {
		dir = filepath.Join(f.dir, "callgrind")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	if err := buildCppRef(f.cxx, f.src, f.refBin, f.torchInc, f.torchLib); err != nil {
		fail(err)
	}
	marks := filepath.Join(filepath.Dir(f.refBin), "libhotcb_callgrind_marks.so")
	if err := buildMarks(marks); err != nil {
		fail(err)
	}
	preload := filepath.Join(filepath.Dir(f.refBin), "libhotcb_instr_preload.so")
	if err := instr.BuildPreload(envOr("CC", "cc"), preload); err != nil {
		fail(err)
	}
	opts := instr.Options{Valgrind: vg, Dir: dir, CacheSim: f.cacheSim}
	info.Command = opts.Args()[1:]
	for i, a := range info.Command {
		if strings.HasPrefix(a, "--callgrind-out-file=") {
			info.Command[i] = "--callgrind-out-file=DIR/SIDE.%p"
		}
	}
	// Every counted process: one thread everywhere (the thread variables came with the re-exec
	// and are inherited), Python's hashes fixed, the Go runtime's P count fixed, its asynchronous
	// preemption and RDTSCP off (instr.GoDebug says why), and the preload that keeps libtorch's
	// libhwy from dying of SIGILL under valgrind at load time (instr.BuildPreload).
	env := append([]string{"PYTHONHASHSEED=0", "GOMAXPROCS=" + strconv.Itoa(instrGOMAXPROCS),
		"GODEBUG=" + instr.GoDebug, instr.PreloadEnv(preload)}, f.refEnv...)
	info.Env = append(harness.ThreadEnvFor(f.threads), env...)
	info.Note = "each side's process runs under callgrind with its instrumentation off but for the counted windows; " +
		"a window counts the thread that ran it (client requests, --separate-threads=yes); the Go side runs each " +
		"window on one locked thread after runtime.GC, with the collector off (SetGCPercent(-1)) and no heap " +
		"profiling (MemProfileRate 0)"

	start1 := func(name string, argv []string, extra ...string) *instrProc {
		o := opts
		o.Name = name
		r, err := harness.StartRef(vg, o.Args(argv...)[1:], append(env, extra...))
		if err != nil {
			fail(fmt.Errorf("instr: start %s: %w", name, err))
		}
		cleanups = append(cleanups, func() { r.Close() })
		// Wait until it has started (loading libtorch, or importing torch, is most of a
		// process's time under valgrind) before starting the next: one busy valgrind at a time.
		var a struct {
			Threads int `json:"threads"`
		}
		t0 := time.Now()
		if err := r.Do("info", &a); err != nil {
			fail(fmt.Errorf("instr: %s: %w", name, err))
		}
		if a.Threads != f.threads {
			fail(fmt.Errorf("instr: %s runs %d threads, want %d", name, a.Threads, f.threads))
		}
		fmt.Fprintf(os.Stderr, "  %s started under callgrind in %.0f s\n", name, time.Since(t0).Seconds())
		return &instrProc{name: name, ref: r, dir: dir, seen: map[string]instr.Dump{}}
	}
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	section("instructions: callgrind, one counted window per row and side")
	goArgv := []string{exe, "-threads", fmt.Sprint(f.threads), "-instr-serve"}
	cppArgv := []string{f.refBin, "-threads", fmt.Sprint(f.threads), "serve"}
	goP, cppP := start1("go", goArgv), start1("cpp", cppArgv)
	restart := func() {
		for _, p := range []*instrProc{goP, cppP} {
			if err := p.ref.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "instr: %s exited: %v\n", p.name, err)
			}
		}
		goP, cppP = start1("go", goArgv), start1("cpp", cppArgv)
	}
	var pyP *instrProc
	if f.python != "" && rep.Python != nil && rep.Python.Skipped == "" {
		pyP = start1("python", []string{f.python, f.pySrc, "-threads", fmt.Sprint(f.threads), "serve"},
			"HOTCB_INSTR_MARK="+marks)
	} else if rep.Python == nil {
		// The training-step section did not run: start Python to see whether it can.
		var py *harness.Ref
		rep.Python, py = startPython(f.python, f.pySrc, f.threads, f.threads, f.refEnv)
		if py != nil {
			py.Close()
			pyP = start1("python", []string{f.python, f.pySrc, "-threads", fmt.Sprint(f.threads), "serve"},
				"HOTCB_INSTR_MARK="+marks)
		}
	}
	written := map[string][2]string{} // Python's files, by mode
	used, opBefore := false, false
	for _, r := range instrRows(f.only, f.smoke) {
		t0 := time.Now()
		// Each per-op row is counted in Go and C++ processes of its own, and the training-step
		// rows in one more pair: a per-op window is thousands of ops of a few thousand
		// instructions, each allocating on the Go heap and glibc's, and how an earlier row left
		// those heaps moved its count by up to 3.5% between runs (bench/README.md, the heaps).
		op := isOp(r.Workload)
		if used && (op || opBefore) {
			restart()
		}
		used, opBefore = true, op
		res, err := instrOne(r, goP, cppP, pyP, f.dir, written)
		res.Seconds = time.Since(t0).Round(100 * time.Millisecond).Seconds()
		if err != nil {
			fail(fmt.Errorf("instr: %s: %w", r.Name, err))
		}
		for _, w := range rep.Results {
			if w.Name == r.Name && w.Skipped == "" {
				res.WallRatio, res.WallPyRatio = w.Ratio, w.PyRatio
			}
		}
		line := fmt.Sprintf("  %-45s go %9s", r.Name, harness.Count(res.Go.Ir))
		if res.Cpp != nil {
			line += fmt.Sprintf("  c++ %9s  go/c++ %.4f", harness.Count(res.Cpp.Ir), res.Ratio)
		}
		if res.Python != nil {
			line += fmt.Sprintf("  python %9s  py/go %.4f", harness.Count(res.Python.Ir), res.PyRatio)
		}
		fmt.Fprintln(os.Stderr, line)
		rep.Instructions = append(rep.Instructions, res)
	}
	for _, p := range []*instrProc{goP, cppP, pyP} {
		if p != nil {
			if err := p.ref.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "instr: %s exited: %v\n", p.name, err)
			}
		}
	}
}

// instrOne counts one row on every side.
func instrOne(r instrRow, goP, cppP, pyP *instrProc, dir string, written map[string][2]string) (harness.InstrResult, error) {
	res := harness.InstrResult{Name: r.Name, Unit: "instructions/op", Iters: r.iters, Warmup: r.warm, Note: r.note}
	if !strings.HasSuffix(r.Unit, "/op") {
		res.Unit = "instructions/step"
	}
	py := pyP
	if !r.Python {
		py = nil
	}
	if r.PyWrites && py == nil {
		res.Skipped = "needs Python"
		return res, nil
	}
	// The Go side's workload, with the inputs it saves for the references or loads from
	// Python's files.
	key := strconv.Itoa(r.index)
	spec := instrSpec{Row: r.index, Options: r.opts}
	if r.PyWrites {
		files, ok := written[r.Mode]
		if !ok {
			var a struct{ Script, Batch string }
			if err := py.ref.Do("write "+r.Mode+" "+dir, &a); err != nil {
				return res, err
			}
			files = [2]string{a.Script, a.Batch}
			written[r.Mode] = files
		}
		spec.Options.Script, spec.Options.Batch = files[0], files[1]
	}
	var refs []side
	if !r.NoCpp {
		refs = append(refs, side{"C++", cppP.ref})
	}
	if py != nil {
		refs = append(refs, side{"Python", py.ref})
	}
	spec.Save = filepath.Join(dir, "instr-"+r.Mode+".pt")
	var made struct {
		Saved  bool `json:"saved"`
		Trains bool `json:"trains"`
	}
	b, _ := json.Marshal(spec)
	if err := goP.ref.Do("new "+string(b), &made); err != nil {
		return res, err
	}
	if made.Saved {
		for _, s := range refs {
			if err := s.ref.Load(r.Mode, spec.Save); err != nil {
				return res, err
			}
		}
	}
	// The counted processes compute the same check value (for a training step, a fresh
	// model's first loss: the same data and weights). That the updates agree too is the
	// training-step section's check (the losses of three steps); here it would cost three more
	// steps per side under valgrind.
	c := &harness.Check{}
	var err error
	if c.Go, err = goP.ref.Check(key); err != nil {
		return res, err
	}
	if err := compareRefs(r.bench, c, false, refs, cppP.ref); err != nil {
		return res, err
	}
	res.Check = c

	type counted struct {
		p    *instrProc
		mode string
		out  **harness.InstrSide
	}
	sides := []counted{{goP, key, nil}}
	if !r.NoCpp {
		sides = append(sides, counted{cppP, r.Mode, &res.Cpp})
	}
	if py != nil {
		sides = append(sides, counted{py, r.Mode, &res.Python})
	}
	// The sides warm up and count at once, each in its own process: a count does not depend on
	// what else runs on the machine, and the section takes half the time on two cores.
	got := make([]harness.InstrSide, len(sides))
	errs := make([]error, len(sides))
	var wg sync.WaitGroup
	for i, s := range sides {
		wg.Go(func() {
			if _, err := s.p.ref.Runner(s.mode)(r.warm); err != nil {
				errs[i] = fmt.Errorf("%s warm-up: %w", s.p.name, err)
				return
			}
			got[i], errs[i] = s.p.window(s.mode, r.iters, fmt.Sprintf("row%d-%s", r.index, s.p.name))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	for i, s := range sides {
		if s.out == nil {
			res.Go = got[i]
		} else {
			*s.out = &got[i]
		}
	}
	harness.JudgeInstr(r.Spec, &res)
	return res, nil
}

// instrSpec is what the Go server's "new" command builds: benches[Row] with Options (Script
// and Batch set for a row whose files Python wrote), saving its inputs to Save when the
// workload is a Saver.
type instrSpec struct {
	Row     int              `json:"row"`
	Options workload.Options `json:"options"`
	Save    string           `json:"save,omitempty"`
}

// runInstrServe is the Go side of the section, run under callgrind: it answers the reference
// protocol, keyed by row (benches' index) instead of mode, on stdin and stdout:
//
//	new JSON               → {"row":..,"saved":bool,"trains":bool}  builds an instrSpec
//	check ROW [STEPS]      → {"check":..[,"losses":[..]]}
//	run ROW ITERS          → {"seconds":..}
//	instr ROW ITERS LABEL  → {"seconds":..,"go_alloc_bytes":..,"go_allocs":..}  one counted window
//	info                   → {"torch":..,"threads":..,"go":..}
//	quit
//
// Everything runs on this goroutine, locked to its thread, so that a window's dump (which
// callgrind writes for the requesting thread) holds the whole window.
func runInstrServe(threads int, in io.Reader, out io.Writer) error {
	runtime.LockOSThread()
	// Heap profiling samples allocations at random points, each with a stack walk: off, so that
	// the same work counts the same instructions.
	runtime.MemProfileRate = 0
	bridge.SetNumThreads(threads)
	state := map[int]workload.Workload{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "quit" {
			return nil
		}
		ans, err := instrServeSafe(f, state)
		if err != nil {
			ans = map[string]string{"error": err.Error()}
		}
		b, _ := json.Marshal(ans)
		w.Write(append(b, '\n'))
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}

// instrServeSafe answers one command; a panic (a bridge error, a workload's) is its error.
func instrServeSafe(f []string, state map[int]workload.Workload) (ans any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %v", f[0], r)
		}
	}()
	return instrServeOne(f, state)
}

func instrServeOne(f []string, state map[int]workload.Workload) (any, error) {
	switch f[0] {
	case "info":
		return map[string]any{"torch": bridge.Version(), "threads": bridge.NumThreads(), "go": runtime.Version()}, nil
	case "new":
		var spec instrSpec
		if len(f) != 2 {
			return nil, errors.New("usage: new JSON")
		}
		if err := json.Unmarshal([]byte(f[1]), &spec); err != nil {
			return nil, err
		}
		if spec.Row < 0 || spec.Row >= len(benches) {
			return nil, fmt.Errorf("no row %d", spec.Row)
		}
		delete(state, spec.Row)
		runtime.GC()
		wl, err := workload.New(benches[spec.Row].Workload, spec.Options)
		if err != nil {
			return nil, err
		}
		state[spec.Row] = wl
		a := map[string]any{"row": spec.Row, "saved": false}
		if sv, ok := workload.Unwrap(wl).(workload.Saver); ok && spec.Save != "" {
			if err := sv.Save(spec.Save); err != nil {
				return nil, err
			}
			a["saved"] = true
		}
		_, a["trains"] = workload.Unwrap(wl).(workload.Trainer)
		return a, nil
	}
	if len(f) < 2 {
		return nil, fmt.Errorf("%s needs a row", f[0])
	}
	row, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, fmt.Errorf("row %q: %w", f[1], err)
	}
	wl := state[row]
	if wl == nil {
		return nil, fmt.Errorf("row %d: new first", row)
	}
	n := 0
	if len(f) > 2 {
		if n, err = strconv.Atoi(f[2]); err != nil || n < 0 {
			return nil, fmt.Errorf("%s: %q is not a count", f[0], f[2])
		}
	}
	switch f[0] {
	case "check":
		// In a scope: the check's tensors (a fresh model's, an op's result) are freed here, on
		// the thread that made them, not by cleanups on other threads, whose frees leave glibc's
		// heap in an order that moved later windows' counts by up to 1.4% (aten.Tril, in
		// _int_free, malloc_consolidate and _int_memalign).
		var c float64
		bridge.Scope(func() { c = wl.Check() })
		a := map[string]any{"row": row, "check": c}
		if n > 0 {
			tr, ok := workload.Unwrap(wl).(workload.Trainer)
			if !ok {
				return nil, fmt.Errorf("row %d does not train", row)
			}
			a["losses"] = tr.Losses(n)
		}
		return a, nil
	case "run":
		if n < 1 {
			return nil, errors.New("run needs a positive iteration count")
		}
		t0 := time.Now()
		wl.Run(n)
		harness.DrainCleanups(10 * time.Second)
		return map[string]any{"row": row, "iters": n, "seconds": time.Since(t0).Seconds()}, nil
	case "instr":
		if n < 1 || len(f) != 4 {
			return nil, errors.New("usage: instr ROW ITERS LABEL")
		}
		if !bridge.OnValgrind() {
			return nil, errors.New("instr: not running under valgrind")
		}
		// The window's garbage is left for later: a collection's work, and the cleanups it
		// queues, run on other threads at times that depend on the machine. With the collector
		// off the heap grows through the window, and how much of that growth takes new memory
		// from the system (and the runtime's instructions to map it) depends on the heap left by
		// earlier rows: a run of the window's size first, then a collection, leaves the window
		// spans of the size it needs (most of them: see bench/README.md, the Go heap).
		harness.Settle()
		gc := debug.SetGCPercent(-1)
		wl.Run(n)
		harness.Settle()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		bridge.CallgrindBegin()
		wl.Run(n)
		bridge.CallgrindEnd(f[3])
		sec := time.Since(t0).Seconds()
		runtime.ReadMemStats(&m1)
		debug.SetGCPercent(gc)
		harness.Settle()
		return map[string]any{"row": row, "iters": n, "seconds": sec,
			"go_alloc_bytes": m1.TotalAlloc - m0.TotalAlloc, "go_allocs": m1.Mallocs - m0.Mallocs}, nil
	}
	return nil, fmt.Errorf("unknown command %q", f[0])
}

// buildCppRef builds bench/cpp/ref.cpp when its binary is older than the source.
func buildCppRef(cxx, src, out, torchInc, torchLib string) error {
	args := []string{"-O2", harness.CxxStd(cxx), "-I" + torchInc, "-I" + torchInc + "/torch/csrc/api/include"}
	if torchLib != "" {
		args = append(args, "-L"+torchLib, "-Wl,-rpath,"+torchLib)
	}
	args = append(args, "-ltorch", "-ltorch_cpu", "-lc10")
	_, err := harness.BuildCpp(cxx, src, out, args)
	return err
}

// buildMarks builds bench/python/marks.c into the shared library bench/python/ref.py loads.
func buildMarks(out string) error {
	_, err := harness.BuildCpp(envOr("CC", "cc"), "bench/python/marks.c", out, []string{"-O2", "-shared", "-fPIC"})
	return err
}
