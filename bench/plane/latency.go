package plane

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// BuildCLI builds cmd/hotcb (from the module in the current directory) into dir as `make build`
// does (pure Go, CGO_ENABLED=0) and returns the binary's path.
func BuildCLI(dir string) (string, error) {
	return goBuild(dir, "hotcb", "./cmd/hotcb", "CGO_ENABLED=0")
}

// BuildTorchCLI builds cmd/hotcb-torch, hotcb with libtorch, into dir and returns its path.
func BuildTorchCLI(dir string) (string, error) {
	return goBuild(dir, "hotcb-torch", "./cmd/hotcb-torch")
}

func goBuild(dir, name, pkg string, env ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// LatencyOptions size MeasureLatency.
type LatencyOptions struct {
	CLI      string          // the hotcb binary (BuildCLI)
	Targets  []string        // Kernel, Controller (default both)
	Cadences []time.Duration // loop periods (default 1 ms and 100 ms)
	Commands int             // per target and cadence (default 15)
	Dir      string          // scratch directory for the run directories
	// Timeout bounds one command: the CLI's run and the wait for its op (default 10 s).
	Timeout time.Duration
}

// GoalSafePoints is the latency goal: a command is applied at the first safe point that begins
// after it was written.
const GoalSafePoints = 1

// probe is the callback the commands address: its SetParams (called by the controller while it
// applies a set_params op, inside Apply) records when and at which safe point.
type probe struct {
	id   string
	loop *loop
	hits chan hit
}

type hit struct {
	seq       int
	at        time.Time
	safePoint int
}

func (p *probe) ID() string                         { return p.id }
func (p *probe) Handle(string, *torchenv.Env) error { return nil }
func (p *probe) SetParams(m map[string]any) error {
	v, ok := m["seq"]
	if !ok {
		return nil
	}
	seq, err := params.Int(v)
	if err != nil {
		return fmt.Errorf("seq: %w", err)
	}
	select {
	case p.hits <- hit{seq: seq, at: time.Now(), safePoint: p.loop.current}:
	default: // nobody waits for it any more
	}
	return nil
}

// loop is the training loop stand-in: sleep one cadence, then a safe point.
type loop struct {
	mu      sync.Mutex
	starts  []time.Time // when each safe point began
	current int         // index of the safe point running (loop goroutine only)
}

func (l *loop) run(ctx context.Context, cadence time.Duration, p *plane, done chan<- struct{}) {
	defer close(done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	env := &torchenv.Env{Phase: "train"}
	for ctx.Err() == nil {
		time.Sleep(cadence)
		t := time.Now()
		l.mu.Lock()
		l.starts = append(l.starts, t)
		l.current = len(l.starts) - 1
		l.mu.Unlock()
		p.Apply(env, trainStepEnd...)
		env.Step++
	}
}

func (l *loop) snapshot() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.starts...)
}

// SafePointsAfter counts the safe points that began after written, up to and including the
// one numbered applied (starts are in order): 1 when the next safe point applied the command, 0
// when one that began before written did (it read the file after the write).
func SafePointsAfter(starts []time.Time, written time.Time, applied int) int {
	before := sort.Search(len(starts), func(i int) bool { return starts[i].After(written) })
	return max(0, applied-before+1)
}

