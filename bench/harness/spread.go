package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Spread is how one ratio varied over several runs: every run's value, their median and the
// largest deviation of a run from the median, relative (0.01 is ±1%).
type Spread struct {
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Dev    float64   `json:"max_rel_dev"`
}

// NewSpread summarises xs (zeros are left out: a run that did not measure the ratio).
func NewSpread(xs []float64) Spread {
	var v []float64
	for _, x := range xs {
		if x > 0 {
			v = append(v, x)
		}
	}
	s := Spread{Values: v}
	st := Summarize(v)
	s.Median, s.Min, s.Max = st.Median, st.Min, st.Max
	for _, x := range v {
		s.Dev = math.Max(s.Dev, math.Abs(x/s.Median-1))
	}
	return s
}

// String is "median [min–max]".
func (s Spread) String(digits int) string {
	if len(s.Values) == 0 {
		return "-"
	}
	f := fmt.Sprintf("%%.%df", digits)
	if len(s.Values) == 1 {
		return fmt.Sprintf(f, s.Median)
	}
	return fmt.Sprintf(f+" ["+f+"–"+f+"]", s.Median, s.Min, s.Max)
}

// InstrSpreadRow is one instruction-count row over several runs.
type InstrSpreadRow struct {
	Name   string
	Unit   string
	Go     Spread // instructions per iteration
	Cpp    Spread
	Python Spread
	Ratio  Spread // go/c++ instructions
	PyGo   Spread // python/go instructions
	Wall   Spread // go/c++ wall time
	WallPy Spread // python/go wall time
	Goal   string // the row's goals and their verdicts on the median instruction ratios
}

// InstrSpread lines up the instruction-count rows of several reports by name, in the first
// report's order. Every report must have counted the same rows.
func InstrSpread(reps []*Report) ([]InstrSpreadRow, error) {
	if len(reps) == 0 {
		return nil, fmt.Errorf("harness: no reports")
	}
	var out []InstrSpreadRow
	for _, first := range reps[0].Instructions {
		if first.Skipped != "" {
			continue
		}
		var rows []InstrResult
		for k, r := range reps {
			i := slices.IndexFunc(r.Instructions, func(x InstrResult) bool { return x.Name == first.Name })
			if i < 0 || r.Instructions[i].Skipped != "" {
				return nil, fmt.Errorf("harness: report %d (%s) has no instruction count for %q", k+1, r.Date.Format(time.RFC3339), first.Name)
			}
			rows = append(rows, r.Instructions[i])
		}
		col := func(f func(InstrResult) float64) Spread {
			var xs []float64
			for _, x := range rows {
				xs = append(xs, f(x))
			}
			return NewSpread(xs)
		}
		s := InstrSpreadRow{Name: first.Name, Unit: first.Unit,
			Go:     col(func(x InstrResult) float64 { return x.Go.Ir }),
			Cpp:    col(func(x InstrResult) float64 { return side(x.Cpp) }),
			Python: col(func(x InstrResult) float64 { return side(x.Python) }),
			Ratio:  col(func(x InstrResult) float64 { return x.Ratio }),
			PyGo:   col(func(x InstrResult) float64 { return x.PyRatio }),
			Wall:   col(func(x InstrResult) float64 { return x.WallRatio }),
			WallPy: col(func(x InstrResult) float64 { return x.WallPyRatio }),
		}
		var goals []string
		verdict := map[bool]string{true: "met", false: "**not met**"}
		if l := first.MaxRatio; l > 0 && len(s.Ratio.Values) > 0 {
			goals = append(goals, fmt.Sprintf("go/c++ ≤ %g: %s", l, verdict[s.Ratio.Median <= l]))
		}
		if l := first.PyMinRatio; l > 0 && len(s.PyGo.Values) > 0 {
			goals = append(goals, fmt.Sprintf("py/go ≥ %g: %s", l, verdict[s.PyGo.Median >= l]))
		}
		s.Goal = strings.Join(goals, "; ")
		out = append(out, s)
	}
	return out, nil
}

func side(s *InstrSide) float64 {
	if s == nil {
		return 0
	}
	return s.Ir
}

// CheckInstrSpread fails unless every instruction ratio of every row (go/c++ and python/go) is
// within tol of its median in every run (tol 0.01: ±1%).
func CheckInstrSpread(rows []InstrSpreadRow, tol float64) error {
	var bad []string
	for _, r := range rows {
		for _, c := range []struct {
			name string
			s    Spread
		}{{"go/c++", r.Ratio}, {"py/go", r.PyGo}} {
			if c.s.Dev > tol {
				bad = append(bad, fmt.Sprintf("%s %s: %v deviate by up to %.2f%% from their median (tolerance %.2f%%)",
					r.Name, c.name, c.s.Values, 100*c.s.Dev, 100*tol))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("instruction ratios disagree between runs:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// WriteInstrSpread prints rows as a Markdown table: instructions per iteration (medians over
// the runs), the instruction ratios and the wall-time ratios with their min–max over the runs,
// and the goals judged on the median instruction ratios.
func WriteInstrSpread(w io.Writer, rows []InstrSpreadRow, runs int) error {
	fmt.Fprintf(w, "| benchmark | unit | go | c++ | python | go/c++ instr (%d runs) | py/go instr | go/c++ wall | py/go wall | goals (on instructions) |\n", runs)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	count := func(s Spread) string {
		if len(s.Values) == 0 {
			return "-"
		}
		return Count(s.Median)
	}
	for _, r := range rows {
		goal := r.Goal
		if goal == "" {
			goal = " "
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, strings.TrimPrefix(r.Unit, "instructions"),
			count(r.Go), count(r.Cpp), count(r.Python), r.Ratio.String(4), r.PyGo.String(4), r.Wall.String(3), r.WallPy.String(3), goal)
	}
	return nil
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// WriteInstrSpreadText is WriteInstrSpread for a terminal.
func WriteInstrSpreadText(w io.Writer, rows []InstrSpreadRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tgo/c++ instr\tmax dev\tpy/go instr\tmax dev\tgo/c++ wall\tpy/go wall")
	for _, r := range rows {
		dev := func(s Spread) string {
			if len(s.Values) == 0 {
				return "-"
			}
			return fmt.Sprintf("±%.3f%%", 100*s.Dev)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Ratio.String(4), dev(r.Ratio), r.PyGo.String(4), dev(r.PyGo),
			r.Wall.String(3), r.WallPy.String(3))
	}
	return tw.Flush()
}
