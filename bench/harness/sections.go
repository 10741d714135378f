package harness

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// The report's other sections (bench/plane measures them): the control plane's cost per safe
// point, command latency, the hotcb CLI's run, instrumentation overhead on a training step and
// memory over a long run. Each row carries its goal and whether it was met, like the training-step rows.

// AtMost is the verdict of a goal "value ≤ limit": nil when there is no goal (limit ≤ 0) or no
// value (NaN), so that the JSON leaves "met" out rather than claiming anything.
func AtMost(value, limit float64) *bool {
	if !(limit > 0) || value != value {
		return nil
	}
	met := value <= limit
	return &met
}

// PlaneResult is the cost of one safe point (one Apply call with one event) of the callback
// controller or the kernel, in ns per call, over timed rounds.
type PlaneResult struct {
	Name        string    `json:"name"`
	Target      string    `json:"target"` // "controller" or "kernel"
	Callbacks   int       `json:"callbacks"`
	Kind        string    `json:"callback_kind"` // "compiled (idle)" or "interpreted (go_file)"
	Unit        string    `json:"unit"`          // ns/op
	Median      float64   `json:"median"`
	Min         float64   `json:"min"`
	Max         float64   `json:"max"`
	AllocsPerOp float64   `json:"allocs_per_op"`
	Iters       int       `json:"iters_per_round"`
	Rounds      []float64 `json:"rounds"`
	Reference   string    `json:"reference,omitempty"` // hotcb's Python figure to compare with
	ReferenceNs float64   `json:"reference_ns,omitempty"`
	Goal        string    `json:"goal,omitempty"`
	GoalMax     float64   `json:"goal_max,omitempty"` // in Unit
	Met         *bool     `json:"met,omitempty"`
	Note        string    `json:"note,omitempty"`
}

