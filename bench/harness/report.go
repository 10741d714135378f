package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Spec describes one comparison.
type Spec struct {
	Name     string  // shown in the table, e.g. "add [4]+[4]"
	Unit     string  // "ns/op", "ms/step" ...
	MaxRatio float64 // goal: go/ref median ratio at most this; 0 for no goal
	// MinPythonRatio is a goal for the Python side: python/go median ratio at least this (Go
	// that much faster); 0 for no goal.
	MinPythonRatio float64
	Note           string // what the Go side does differently, if anything
}

// Result is one row of a report. Times are in Unit; min and max are over rounds. The python_*
// fields are present only for rows with a Python twin; python_skipped says why one was not run.
// The cpp_* fields and ratio are absent on a row with no C++ twin (Go against Python only; see
// MarshalJSON), and skipped says why a row has no numbers at all.
type Result struct {
	Name      string    `json:"name"`
	Unit      string    `json:"unit"`
	Skipped   string    `json:"skipped,omitempty"`
	GoMedian  float64   `json:"go_median"`
	CppMedian float64   `json:"cpp_median"`
	GoMin     float64   `json:"go_min"`
	GoMax     float64   `json:"go_max"`
	CppMin    float64   `json:"cpp_min"`
	CppMax    float64   `json:"cpp_max"`
	Ratio     float64   `json:"ratio"` // go_median / cpp_median
	Goal      string    `json:"goal,omitempty"`
	MaxRatio  float64   `json:"goal_max_ratio,omitempty"`
	Met       *bool     `json:"met,omitempty"`
	Rounds    int       `json:"rounds"`
	Iters     int       `json:"iters_per_round"`
	GoGC      uint64    `json:"go_gc_cycles"` // Go collections during the measured rounds
	GoRounds  []float64 `json:"go_rounds"`
	CppRounds []float64 `json:"cpp_rounds"`

	PyMedian   float64   `json:"python_median,omitempty"`
	PyMin      float64   `json:"python_min,omitempty"`
	PyMax      float64   `json:"python_max,omitempty"`
	PyRatio    float64   `json:"python_go_ratio,omitempty"` // python_median / go_median: >1 is Go faster
	PyGoal     string    `json:"python_goal,omitempty"`
	PyMinRatio float64   `json:"python_goal_min_ratio,omitempty"`
	PyMet      *bool     `json:"python_met,omitempty"`
	PyRounds   []float64 `json:"python_rounds,omitempty"`
	PySkipped  string    `json:"python_skipped,omitempty"`
	Check      *Check    `json:"check,omitempty"`
	// Scaling is a data-parallel row's throughput against its one-process baseline row.
	Scaling *Scaling `json:"scaling,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// Check records what each side computed before anything was timed: the check value (for a
// training step, the first-step loss) and the losses of a fresh model's first training steps.
type Check struct {
	Go           float64   `json:"go"`
	Cpp          *float64  `json:"cpp,omitempty"` // nil on a row with no C++ twin
	Python       *float64  `json:"python,omitempty"`
	GoLosses     []float64 `json:"go_losses,omitempty"`
	CppLosses    []float64 `json:"cpp_losses,omitempty"`
	PythonLosses []float64 `json:"python_losses,omitempty"`
	// MaxRelDiff is the largest relative difference of a reference's value to Go's.
	MaxRelDiff float64 `json:"max_rel_diff"`
}

// NewResult turns a measurement (seconds per iteration) into a row in the spec's unit.
func NewResult(s Spec, m Measurement) (Result, error) {
	scale, err := UnitScale(s.Unit)
	if err != nil {
		return Result{}, err
	}
	conv := func(xs []float64) []float64 {
		if xs == nil {
			return nil
		}
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = x * scale
		}
		return out
	}
	gr, cr, pr := conv(m.Go), conv(m.Ref), conv(m.Python)
	g, c, py := Summarize(gr), Summarize(cr), Summarize(pr)
	r := Result{
		Name: s.Name, Unit: s.Unit,
		GoMedian: g.Median, GoMin: g.Min, GoMax: g.Max,
		CppMedian: c.Median, CppMin: c.Min, CppMax: c.Max,
		Rounds: len(gr), Iters: m.Iters, GoGC: m.GoGCCycles, GoRounds: gr, CppRounds: cr, Note: s.Note,
		PyMedian: py.Median, PyMin: py.Min, PyMax: py.Max, PyRounds: pr,
	}
	if c.Median > 0 {
		r.Ratio = g.Median / c.Median
	}
	if py.Median > 0 && g.Median > 0 {
		r.PyRatio = py.Median / g.Median
	}
	if s.MaxRatio > 0 {
		met := r.Ratio > 0 && r.Ratio <= s.MaxRatio
		r.Goal = fmt.Sprintf("go/c++ <= %g", s.MaxRatio)
		r.MaxRatio = s.MaxRatio
		r.Met = &met
	}
	if s.MinPythonRatio > 0 {
		r.PyGoal = fmt.Sprintf("python/go >= %g", s.MinPythonRatio)
		r.PyMinRatio = s.MinPythonRatio
		if len(pr) > 0 {
			met := r.PyRatio >= s.MinPythonRatio
			r.PyMet = &met
		}
	}
	return r, nil
}

// HasCpp reports whether the row has C++ numbers: false for a row with no C++ twin (and for a
// skipped one).
func (r Result) HasCpp() bool { return len(r.CppRounds) > 0 || r.CppMedian != 0 }

// MarshalJSON writes a row without C++ numbers (HasCpp false) without the cpp_* fields and
// ratio, rather than with zeros; any other row has every field.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result // the fields, without this method
	if r.HasCpp() {
		return json.Marshal(plain(r))
	}
	// Shallower fields of the same JSON name hide plain's, and omitempty leaves these out.
	return json.Marshal(struct {
		plain
		CppMedian *float64 `json:"cpp_median,omitempty"`
		CppMin    *float64 `json:"cpp_min,omitempty"`
		CppMax    *float64 `json:"cpp_max,omitempty"`
		Ratio     *float64 `json:"ratio,omitempty"`
		CppRounds *float64 `json:"cpp_rounds,omitempty"`
	}{plain: plain(r)})
}

// SkippedResult is the row of a spec that could not run at all (its inputs come from Python,
// and Python is skipped): no numbers, the goals unmeasured, why in Skipped (and PySkipped).
func SkippedResult(s Spec, why string) Result {
	r := Result{Name: s.Name, Unit: s.Unit, Skipped: why, PySkipped: why, Note: s.Note}
	if s.MaxRatio > 0 {
		r.Goal, r.MaxRatio = fmt.Sprintf("go/c++ <= %g", s.MaxRatio), s.MaxRatio
	}
	if s.MinPythonRatio > 0 {
		r.PyGoal, r.PyMinRatio = fmt.Sprintf("python/go >= %g", s.MinPythonRatio), s.MinPythonRatio
	}
	return r
}

// Python describes the Python reference process, or why it did not run.
type Python struct {
	Executable string   `json:"executable"`
	Version    string   `json:"version,omitempty"`
	Torch      string   `json:"torch_version,omitempty"`
	Threads    int      `json:"threads,omitempty"`
	BLAS       []string `json:"blas,omitempty"`
	Skipped    string   `json:"skipped,omitempty"` // why Python is not measured (torch not importable ...)
}

// NoisyLoad is the CPU load of other processes above which a report warns that it is noisy.
const NoisyLoad = 0.1

// Report is what a benchmark run writes: where it ran and what it found.
type Report struct {
	Date       time.Time `json:"date"`
	Smoke      bool      `json:"smoke"`
	Machine    Machine   `json:"machine"`
	GoVersion  string    `json:"go_version"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	Libtorch   string    `json:"libtorch_version"`
	BLAS       BLAS      `json:"blas"`
	// GoMalloc is what the bridge set in glibc's malloc in the Go process (bridge.Malloc); the
	// references run with glibc's defaults.
	GoMalloc string `json:"go_malloc,omitempty"`
	// RefMalloc says which malloc thresholds the C++ and Python processes ran with.
	RefMalloc string   `json:"reference_malloc,omitempty"`
	RefBLAS   []string `json:"blas_reference_process,omitempty"`
	Python    *Python  `json:"python,omitempty"`
	Threads   int      `json:"threads"`
	ThreadEnv []string `json:"thread_env"`
	Rounds    int      `json:"rounds"`
	RoundTime float64  `json:"round_seconds"`
	// Sections lists what the run measured: steps (Results), plane, latency, cli, overhead, memory.
	Sections     []string         `json:"sections,omitempty"`
	Results      []Result         `json:"results"`
	ControlPlane []PlaneResult    `json:"control_plane,omitempty"`
	Latency      []LatencyResult  `json:"command_latency,omitempty"`
	CLI          []CLIResult      `json:"cli_run,omitempty"`
	Overhead     []OverheadResult `json:"overhead,omitempty"`
	Memory       []MemoryResult   `json:"memory,omitempty"`
	// Instr and Instructions are the instruction-count section (see InstrResult).
	Instr        *InstrInfo    `json:"instr,omitempty"`
	Instructions []InstrResult `json:"instructions,omitempty"`
	WallSeconds  float64       `json:"wall_seconds"`
	// OtherLoadBefore and OtherLoad are the CPUs kept busy by other processes in the second
	// before the run and on average during it (see CPUMeter): above ~0.1 the machine was shared
	// and the numbers are noisier than their min–max suggests.
	OtherLoadBefore float64 `json:"other_cpu_load_before"`
	OtherLoad       float64 `json:"other_cpu_load"`
}

