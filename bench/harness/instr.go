package harness

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// The instruction-count section (benchrun -sections instr, bench/instr): every side runs as its
// own process under callgrind, uninstrumented but for one counted window per row, after a
// warm-up. A row's figure is the instructions the thread that ran the window executed, per
// iteration: deterministic where wall time is not, so the goals of CPU-bound rows are judged on
// instruction ratios, with wall time beside them (see bench/README.md, Instruction counts).

// InstrInfo describes how the instruction counts were taken, or why they were not.
type InstrInfo struct {
	Valgrind   string   `json:"valgrind,omitempty"` // valgrind --version
	Command    []string `json:"command,omitempty"`  // valgrind's options
	CacheSim   bool     `json:"cache_sim"`
	GOMAXPROCS int      `json:"gomaxprocs,omitempty"` // of the counted Go process
	Env        []string `json:"env,omitempty"`        // added to every counted process
	// Seconds is the section's wall time: starting the three processes under valgrind, the
	// checks, warm-ups and counted windows.
	Seconds float64 `json:"seconds"`
	Skipped string  `json:"skipped,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// InstrSide is one side's count for one row.
type InstrSide struct {
	Ir float64 `json:"ir"` // instructions per iteration
	// Events are every event callgrind counted, per iteration (Ir only, unless the cache
	// simulation was on: then D1mr, DLmr ... too).
	Events map[string]float64 `json:"events,omitempty"`
	// Seconds is the wall time of the counted window under callgrind.
	Seconds float64 `json:"seconds"`
	// GoAllocBytes and GoAllocs are what the Go heap allocated per iteration in the window (Go
	// side only): garbage that a collection would have to find (the window runs with the
	// collector off, see bench/README.md).
	GoAllocBytes float64 `json:"go_alloc_bytes,omitempty"`
	GoAllocs     float64 `json:"go_allocs,omitempty"`
}

// InstrResult is one row of the instruction-count section. Name matches the training-step or
// per-op row of the same work.
type InstrResult struct {
	Name    string     `json:"name"`
	Unit    string     `json:"unit"` // "instructions/op" or "instructions/step"
	Skipped string     `json:"skipped,omitempty"`
	Iters   int        `json:"iters"`  // iterations in the counted window, per side
	Warmup  int        `json:"warmup"` // uncounted iterations before it (after the check)
	Go      InstrSide  `json:"go"`
	Cpp     *InstrSide `json:"cpp,omitempty"`    // nil on a row with no C++ twin
	Python  *InstrSide `json:"python,omitempty"` // nil when Python is skipped or has no twin
	Ratio   float64    `json:"ratio,omitempty"`  // go / cpp instructions
	PyRatio float64    `json:"python_go_ratio,omitempty"`
	// WallRatio and WallPyRatio are the wall-time ratios of the same row in this run's
	// training-step section, when it ran.
	WallRatio   float64 `json:"wall_ratio,omitempty"`
	WallPyRatio float64 `json:"wall_python_go_ratio,omitempty"`
	Goal        string  `json:"goal,omitempty"`
	MaxRatio    float64 `json:"goal_max_ratio,omitempty"`
	Met         *bool   `json:"met,omitempty"`
	PyGoal      string  `json:"python_goal,omitempty"`
	PyMinRatio  float64 `json:"python_goal_min_ratio,omitempty"`
	PyMet       *bool   `json:"python_met,omitempty"`
	Check       *Check  `json:"check,omitempty"`
	// Seconds is the row's wall time in the section: the check, the warm-ups and the windows.
	Seconds float64 `json:"seconds"`
	Note    string  `json:"note,omitempty"`
}

// JudgeInstr fills in r's ratios and the verdicts of s's goals, applied to instruction ratios.
func JudgeInstr(s Spec, r *InstrResult) {
	if r.Cpp != nil && r.Cpp.Ir > 0 {
		r.Ratio = r.Go.Ir / r.Cpp.Ir
	}
	if r.Python != nil && r.Go.Ir > 0 {
		r.PyRatio = r.Python.Ir / r.Go.Ir
	}
	if s.MaxRatio > 0 && r.Cpp != nil {
		met := r.Ratio > 0 && r.Ratio <= s.MaxRatio
		r.Goal, r.MaxRatio, r.Met = fmt.Sprintf("go/c++ <= %g", s.MaxRatio), s.MaxRatio, &met
	}
	if s.MinPythonRatio > 0 {
		r.PyGoal, r.PyMinRatio = fmt.Sprintf("python/go >= %g", s.MinPythonRatio), s.MinPythonRatio
		if r.Python != nil {
			met := r.PyRatio >= s.MinPythonRatio
			r.PyMet = &met
		}
	}
}

// WriteInstrTable prints the instruction-count section: instructions per iteration on each
// side, their ratios, the wall-time ratios of the same rows beside them, and the goals judged on
// the instruction ratios.
func (r *Report) WriteInstrTable(w io.Writer) error {
	if r.Instr == nil {
		return nil
	}
	fmt.Fprintln(w)
	if r.Instr.Skipped != "" {
		_, err := fmt.Fprintf(w, "instructions: SKIPPED: %s\n", r.Instr.Skipped)
		return err
	}
	fmt.Fprintf(w, "instructions per iteration under callgrind (%s; %.0f s), the counted window's thread only; "+
		"wall-time ratios of the same rows beside them; goals judged on instructions\n\n", r.Instr.Valgrind, r.Instr.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tunit\tgo\tc++\tpython\tgo/c++\tpy/go\twall go/c++\twall py/go\tgoals")
	verdict := map[bool]string{true: "met", false: "NOT MET"}
	for _, x := range r.Instructions {
		if x.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\tskipped: %s\n", x.Name, x.Unit, x.Skipped)
			continue
		}
		cpp, py, ratio, pyRatio := "-", "-", "-", "-"
		if x.Cpp != nil {
			cpp, ratio = Count(x.Cpp.Ir), fmt.Sprintf("%.4f", x.Ratio)
		}
		if x.Python != nil {
			py, pyRatio = Count(x.Python.Ir), fmt.Sprintf("%.4f", x.PyRatio)
		}
		wall, wallPy := "-", "-"
		if x.WallRatio > 0 {
			wall = fmt.Sprintf("%.3f", x.WallRatio)
		}
		if x.WallPyRatio > 0 {
			wallPy = fmt.Sprintf("%.3f", x.WallPyRatio)
		}
		var goals []string
		if x.Met != nil {
			goals = append(goals, x.Goal+": "+verdict[*x.Met])
		}
		if x.PyMet != nil {
			goals = append(goals, x.PyGoal+": "+verdict[*x.PyMet])
		}
		if len(goals) == 0 {
			goals = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Name, x.Unit, Count(x.Go.Ir), cpp, py,
			ratio, pyRatio, wall, wallPy, strings.Join(goals, "; "))
	}
	return tw.Flush()
}

// Count prints an instruction count with four significant digits and a k, M or G suffix.
func Count(v float64) string {
	for _, u := range []struct {
		div float64
		suf string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(v) >= u.div {
			x := v / u.div
			switch {
			case x >= 100:
				return fmt.Sprintf("%.1f%s", x, u.suf)
			case x >= 10:
				return fmt.Sprintf("%.2f%s", x, u.suf)
			default:
				return fmt.Sprintf("%.3f%s", x, u.suf)
			}
		}
	}
	return fmt.Sprintf("%.0f", v)
}
