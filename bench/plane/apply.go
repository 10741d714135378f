package plane

import (
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/torchenv"
)

// hotcb's Python control plane at 32 callbacks, per safe point (the figures issue 10 quotes):
// printed next to ours, not measured here.
const (
	PythonControllerNs = 35000
	PythonKernelNs     = 42000
)

// Goals per safe point, ns.
const (
	GoalController32  = 500
	GoalKernel32      = 700
	GoalInterpretedNs = 5000
)

// ApplyOptions size MeasureApply.
type ApplyOptions struct {
	Rounds    int           // timed rounds per case, alternating cases (default 9)
	RoundTime time.Duration // aimed length of one round (default 50ms)
	Dir       string        // scratch directory for the run directories
}

// applyCase is one row: a controller or kernel with some callbacks.
type applyCase struct {
	res   harness.PlaneResult
	p     *plane
	env   *torchenv.Env
	run   func() // one op: step when nil
	iters int
	nsOps []float64
	alloc []float64
}

// MeasureApply times one safe point — Apply(env, train_step_end), the call a training loop makes
// every step — of the controller and of the kernel with 0, 8 and 32 idle compiled callbacks
// and with one interpreted one, each over its own run directory whose files are watched as in
// a real run (inotify plus the 1 s fallback tick: with nothing to apply, Apply's check for
// commands is an atomic load). One more row, informational, stats the files at every Apply
// (PollEveryStep). These kernels write no metrics stream: each Apply here is a step of its
// own, and the stream's cost, per step, is measured by three more rows (metrics.go): a whole
// step's safe points with the stream off, on at a step it writes, and on at a step the stride
// skips (ns/step). Cases alternate within each round after one warm-up round.
func MeasureApply(o ApplyOptions) ([]harness.PlaneResult, error) {
	if o.Rounds <= 0 {
		o.Rounds = 9
	}
	if o.RoundTime <= 0 {
		o.RoundTime = 50 * time.Millisecond
	}
	runtime.LockOSThread() // as a training loop is (trainer/)
	defer runtime.UnlockOSThread()
	type spec struct {
		target      string
		n           int
		interpreted bool
		poll        bool
		stream      string // a metrics-stream row (metrics.go): a whole step's safe points
	}
	var specs []spec
	for _, t := range []string{Controller, Kernel} {
		for _, n := range []int{0, 8, 32} {
			specs = append(specs, spec{target: t, n: n})
		}
		specs = append(specs, spec{target: t, n: 1, interpreted: true})
	}
	specs = append(specs, spec{target: Controller, n: 32, poll: true})
	for _, m := range streamModes {
		specs = append(specs, spec{target: Kernel, stream: m})
	}

	var cases []*applyCase
	defer func() {
		for _, c := range cases {
			c.p.Close()
		}
	}()
	for i, s := range specs {
		if s.stream != "" {
			p, env, err := openStream(filepath.Join(o.Dir, fmt.Sprintf("apply-%d", i)), s.stream)
			if err != nil {
				return nil, err
			}
			c := &applyCase{p: p, env: env, res: streamRow(s.stream), run: stepOf(p, env)}
			cases = append(cases, c)
			c.iters = calibrate(c.run, o.RoundTime)
			continue
		}
		p, err := open(s.target, filepath.Join(o.Dir, fmt.Sprintf("apply-%d", i)), nil, s.poll, true)
		if err != nil {
			return nil, err
		}
		c := &applyCase{p: p, env: &torchenv.Env{Phase: "train"}}
		cases = append(cases, c)
		if s.interpreted {
			err = p.loadInterpreted("interp")
		} else {
			err = p.loadIdle(s.n)
		}
		if err != nil {
			return nil, err
		}
		p.Apply(c.env, torchenv.TrainStepEnd) // applies the loads
		if err := p.enabled(s.n); err != nil {
			return nil, err
		}
		r := harness.PlaneResult{Target: s.target, Callbacks: s.n, Kind: "compiled (idle)", Unit: "ns/op"}
		r.Name = fmt.Sprintf("%s, %d idle compiled", s.target, s.n)
		switch {
		case s.interpreted:
			r.Kind = "interpreted (go_file)"
			r.Name = s.target + ", 1 interpreted (go_file)"
			r.Goal, r.GoalMax = fmt.Sprintf("<= %d ns", GoalInterpretedNs), GoalInterpretedNs
			r.Note = "the whole Apply with the interpreted callback's Handle (reads env.Step)"
		case s.poll:
			r.Name += ", PollEveryStep"
			r.Note = "informational: PollEveryStep stats the commands and config files at every Apply instead of relying on inotify"
		case s.n == 32 && s.target == Controller:
			r.Goal, r.GoalMax = fmt.Sprintf("<= %d ns", GoalController32), GoalController32
			r.Reference, r.ReferenceNs = "hotcb Python controller ≈ 35 µs per safe point at 32 callbacks", PythonControllerNs
		case s.n == 32 && s.target == Kernel:
			r.Goal, r.GoalMax = fmt.Sprintf("<= %d ns", GoalKernel32), GoalKernel32
			r.Reference, r.ReferenceNs = "hotcb Python kernel ≈ 42 µs per safe point at 32 callbacks", PythonKernelNs
		}
		c.res = r
		c.iters = calibrate(c.step, o.RoundTime)
		c.run = c.step
	}
	for round := -1; round < o.Rounds; round++ { // round -1 is the warm-up
		for _, c := range cases {
			ns, allocs := timeLoop(c.run, c.iters)
			if round >= 0 {
				c.nsOps = append(c.nsOps, ns)
				c.alloc = append(c.alloc, allocs)
			}
		}
	}
	out := make([]harness.PlaneResult, 0, len(cases))
	for _, c := range cases {
		s := harness.Summarize(c.nsOps)
		r := c.res
		r.Median, r.Min, r.Max, r.Rounds, r.Iters = s.Median, s.Min, s.Max, c.nsOps, c.iters
		r.AllocsPerOp = harness.Summarize(c.alloc).Median
		r.Met = harness.AtMost(r.Median, r.GoalMax)
		out = append(out, r)
	}
	return out, nil
}

// trainStepEnd is passed as a slice so that the wrapper's variadic call allocates nothing: what
// allocations remain are the controller's or kernel's.
var trainStepEnd = []string{torchenv.TrainStepEnd}

func (c *applyCase) step() {
	c.p.Apply(c.env, trainStepEnd...)
	c.env.Step++
}

// calibrate returns how many calls of f last about d.
func calibrate(f func(), d time.Duration) int {
	n := 100
	for {
		t0 := time.Now()
		for range n {
			f()
		}
		el := time.Since(t0)
		if el >= d/4 || n >= 1<<30 {
			per := float64(el) / float64(n)
			return max(1, int(float64(d)/max(per, 1)))
		}
		n *= 2
	}
}

// timeLoop runs f iters times and returns ns and heap allocations per call.
func timeLoop(f func(), iters int) (ns, allocs float64) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	for range iters {
		f()
	}
	el := time.Since(t0)
	runtime.ReadMemStats(&m1)
	return float64(el) / float64(iters), float64(m1.Mallocs-m0.Mallocs) / float64(iters)
}
