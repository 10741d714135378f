package main

// The data-parallel rows: the Go side runs as a job of rank processes (this binary re-executed
// with -ddp-rank, started as torchrun starts ranks by harness.StartJob), and so does Python
// (bench/python/ref.py ddp-rank). Rank 0 of each job answers the reference protocol; the
// commands every rank must run (the "ddp" mode's load, check and run, and quit) it broadcasts
// to the others first, as a tensor, over the job's own process group. The "local" mode runs on
// rank 0 alone (the other ranks wait for the next command): one process training its share
// without DDP, the scaling baseline.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bench/workload"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/dist"
)

// ddpTimeout bounds the ranks' collectives, the wait for the next command included: the other
// side's rounds and the other data-parallel row run meanwhile.
const ddpTimeout = 10 * time.Minute

// cmdLen is the length of the int64 tensor a command line travels in: its length, then its bytes.
const cmdLen = 1024

// rankServer is one rank of the Go side's job.
type rankServer struct {
	g       *dist.Group
	threads int
	state   map[string]*workload.DDPRank // by mode
}

// runDDPRank is the body of a rank process: join the job from torchrun's variables, then serve
// the protocol (rank 0) or follow rank 0's commands.
func runDDPRank(threads int) error {
	bridge.SetNumThreads(threads)
	opts, err := dist.FromEnv()
	if err != nil {
		return err
	}
	opts.Timeout = ddpTimeout
	g, err := dist.Init(opts)
	if err != nil {
		return err
	}
	defer g.Close()
	s := &rankServer{g: g, threads: threads, state: map[string]*workload.DDPRank{}}
	if g.Rank() == 0 {
		err = s.serve(os.Stdin, os.Stdout)
	} else {
		err = s.follow()
	}
	for _, w := range s.state { // the Reducers go before the group, as in ref.py
		w.Close()
	}
	if err != nil {
		return err
	}
	// Leave together: rank 0 serves the store, and closing it first would fail the others.
	return g.Barrier()
}

