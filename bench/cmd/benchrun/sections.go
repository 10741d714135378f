package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bench/plane"
)

// allSections are what -sections selects from, in the order they run.
var allSections = []string{"steps", "instr", "plane", "latency", "cli", "overhead", "memory"}

// defaultSections are what a plain run (make bench) measures: all but instr, which runs under
// callgrind and has its own target (make bench-instr).
var defaultSections = []string{"steps", "plane", "latency", "cli", "overhead", "memory"}

type sectionSet struct{ list []string }

func (s sectionSet) has(name string) bool { return slices.Contains(s.list, name) }

// parseSections reads -sections: comma-separated names of allSections ("all" for every one).
func parseSections(v string) (sectionSet, error) {
	var out sectionSet
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
			continue
		case f == "all":
			return sectionSet{list: slices.Clone(allSections)}, nil
		case !slices.Contains(allSections, f):
			return out, fmt.Errorf("-sections: unknown section %q (want some of %s)", f, strings.Join(allSections, ","))
		case !out.has(f):
			out.list = append(out.list, f)
		}
	}
	if len(out.list) == 0 {
		return out, fmt.Errorf("-sections: no section given (want some of %s)", strings.Join(allSections, ","))
	}
	slices.SortFunc(out.list, func(a, b string) int { return slices.Index(allSections, a) - slices.Index(allSections, b) })
	return out, nil
}

type planeFlags struct {
	smoke   bool
	threads int
	dir     string
}

// planeSizes are the sizes of the bench/plane sections, full or smoke.
type planeSizes struct {
	apply    plane.ApplyOptions
	latency  plane.LatencyOptions
	cli      plane.CLIOptions
	overhead plane.OverheadOptions
	memory   plane.MemoryOptions
}

func sizes(smoke bool) planeSizes {
	if smoke {
		return planeSizes{
			apply:    plane.ApplyOptions{Rounds: 3, RoundTime: 5 * time.Millisecond},
			latency:  plane.LatencyOptions{Commands: 3, Cadences: []time.Duration{time.Millisecond, 20 * time.Millisecond}},
			cli:      plane.CLIOptions{Runs: 10, TorchRuns: 3},
			overhead: plane.OverheadOptions{Rounds: 2, StepsPerRound: 6, FeatvizEvery: 3},
			memory:   plane.MemoryOptions{MLPSteps: 500, CNNSteps: 30, Timeout: time.Minute},
		}
	}
	return planeSizes{
		apply:    plane.ApplyOptions{Rounds: 9, RoundTime: 50 * time.Millisecond},
		latency:  plane.LatencyOptions{Commands: 15, Cadences: []time.Duration{time.Millisecond, 100 * time.Millisecond}},
		cli:      plane.CLIOptions{Runs: 30, TorchRuns: 10},
		overhead: plane.OverheadOptions{Rounds: 9, StepsPerRound: 50, FeatvizEvery: 50},
		memory:   plane.MemoryOptions{MLPSteps: 20000, CNNSteps: 2000, Timeout: 6 * time.Minute},
	}
}

// runPlane runs the bench/plane sections asked for into rep.
func runPlane(rep *harness.Report, sections sectionSet, f planeFlags) {
	sz := sizes(f.smoke)
	hotcb := ""
	buildCLI := func() string { // once, for the latency and cli sections
		if hotcb == "" {
			var err error
			if hotcb, err = plane.BuildCLI(f.dir); err != nil {
				fail(err)
			}
		}
		return hotcb
	}
	if sections.has("plane") {
		section("control plane: Apply per safe point")
		sz.apply.Dir = f.dir
		rows, err := plane.MeasureApply(sz.apply)
		if err != nil {
			fail(fmt.Errorf("control plane: %w", err))
		}
		for _, r := range rows {
			fmt.Fprintf(os.Stderr, "  %-48s %8.1f ns/op  [%.1f–%.1f]  %.2f allocs/op\n", r.Name, r.Median, r.Min, r.Max, r.AllocsPerOp)
		}
		rep.ControlPlane = rows
	}
	if sections.has("latency") {
		section("command latency: hotcb CLI → applied")
		sz.latency.CLI, sz.latency.Dir = buildCLI(), f.dir
		rows, err := plane.MeasureLatency(sz.latency)
		if err != nil {
			fail(err)
		}
		for _, r := range rows {
			fmt.Fprintf(os.Stderr, "  %-32s %8.3f ms  [%.3f–%.3f]  safe points max %d  errors %d\n", r.Name, r.Median, r.Min, r.Max,
				r.MaxSafePoints, len(r.Errors))
		}
		rep.Latency = rows
	}
	if sections.has("cli") {
		section("CLI: one hotcb process per command")
		torch, err := plane.BuildTorchCLI(f.dir)
		if err != nil {
			fail(err)
		}
		sz.cli.CLI, sz.cli.TorchCLI, sz.cli.Dir = buildCLI(), torch, f.dir
		rows, err := plane.MeasureCLI(sz.cli)
		if err != nil {
			fail(err)
		}
		for _, r := range rows {
			fmt.Fprintf(os.Stderr, "  %-36s %8.3f ms  [%.3f–%.3f]  runs %d  errors %d\n", r.Name, r.Median, r.Min, r.Max, r.Runs, len(r.Errors))
		}
		rep.CLI = rows
	}
	if sections.has("overhead") {
		section("instrumentation overhead: SmallCNN step")
		sz.overhead.Dir = f.dir
		rows, err := plane.MeasureOverhead(sz.overhead)
		if err != nil {
			fail(err)
		}
		for _, r := range rows {
			fmt.Fprintf(os.Stderr, "  %-22s %8.3f ms/step  [%.3f–%.3f]  %+.2f%%\n", r.Name, r.Median, r.Min, r.Max, r.OverheadPct)
		}
		rep.Overhead = rows
	}
	if sections.has("memory") {
		section("memory: RSS of a fresh process")
		exe, err := os.Executable()
		if err != nil {
			fail(err)
		}
		sz.memory.Command = func(w string, steps int) *exec.Cmd {
			// The child inherits the thread variables this process was re-executed with.
			return exec.Command(exe, "-threads", fmt.Sprint(f.threads), "-memory-child", w, "-memory-steps", fmt.Sprint(steps))
		}
		rows, err := plane.MeasureMemory(sz.memory)
		if err != nil {
			fail(err)
		}
		for _, r := range rows {
			fmt.Fprintf(os.Stderr, "  %-60s %.1f → %.1f MiB (max %.1f)  %+.2f%%  %.0f s\n", r.Name, r.StartMiB, r.EndMiB, r.MaxMiB,
				r.GrowthPct, r.Seconds)
		}
		rep.Memory = rows
	}
}

func section(name string) { fmt.Fprintf(os.Stderr, "== %s\n", name) }