// LatencyResult is the time from a command written by the CLI to the op being applied, with the
// training loop stepping every Cadence.
type LatencyResult struct {
	Name      string  `json:"name"`
	Target    string  `json:"target"` // "kernel" or "controller"
	CadenceMs float64 `json:"cadence_ms"`
	Commands  int     `json:"commands"`
	Unit      string  `json:"unit"` // ms
	// Median, Min and Max are of written → applied (see bench/README.md for both instants).
	Median    float64   `json:"median"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	Latencies []float64 `json:"latencies"`
	// FromExit is applied − the CLI process's exit as seen by the harness: negative when the op
	// was applied before the CLI had exited. CLIRun is the CLI's whole run (exec to exit).
	FromExit Stats `json:"from_cli_exit_ms"`
	CLIRun   Stats `json:"cli_run_ms"`
	// SafePoints is, per command, how many safe points began after the write up to and including
	// the one that applied it: 1 is the next safe point; 0 one that had begun just before the
	// harness saw the write.
	SafePoints    []int    `json:"safe_points"`
	MaxSafePoints int      `json:"max_safe_points"`
	Goal          string   `json:"goal,omitempty"`
	GoalMax       float64  `json:"goal_max_safe_points,omitempty"`
	Met           *bool    `json:"met,omitempty"`
	Steps         int64    `json:"loop_steps"` // safe points the loop ran during the measurement
	Note          string   `json:"note,omitempty"`
	Errors        []string `json:"errors,omitempty"`
}

// CLIResult is the wall time of one CLI command run as its own process, exec to exit, over
// repeated runs one after another.
type CLIResult struct {
	Name    string    `json:"name"`
	Binary  string    `json:"binary"`  // hotcb or hotcb-torch
	Command string    `json:"command"` // the arguments after --dir RUN
	Runs    int       `json:"runs"`
	Unit    string    `json:"unit"` // ms
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Times   []float64 `json:"times"`
	// Reference is a figure to compare with that is not measured here (hotcb's Python CLI).
	Reference string   `json:"reference,omitempty"`
	Goal      string   `json:"goal,omitempty"`
	GoalMax   float64  `json:"goal_max_ms,omitempty"`
	Met       *bool    `json:"met,omitempty"`
	Note      string   `json:"note,omitempty"`
	Errors    []string `json:"errors,omitempty"`
}

// OverheadResult is one configuration of callbacks on a training step.
type OverheadResult struct {
	Name          string    `json:"name"`
	Callbacks     []string  `json:"callbacks"`
	Unit          string    `json:"unit"` // ms/step
	Median        float64   `json:"median"`
	Min           float64   `json:"min"`
	Max           float64   `json:"max"`
	Rounds        []float64 `json:"rounds"`
	StepsPerRound int       `json:"steps_per_round"`
	// OverheadPct is 100·(median / median of "none" − 1); Paired summarises the same ratio
	// taken round by round (each round against the "none" round next to it).
	OverheadPct float64 `json:"overhead_pct"`
	Paired      Stats   `json:"overhead_pct_per_round"`
	Goal        string  `json:"goal,omitempty"`
	GoalMaxPct  float64 `json:"goal_max_pct,omitempty"`
	Met         *bool   `json:"met,omitempty"`
	Note        string  `json:"note,omitempty"`
}

// RSSSample is the resident set size after a number of steps.
type RSSSample struct {
	Step int     `json:"step"`
	MiB  float64 `json:"rss_mib"`
}

// MemoryResult is the resident set size of a fresh process over a long training run.
type MemoryResult struct {
	Name        string   `json:"name"`
	Workload    string   `json:"workload"`
	Callbacks   []string `json:"callbacks"`
	Steps       int      `json:"steps"`
	WarmupSteps int      `json:"warmup_steps"`
	// StartMiB is the RSS at the end of warm-up, EndMiB after the last step (both right after a
	// collection and its cleanups), MaxMiB the largest periodic sample after warm-up.
	StartMiB  float64     `json:"start_mib"`
	EndMiB    float64     `json:"end_mib"`
	MaxMiB    float64     `json:"max_mib"`
	GrowthPct float64     `json:"growth_pct"` // 100·(end/start − 1)
	MaxPct    float64     `json:"max_growth_pct"`
	Seconds   float64     `json:"seconds"`
	Samples   []RSSSample `json:"samples"`
	Goal      string      `json:"goal,omitempty"`
	GoalMax   float64     `json:"goal_max_pct,omitempty"`
	Met       *bool       `json:"met,omitempty"`
	Note      string      `json:"note,omitempty"`
}

var verdicts = map[bool]string{true: "met", false: "NOT MET"}

func verdict(goal string, met *bool) string {
	if goal == "" {
		return "-"
	}
	if met == nil {
		return goal + ": not measured"
	}
	return goal + ": " + verdicts[*met]
}

// WriteSections prints a table for each section the report holds.
func (r *Report) WriteSections(w io.Writer) error {
	if len(r.ControlPlane) > 0 {
		fmt.Fprintf(w, "\nControl plane: one Apply (safe point, one event), ns; median and min–max of rounds\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "safe point\tns/op\tmin–max\tallocs/op\thotcb (Python)\tgoal")
		for _, x := range r.ControlPlane {
			ref := "-"
			if x.ReferenceNs > 0 {
				ref = fmt.Sprintf("≈%s ns (%.0f× slower)", num(x.ReferenceNs), x.ReferenceNs/x.Median)
			}
			fmt.Fprintf(tw, "%s\t%s\t[%s–%s]\t%.2f\t%s\t%s\n", x.Name, num(x.Median), num(x.Min), num(x.Max),
				x.AllocsPerOp, ref, verdict(x.Goal, x.Met))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Latency) > 0 {
		fmt.Fprintf(w, "\nCommand latency: `hotcb cb set_params` written → applied, ms (see bench/README.md)\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "loop\tcommands\tmedian\tmin–max\tsafe points (max)\tfrom CLI exit\tCLI run\tgoal")
		for _, x := range r.Latency {
			fmt.Fprintf(tw, "%s\t%d\t%s\t[%s–%s]\t%s (%d)\t%s\t%s\t%s\n", x.Name, x.Commands, num(x.Median),
				num(x.Min), num(x.Max), safePoints(x.SafePoints), x.MaxSafePoints, signed(x.FromExit.Median),
				num(x.CLIRun.Median), verdict(x.Goal, x.Met))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.CLI) > 0 {
		fmt.Fprintf(w, "\nCLI: one process per command, exec to exit, ms; median and min–max of the runs\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "command\truns\tmedian\tmin–max\terrors\treference\tgoal")
		for _, x := range r.CLI {
			ref := x.Reference
			if ref == "" {
				ref = "-"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t[%s–%s]\t%d\t%s\t%s\n", x.Name, x.Runs, num(x.Median), num(x.Min), num(x.Max),
				len(x.Errors), ref, verdict(x.Goal, x.Met))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Overhead) > 0 {
		fmt.Fprintf(w, "\nInstrumentation overhead on a SmallCNN step (batch 64), ms/step\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "callbacks\tms/step\tmin–max\toverhead\tper round\tgoal")
		for _, x := range r.Overhead {
			fmt.Fprintf(tw, "%s\t%s\t[%s–%s]\t%+.2f%%\t[%+.1f%% … %+.1f%%]\t%s\n", x.Name, num(x.Median), num(x.Min),
				num(x.Max), x.OverheadPct, x.Paired.Min, x.Paired.Max, verdict(x.Goal, x.Met))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Memory) > 0 {
		fmt.Fprintf(w, "\nMemory: RSS of a fresh process, all built-ins enabled, MiB\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "run\tsteps\tafter warm-up\tend\tmax\tgrowth\tgoal")
		for _, x := range r.Memory {
			fmt.Fprintf(tw, "%s\t%d (warm-up %d)\t%.1f\t%.1f\t%.1f\t%+.2f%%\t%s\n", x.Name, x.Steps, x.WarmupSteps,
				x.StartMiB, x.EndMiB, x.MaxMiB, x.GrowthPct, verdict(x.Goal, x.Met))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// safePoints prints a histogram such as "1×14 2×1".
func safePoints(xs []int) string {
	count := map[int]int{}
	hi := 0
	for _, x := range xs {
		count[x]++
		hi = max(hi, x)
	}
	var parts []string
	for v := 0; v <= hi; v++ {
		if count[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d×%d", v, count[v]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func signed(v float64) string {
	if v < 0 {
		return "-" + num(-v)
	}
	return "+" + num(v)
}
