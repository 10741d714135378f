package harness

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Runner runs a benchmark body iters times and returns the seconds it took, timed by the side
// that ran it (so process start-up and the protocol are never counted).
type Runner func(iters int) (seconds float64, err error)

// Plan says how long to measure.
type Plan struct {
	Rounds    int           // measured rounds per side
	RoundTime time.Duration // aimed duration of one reference round
}

// Measurement is what Measure collects: per-iteration seconds of each round, per side.
type Measurement struct {
	Iters  int       // iterations per round
	Go     []float64 // seconds per iteration, one entry per round
	Ref    []float64 // the reference that calibrates (C++); nil when the workload has none
	Python []float64 // the optional second reference (Python); nil when not run
	// GoGCCycles counts the garbage collections that completed during the Go rounds.
	GoGCCycles uint64
}

// Measure calibrates the iteration count on the reference so that one round lasts about
// p.RoundTime, runs one warm-up round on each side, then alternates measured rounds: Go, ref,
// Go, ref ... so that slow drifts of a noisy machine hit both sides alike. A non-nil pyRun is a
// third side, run after the reference in every round (Go, ref, py, Go, ref, py ...) with the
// same iteration count. A nil refRun (a workload with no C++ twin) leaves the reference out:
// Python calibrates then, and the rounds go Go, py, Go, py ... (Go alone calibrates when both
// are nil).
func Measure(p Plan, goRun, refRun, pyRun Runner) (Measurement, error) {
	if p.Rounds < 1 || p.RoundTime <= 0 {
		return Measurement{}, errors.New("harness: a plan needs at least one round and a round time")
	}
	calib := refRun
	if calib == nil {
		calib = pyRun
	}
	if calib == nil {
		calib = goRun
	}
	iters, err := Calibrate(calib, p.RoundTime)
	if err != nil {
		return Measurement{}, err
	}
	m := Measurement{Iters: iters}
	if _, err := goRun(iters); err != nil {
		return m, fmt.Errorf("go warm-up: %w", err)
	}
	if refRun != nil {
		if _, err := refRun(iters); err != nil {
			return m, fmt.Errorf("reference warm-up: %w", err)
		}
	}
	if pyRun != nil {
		if _, err := pyRun(iters); err != nil {
			return m, fmt.Errorf("python warm-up: %w", err)
		}
	}
	for range p.Rounds {
		before := ReadGC().Cycles
		g, err := goRun(iters)
		m.GoGCCycles += ReadGC().Cycles - before
		if err != nil {
			return m, fmt.Errorf("go: %w", err)
		}
		m.Go = append(m.Go, g/float64(iters))
		if refRun != nil {
			r, err := refRun(iters)
			if err != nil {
				return m, fmt.Errorf("reference: %w", err)
			}
			m.Ref = append(m.Ref, r/float64(iters))
		}
		if pyRun != nil {
			py, err := pyRun(iters)
			if err != nil {
				return m, fmt.Errorf("python: %w", err)
			}
			m.Python = append(m.Python, py/float64(iters))
		}
	}
	return m, nil
}

// Calibrate returns how many iterations of run take about target, growing a trial run until
// it lasts a tenth of target (the trial runs double as a first warm-up).
func Calibrate(run Runner, target time.Duration) (int, error) {
	want := target.Seconds()
	iters := 1
	for {
		s, err := run(iters)
		if err != nil {
			return 0, fmt.Errorf("calibrate: %w", err)
		}
		if s >= want/10 || iters >= 1<<30 {
			per := s / float64(iters)
			if per <= 0 {
				return iters, nil
			}
			return max(1, int(math.Round(want/per))), nil
		}
		if s <= 0 {
			iters *= 10
		} else {
			iters = int(min(float64(iters)*10, math.Ceil(float64(iters)*want/10/s*1.2)))
		}
	}
}