// WriteJSON writes the report, indented, creating the directory if needed.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints the header and results as an aligned table.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s  |  %s, %d cpus, %s  |  %s, libtorch %s, %d thread(s)\n",
		r.Date.Format(time.RFC3339), r.Machine.CPU, r.Machine.NProc, r.Machine.Memory,
		r.GoVersion, r.Libtorch, r.Threads)
	fmt.Fprintf(w, "BLAS: %s (%s)\n", r.BLAS.Kind, strings.Join(r.BLAS.Libraries, ", "))
	if r.GoMalloc != "" {
		fmt.Fprintf(w, "Go process malloc: %s\n", r.GoMalloc)
	}
	if r.RefMalloc != "" {
		fmt.Fprintf(w, "C++ and Python malloc: %s\n", r.RefMalloc)
	}
	if r.BLAS.Warning != "" {
		fmt.Fprintf(w, "%s\n", r.BLAS.Warning)
	}
	if p := r.Python; p != nil {
		if p.Skipped != "" {
			fmt.Fprintf(w, "Python: SKIPPED (%s): %s\n", p.Executable, p.Skipped)
		} else {
			fmt.Fprintf(w, "Python: %s %s, torch %s, %d thread(s)\n", p.Executable, p.Version, p.Torch, p.Threads)
		}
	}
	if r.OtherLoadBefore > NoisyLoad || r.OtherLoad > NoisyLoad {
		fmt.Fprintf(w, "WARNING: other processes kept %.2f CPUs busy before the run and %.2f on average during it: "+
			"the numbers are noisy\n", r.OtherLoadBefore, r.OtherLoad)
	}
	if len(r.Results) == 0 {
		return nil
	}
	fmt.Fprintf(w, "medians of %d rounds per side, min–max in brackets; py/go > 1: Go is faster\n\n", r.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tunit\tgo\tc++\tpython\tgo/c++\tpy/go\tgo min–max\tc++ min–max\tpython min–max\tgoals")
	verdict := map[bool]string{true: "met", false: "NOT MET"}
	for _, x := range r.Results {
		if x.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\tskipped\t-\t-\t-\t-\t-\tskipped: %s\n", x.Name, x.Unit, x.Skipped)
			continue
		}
		var goals []string
		if x.Met != nil {
			goals = append(goals, fmt.Sprintf("go/c++ <= %g: %s", x.MaxRatio, verdict[*x.Met]))
		}
		if x.PyGoal != "" {
			v := "not measured"
			if x.PyMet != nil {
				v = verdict[*x.PyMet]
			}
			goals = append(goals, fmt.Sprintf("py/go >= %g: %s", x.PyMinRatio, v))
		}
		if len(goals) == 0 {
			goals = []string{"-"}
		}
		py, pyRatio, pyRange := "-", "-", "-"
		switch {
		case x.PySkipped != "":
			py, pyRatio, pyRange = "skipped", "-", "-"
		case len(x.PyRounds) > 0:
			py, pyRatio, pyRange = num(x.PyMedian), fmt.Sprintf("%.3f", x.PyRatio), fmt.Sprintf("[%s–%s]", num(x.PyMin), num(x.PyMax))
		}
		cpp, ratio, cppRange := "-", "-", "-" // no C++ twin
		if x.HasCpp() {
			cpp, ratio, cppRange = num(x.CppMedian), fmt.Sprintf("%.3f", x.Ratio), fmt.Sprintf("[%s–%s]", num(x.CppMin), num(x.CppMax))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t[%s–%s]\t%s\t%s\t%s\n", x.Name, x.Unit,
			num(x.GoMedian), cpp, py, ratio, pyRatio,
			num(x.GoMin), num(x.GoMax), cppRange, pyRange, strings.Join(goals, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Results {
		if x.Scaling != nil {
			fmt.Fprintf(w, "%s: %s, against %q\n", x.Name, x.Scaling, x.Scaling.Baseline)
		}
	}
	return nil
}

// num prints about four significant digits.
func num(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 10:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// Scaling compares a data-parallel row with its one-process baseline row by throughput: the
// row trains Ranks×Batch images per step, the baseline Batch, so Speedup is
// Ranks × baseline step time / row step time (medians), per side; Efficiency is Speedup/Ranks.
// 1 process → Ranks processes on a machine with fewer cores than that cannot reach Ranks.
type Scaling struct {
	Baseline     string  `json:"baseline"` // the baseline row's name
	Ranks        int     `json:"ranks"`
	Batch        int     `json:"batch_per_rank"`
	GoImagesSec  float64 `json:"go_images_per_s"`
	GoBaseSec    float64 `json:"go_baseline_images_per_s"`
	GoSpeedup    float64 `json:"go_speedup"`
	GoEfficiency float64 `json:"go_efficiency"`
	PyImagesSec  float64 `json:"python_images_per_s,omitempty"`
	PyBaseSec    float64 `json:"python_baseline_images_per_s,omitempty"`
	PySpeedup    float64 `json:"python_speedup,omitempty"`
	PyEfficiency float64 `json:"python_efficiency,omitempty"`
}

// NewScaling computes row's scaling against base (both timed per step, in their units).
func NewScaling(row, base Result, ranks, batch int) (*Scaling, error) {
	rs, err := UnitScale(row.Unit)
	if err != nil {
		return nil, err
	}
	bs, err := UnitScale(base.Unit)
	if err != nil {
		return nil, err
	}
	perSec := func(images int, median, scale float64) float64 {
		if median <= 0 {
			return 0
		}
		return float64(images) / (median / scale)
	}
	s := &Scaling{Baseline: base.Name, Ranks: ranks, Batch: batch,
		GoImagesSec: perSec(ranks*batch, row.GoMedian, rs), GoBaseSec: perSec(batch, base.GoMedian, bs)}
	if s.GoImagesSec == 0 || s.GoBaseSec == 0 {
		return nil, fmt.Errorf("harness: scaling of %q: no Go medians", row.Name)
	}
	s.GoSpeedup = s.GoImagesSec / s.GoBaseSec
	s.GoEfficiency = s.GoSpeedup / float64(ranks)
	if len(row.PyRounds) > 0 && len(base.PyRounds) > 0 {
		s.PyImagesSec, s.PyBaseSec = perSec(ranks*batch, row.PyMedian, rs), perSec(batch, base.PyMedian, bs)
		if s.PyImagesSec > 0 && s.PyBaseSec > 0 {
			s.PySpeedup = s.PyImagesSec / s.PyBaseSec
			s.PyEfficiency = s.PySpeedup / float64(ranks)
		}
	}
	return s, nil
}

// String is the scaling in one line.
func (s *Scaling) String() string {
	out := fmt.Sprintf("scaling 1 → %d ranks (%d images per rank and step): Go %.0f → %.0f images/s, ×%.2f (efficiency %.2f)",
		s.Ranks, s.Batch, s.GoBaseSec, s.GoImagesSec, s.GoSpeedup, s.GoEfficiency)
	if s.PySpeedup > 0 {
		out += fmt.Sprintf("; Python %.0f → %.0f images/s, ×%.2f (efficiency %.2f)", s.PyBaseSec, s.PyImagesSec, s.PySpeedup, s.PyEfficiency)
	}
	return out
}
