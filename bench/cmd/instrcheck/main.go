// Command instrcheck compares the instruction counts of several benchrun reports (make
// bench-instr writes one per run as bench/results/instr-*.json): it fails unless every
// instruction ratio (go/c++ and python/go) of every row is within -tol of its median in every
// run, and prints each ratio's median and min–max over the runs beside the wall-time ratios'.
// With no file arguments it reads the newest -runs reports under bench/results.
//
//	go run ./bench/cmd/instrcheck              # the three newest bench/results/instr-*.json
//	go run ./bench/cmd/instrcheck -md A.json B.json C.json   # the README's table
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hotcb/hotcb/bench/harness"
)

func main() {
	tol := flag.Float64("tol", 0.01, "largest relative deviation of a run's instruction ratio from the median")
	runs := flag.Int("runs", 3, "with no files: how many of the newest reports to compare")
	dir := flag.String("dir", "bench/results", "with no files: where the reports are (instr-*.json)")
	md := flag.Bool("md", false, "print the table as Markdown")
	flag.Parse()
	paths := flag.Args()
	var reps []*harness.Report
	var err error
	if len(paths) == 0 {
		reps, paths, err = newest(*dir, *runs)
	} else {
		reps, err = read(paths)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "instrcheck:", err)
		os.Exit(1)
	}
	rows, err := harness.InstrSpread(reps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "instrcheck:", err)
		os.Exit(1)
	}
	for i, r := range reps {
		fmt.Printf("%s: %s, instr section %.0f s, run %.0f s, other load %.2f\n", paths[i], r.Date.Format("2006-01-02 15:04 MST"),
			r.Instr.Seconds, r.WallSeconds, r.OtherLoad)
	}
	fmt.Println()
	if *md {
		err = harness.WriteInstrSpread(os.Stdout, rows, len(reps))
	} else {
		err = harness.WriteInstrSpreadText(os.Stdout, rows)
	}
	if err == nil {
		err = harness.CheckInstrSpread(rows, *tol)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "instrcheck:", err)
		os.Exit(1)
	}
	fmt.Printf("\nevery instruction ratio within ±%g%% of its median over %d runs\n", 100**tol, len(reps))
}

func read(paths []string) ([]*harness.Report, error) {
	var reps []*harness.Report
	for _, p := range paths {
		r, err := harness.ReadReport(p)
		if err != nil {
			return nil, err
		}
		if r.Instr == nil || r.Instr.Skipped != "" || len(r.Instructions) == 0 {
			return nil, fmt.Errorf("%s: no instruction counts", p)
		}
		reps = append(reps, r)
	}
	return reps, nil
}

// newest reads the n newest reports (by their date) among dir/instr-*.json, smoke runs left out.
func newest(dir string, n int) ([]*harness.Report, []string, error) {
	all, err := filepath.Glob(filepath.Join(dir, "instr-*.json"))
	if err != nil {
		return nil, nil, err
	}
	allReps, err := read(all)
	if err != nil {
		return nil, nil, err
	}
	var reps []*harness.Report
	var paths []string
	for i, r := range allReps {
		if !r.Smoke {
			reps, paths = append(reps, r), append(paths, all[i])
		}
	}
	if len(reps) < n {
		return nil, nil, fmt.Errorf("%d reports (not smoke) in %s/instr-*.json, want %d", len(reps), dir, n)
	}
	idx := make([]int, len(reps))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return reps[b].Date.Compare(reps[a].Date) })
	idx = idx[:n]
	slices.SortFunc(idx, func(a, b int) int { return reps[a].Date.Compare(reps[b].Date) })
	var outR []*harness.Report
	var outP []string
	for _, i := range idx {
		outR, outP = append(outR, reps[i]), append(outP, paths[i])
	}
	return outR, outP, nil
}