// MeasureLatency appends commands with the hotcb CLI (`hotcb --dir RUN cb set_params probe
// seq=N`) to the run directory of a controller or kernel whose loop runs a safe point every
// cadence, and times each from written to applied.
//
// Written is when a watcher of the harness's own (fsnotify on the run directory, a separate
// goroutine) is told that the commands file was modified: the CLI appends the complete line in
// one write(2), so this is within the watcher's wake-up time after the line is in the file —
// the same notification the controller and kernel wait on. Applied is when the probe
// callback's SetParams runs, inside the Apply that applies the op. Also recorded: the time from
// the CLI process's exit (negative: applied before the CLI had exited) and the CLI's run.
func MeasureLatency(o LatencyOptions) ([]harness.LatencyResult, error) {
	if len(o.Targets) == 0 {
		o.Targets = []string{Kernel, Controller}
	}
	if len(o.Cadences) == 0 {
		o.Cadences = []time.Duration{time.Millisecond, 100 * time.Millisecond}
	}
	if o.Commands <= 0 {
		o.Commands = 15
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if _, err := os.Stat(o.CLI); err != nil {
		return nil, fmt.Errorf("hotcb CLI: %w", err)
	}
	var out []harness.LatencyResult
	for _, t := range o.Targets {
		for _, c := range o.Cadences {
			dir := filepath.Join(o.Dir, fmt.Sprintf("latency-%s-%s", t, c))
			r, err := measureLatency(o, t, c, dir)
			if err != nil {
				return out, fmt.Errorf("latency %s every %s: %w", t, c, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func measureLatency(o LatencyOptions, target string, cadence time.Duration, dir string) (harness.LatencyResult, error) {
	res := harness.LatencyResult{Name: fmt.Sprintf("%s, step every %s", target, cadence), Target: target,
		CadenceMs: float64(cadence) / 1e6, Unit: "ms",
		Goal: fmt.Sprintf("applied at the next safe point (<= %d)", GoalSafePoints), GoalMax: GoalSafePoints}
	l := &loop{}
	pr := &probe{id: "probe", loop: l, hits: make(chan hit, 16)}
	reg := callback.NewRegistry()
	reg.Register("bench/plane/probe", "Probe", func(id string, _ map[string]any) (callback.HotCallback, error) { return pr, nil })
	p, err := open(target, dir, reg, false, false)
	if err != nil {
		return res, err
	}
	defer p.Close()
	if err := p.load("probe", ops.CallbackTarget{Kind: ops.KindModule, Path: "bench/plane/probe", Symbol: "Probe"}, nil); err != nil {
		return res, err
	}
	p.Apply(&torchenv.Env{}, trainStepEnd...)
	if err := p.enabled(1); err != nil {
		return res, err
	}

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return res, err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return res, err
	}
	written := make(chan time.Time, 64)
	go func() {
		for ev := range w.Events {
			if filepath.Base(ev.Name) == rundir.Commands && ev.Has(fsnotify.Write) {
				select {
				case written <- time.Now():
				default:
				}
			}
		}
	}()

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go l.run(ctx, cadence, p, done)
	defer func() { stop(); <-done }()

	var fromExit, cli []float64
	for i := 1; i <= o.Commands; i++ {
		// Write at a random phase of the loop.
		time.Sleep(time.Duration(rand.Int64N(int64(cadence) + 1)))
		for len(written) > 0 {
			<-written
		}
		lat, exit, run, sp, err := command(o, dir, i, pr.hits, written, l)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("command %d: %v", i, err))
			if len(res.Errors) >= 3 {
				break
			}
			continue
		}
		res.Latencies = append(res.Latencies, lat)
		res.SafePoints = append(res.SafePoints, sp)
		res.MaxSafePoints = max(res.MaxSafePoints, sp)
		fromExit = append(fromExit, exit)
		cli = append(cli, run)
	}
	stop()
	<-done
	res.Steps = int64(len(l.snapshot()))
	res.Commands = len(res.Latencies)
	s := harness.Summarize(res.Latencies)
	res.Median, res.Min, res.Max = s.Median, s.Min, s.Max
	res.FromExit, res.CLIRun = harness.Summarize(fromExit), harness.Summarize(cli)
	res.Met = harness.AtMost(float64(res.MaxSafePoints), GoalSafePoints)
	if len(res.Errors) > 0 || res.Commands == 0 {
		f := false
		res.Met = &f
	}
	return res, nil
}

// command runs the CLI once and waits for its op: latency and from-exit in ms, the CLI's run in
// ms, and the safe points counted by SafePointsAfter.
func command(o LatencyOptions, dir string, seq int, hits <-chan hit, written <-chan time.Time, l *loop) (lat, fromExit, run float64, sp int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	t0 := time.Now()
	b, err := exec.CommandContext(ctx, o.CLI, "--dir", dir, "cb", "set_params", "probe", fmt.Sprintf("seq=%d", seq)).CombinedOutput()
	exited := time.Now()
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("hotcb cb set_params: %v: %s", err, strings.TrimSpace(string(b)))
	}
	var h hit
	for h.seq != seq {
		select {
		case h = <-hits:
		case <-ctx.Done():
			return 0, 0, 0, 0, fmt.Errorf("not applied within %s", o.Timeout)
		}
	}
	var w time.Time
	select {
	case w = <-written:
	case <-ctx.Done():
		return 0, 0, 0, 0, errors.New("the harness's watcher saw no write to the commands file")
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return ms(h.at.Sub(w)), ms(h.at.Sub(exited)), ms(exited.Sub(t0)), SafePointsAfter(l.snapshot(), w, h.safePoint), nil
}
