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
	Note     string  // what the Go side does differently, if anything
}

// Result is one row of a report. Times are in Unit; min and max are over rounds.
type Result struct {
	Name      string    `json:"name"`
	Unit      string    `json:"unit"`
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
	Note      string    `json:"note,omitempty"`
}

// NewResult turns a measurement (seconds per iteration) into a row in the spec's unit.
func NewResult(s Spec, m Measurement) (Result, error) {
	scale, err := UnitScale(s.Unit)
	if err != nil {
		return Result{}, err
	}
	conv := func(xs []float64) []float64 {
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = x * scale
		}
		return out
	}
	gr, cr := conv(m.Go), conv(m.Ref)
	g, c := Summarize(gr), Summarize(cr)
	r := Result{
		Name: s.Name, Unit: s.Unit,
		GoMedian: g.Median, GoMin: g.Min, GoMax: g.Max,
		CppMedian: c.Median, CppMin: c.Min, CppMax: c.Max,
		Rounds: len(gr), Iters: m.Iters, GoGC: m.GoGCCycles, GoRounds: gr, CppRounds: cr, Note: s.Note,
	}
	if c.Median > 0 {
		r.Ratio = g.Median / c.Median
	}
	if s.MaxRatio > 0 {
		met := r.Ratio > 0 && r.Ratio <= s.MaxRatio
		r.Goal = fmt.Sprintf("go/c++ <= %g", s.MaxRatio)
		r.MaxRatio = s.MaxRatio
		r.Met = &met
	}
	return r, nil
}

// Report is what a benchmark run writes: where it ran and what it found.
type Report struct {
	Date        time.Time `json:"date"`
	Smoke       bool      `json:"smoke"`
	Machine     Machine   `json:"machine"`
	GoVersion   string    `json:"go_version"`
	GOMAXPROCS  int       `json:"gomaxprocs"`
	Libtorch    string    `json:"libtorch_version"`
	BLAS        BLAS      `json:"blas"`
	RefBLAS     []string  `json:"blas_reference_process,omitempty"`
	Threads     int       `json:"threads"`
	ThreadEnv   []string  `json:"thread_env"`
	Rounds      int       `json:"rounds"`
	RoundTime   float64   `json:"round_seconds"`
	Results     []Result  `json:"results"`
	WallSeconds float64   `json:"wall_seconds"`
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
	if r.BLAS.Warning != "" {
		fmt.Fprintf(w, "%s\n", r.BLAS.Warning)
	}
	fmt.Fprintf(w, "medians of %d rounds per side, min–max in brackets\n\n", r.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tunit\tgo\tc++\tgo/c++\tgo min–max\tc++ min–max\tgoal")
	for _, x := range r.Results {
		goal := "-"
		if x.Met != nil {
			goal = fmt.Sprintf("<= %g: %s", x.MaxRatio, map[bool]string{true: "met", false: "NOT MET"}[*x.Met])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t[%s–%s]\t[%s–%s]\t%s\n", x.Name, x.Unit,
			num(x.GoMedian), num(x.CppMedian), x.Ratio,
			num(x.GoMin), num(x.GoMax), num(x.CppMin), num(x.CppMax), goal)
	}
	return tw.Flush()
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