// serve answers the protocol on rank 0, one JSON line per command, until quit or the end of in.
func (s *rankServer) serve(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	w := bufio.NewWriter(out)
	for {
		line := "quit"
		if sc.Scan() {
			line = strings.TrimSpace(sc.Text())
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		all, err := s.parse(f)
		if err == nil && all {
			err = s.broadcast(line)
		}
		if f[0] == "quit" {
			return err
		}
		var ans any
		if err == nil {
			ans, err = s.do(f)
		}
		if err != nil {
			ans = map[string]string{"error": err.Error()}
		}
		b, _ := json.Marshal(ans)
		w.Write(append(b, '\n'))
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// parse checks a command on rank 0 and says whether every rank runs it.
func (s *rankServer) parse(f []string) (all bool, err error) {
	switch f[0] {
	case "quit":
		return true, nil
	case "info":
		return false, nil
	case "load", "check", "run":
	default:
		return false, fmt.Errorf("unknown command %q", f[0])
	}
	if len(f) < 2 || (f[1] != "ddp" && f[1] != "local") {
		return false, fmt.Errorf("%s needs a mode, ddp or local", f[0])
	}
	switch {
	case f[0] == "load" && len(f) != 3:
		return false, errors.New("usage: load ddp|local PATH")
	case f[0] == "run" && len(f) != 3, f[0] == "check" && len(f) > 3:
		return false, fmt.Errorf("usage: %s ddp|local N", f[0])
	case f[0] != "load" && s.state[f[1]] == nil:
		return false, fmt.Errorf("mode %s needs its inputs first: load %s PATH", f[1], f[1])
	}
	if len(f) == 3 && f[0] != "load" {
		if n, err := strconv.Atoi(f[2]); err != nil || n < 1 {
			return false, fmt.Errorf("%s %s: %q is not a positive count", f[0], f[1], f[2])
		}
	}
	return f[1] == "ddp", nil
}

// do runs one command (on every rank for the ddp mode) and returns rank 0's answer.
func (s *rankServer) do(f []string) (ans any, err error) {
	if f[0] == "info" {
		blas, _ := harness.MappedBLAS()
		return map[string]any{"torch": bridge.Version(), "threads": bridge.NumThreads(), "ranks": s.g.Size(),
			"go": runtime.Version(), "blas": blas.Libraries}, nil
	}
	mode := f[1]
	if f[0] == "load" {
		var g *dist.Group
		if mode == "ddp" {
			g = s.g
		}
		if old := s.state[mode]; old != nil {
			old.Close()
			delete(s.state, mode)
		}
		w, err := workload.NewDDPRank(f[2], g, s.g.Rank(), workload.DDPSmall)
		if err != nil {
			return nil, err
		}
		s.state[mode] = w
		return map[string]any{"mode": mode, "loaded": f[2]}, nil
	}
	w := s.state[mode]
	n := 0
	if len(f) == 3 {
		n, _ = strconv.Atoi(f[2]) // parse checked it
	}
	err = bridge.Try(func() {
		switch f[0] {
		case "check":
			a := map[string]any{"mode": mode, "check": w.Check()}
			if n > 0 {
				a["losses"] = w.Losses(n)
			}
			ans = a
		case "run":
			gc := harness.ReadGC().Cycles
			t0 := time.Now()
			w.Run(n)
			// Releasing what the round dropped is part of its cost, as for the other Go rows.
			harness.DrainCleanups(10 * time.Second)
			sec := time.Since(t0).Seconds()
			ans = map[string]any{"mode": mode, "iters": n, "seconds": sec, "gc_cycles": harness.ReadGC().Cycles - gc}
		}
	})
	return ans, err
}

// broadcast sends a command line from rank 0 to the other ranks.
func (s *rankServer) broadcast(line string) error {
	if len(line) >= cmdLen {
		return fmt.Errorf("command of %d bytes: at most %d", len(line), cmdLen-1)
	}
	_, err := s.exchange(line)
	return err
}

// exchange is the command broadcast: rank 0 sends line, every rank returns what rank 0 sent.
func (s *rankServer) exchange(line string) (string, error) {
	buf := make([]int64, cmdLen)
	buf[0] = int64(len(line))
	for i := 0; i < len(line); i++ {
		buf[1+i] = int64(line[i])
	}
	var t *bridge.Tensor
	if err := bridge.Try(func() { t = bridge.FromSlice(buf) }); err != nil {
		return "", err
	}
	defer t.Free()
	if err := s.g.Broadcast(t, 0); err != nil {
		return "", err
	}
	var got []int64
	if err := bridge.Try(func() { got = t.Int64s() }); err != nil {
		return "", err
	}
	n := got[0]
	if n < 0 || n >= cmdLen {
		return "", fmt.Errorf("rank %d: a command of %d bytes", s.g.Rank(), n)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(got[1+i])
	}
	return string(b), nil
}

// follow runs rank 0's broadcast commands on another rank until quit; a failure ends the
// process (rank 0's next collective then fails and it answers the error).
func (s *rankServer) follow() error {
	for {
		line, err := s.exchange("")
		if err != nil {
			return err
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "quit" {
			return nil
		}
		if _, err := s.do(f); err != nil {
			return fmt.Errorf("rank %d: %s: %w", s.g.Rank(), line, err)
		}
	}
}

// jobs are the two sides' data-parallel jobs, started by the first data-parallel row.
type jobs struct {
	goJob, pyJob *harness.Job
	inputs       string          // the file both load (workload.SaveDDPInputs)
	loaded       map[string]bool // modes loaded on both
}

// startJobs saves the inputs and starts both jobs (once); their processes count as ours.
func (s *session) startJobs() (*jobs, error) {
	if s.jobs != nil {
		return s.jobs, nil
	}
	c := workload.DDPSmall
	j := &jobs{inputs: filepath.Join(s.dir, "ddp.pt"), loaded: map[string]bool{}}
	if err := workload.SaveDDPInputs(j.inputs, c); err != nil {
		return nil, err
	}
	goRank := s.goRank
	if goRank == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		goRank = []string{exe, "-threads", fmt.Sprint(s.threads), "-ddp-rank"}
	}
	// The Go ranks inherit the thread variables this process was re-executed with, and set the
	// bridge's malloc thresholds as it did; Python's get the same through s.refEnv.
	var err error
	if j.goJob, err = harness.StartJob(goRank[0], goRank[1:], nil, c.Ranks); err != nil {
		return nil, err
	}
	s.jobs = j // closed by closeJobs from here on
	if j.pyJob, err = harness.StartJob(s.python, []string{s.pySrc, "-threads", fmt.Sprint(s.threads), "ddp-rank"}, s.refEnv, c.Ranks); err != nil {
		return nil, err
	}
	for _, side := range []struct {
		name string
		job  *harness.Job
	}{{"Go", j.goJob}, {"Python", j.pyJob}} {
		var info struct {
			Torch   string `json:"torch"`
			Threads int    `json:"threads"`
			Ranks   int    `json:"ranks"`
		}
		if err := side.job.Do("info", &info); err != nil {
			return nil, fmt.Errorf("%s data-parallel job: %w", side.name, err)
		}
		if !sameMinor(info.Torch, bridge.Version()) || info.Threads != s.threads || info.Ranks != c.Ranks {
			return nil, fmt.Errorf("%s data-parallel job runs torch %s, %d threads, %d ranks; want %s, %d, %d",
				side.name, info.Torch, info.Threads, info.Ranks, bridge.Version(), s.threads, c.Ranks)
		}
		for _, pid := range side.job.Pids() {
			s.meter.Add(pid)
		}
	}
	return j, nil
}

// closeJobs stops the jobs (the other ranks wait in a collective for the next command, which
// would time out during the later sections).
func (s *session) closeJobs() {
	if s.jobs == nil {
		return
	}
	for _, side := range []struct {
		name string
		job  *harness.Job
	}{{"Go", s.jobs.goJob}, {"Python", s.jobs.pyJob}} {
		if side.job != nil {
			if err := side.job.Close(30 * time.Second); err != nil {
				fmt.Fprintf(os.Stderr, "benchrun: closing the %s data-parallel job: %v\n", side.name, err)
			}
		}
	}
	s.jobs = nil
}

// runJob measures a data-parallel row: Go's job against Python's, alternating rounds; each
// round's time is rank 0's.
func (s *session) runJob(b bench, p harness.Plan) (harness.Result, error) {
	j, err := s.startJobs()
	if err != nil {
		return harness.Result{}, err
	}
	if !j.loaded[b.Mode] {
		for _, job := range []*harness.Job{j.goJob, j.pyJob} {
			if err := job.Load(b.Mode, j.inputs); err != nil {
				return harness.Result{}, err
			}
		}
		j.loaded[b.Mode] = true
	}
	key := "job " + b.Mode
	chk, ok := s.checks[key]
	if !ok {
		if chk, err = checkJobs(b, j); err != nil {
			return harness.Result{}, err
		}
		s.checks[key] = chk
	}
	var gc []uint64 // the Go job's collections per run, rank 0's
	goRun := func(iters int) (float64, error) {
		var a struct {
			Seconds  *float64 `json:"seconds"`
			GCCycles uint64   `json:"gc_cycles"`
		}
		if err := j.goJob.Do(fmt.Sprintf("run %s %d", b.Mode, iters), &a); err != nil {
			return 0, err
		}
		if a.Seconds == nil {
			return 0, fmt.Errorf("go job: run %s: answer without seconds", b.Mode)
		}
		gc = append(gc, a.GCCycles)
		return *a.Seconds, nil
	}
	m, err := harness.Measure(p, goRun, nil, j.pyJob.Runner(b.Mode))
	if err != nil {
		return harness.Result{}, err
	}
	m.GoGCCycles = 0 // this process's are not the job's: the measured rounds' on rank 0
	for _, c := range gc[max(0, len(gc)-p.Rounds):] {
		m.GoGCCycles += c
	}
	res, err := harness.NewResult(b.Spec, m)
	res.Check = chk
	return res, err
}

// checkJobs compares the jobs' check values and rank 0's first losses of a fresh model.
func checkJobs(b bench, j *jobs) (*harness.Check, error) {
	goVal, goLosses, err := j.goJob.Losses(b.Mode, lossSteps)
	if err != nil {
		return nil, fmt.Errorf("go job: %w", err)
	}
	pyVal, pyLosses, err := j.pyJob.Losses(b.Mode, lossSteps)
	if err != nil {
		return nil, fmt.Errorf("python job: %w", err)
	}
	c := &harness.Check{Go: goVal, Python: &pyVal, GoLosses: goLosses, PythonLosses: pyLosses}
	var errs []error
	compare := func(what string, got, want, tol float64) {
		d := math.Abs(got-want) / math.Max(1, math.Abs(want))
		c.MaxRelDiff = math.Max(c.MaxRelDiff, d)
		if !(d <= tol) {
			errs = append(errs, fmt.Errorf("Python computes %s %v, Go %v", what, got, want))
		}
	}
	compare("check", pyVal, goVal, checkTol)
	for k := range pyLosses {
		compare(fmt.Sprintf("loss of step %d", k+1), pyLosses[k], goLosses[k], lossTol)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("the sides compute different values: %w", errors.Join(errs...))
	}
	fmt.Fprintf(os.Stderr, "  check %-12s rank 0's losses go %.9g: Python agrees (max rel diff %.2g)\n", b.Mode, goLosses, c.MaxRelDiff)
	return c, nil
}
