package plane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bench/workload"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/models"
)

// GoalGrowthPct is the memory goal: RSS after the last step at most this much above RSS at the
// end of warm-up.
const GoalGrowthPct = 2

// childMarker starts the line a memory child prints its report on; anything else the child
// prints (a callback's message to stdout) is ignored.
const childMarker = "HOTCB-MEMORY-REPORT "

// childReport is what a memory child prints: sizes in KiB, from VmRSS.
type childReport struct {
	Workload  string        `json:"workload"`
	Steps     int           `json:"steps"`
	Warmup    int           `json:"warmup_steps"`
	Callbacks []string      `json:"callbacks"`
	StartKiB  int64         `json:"start_kib"`
	EndKiB    int64         `json:"end_kib"`
	Samples   []childSample `json:"samples"`
	Seconds   float64       `json:"seconds"`
}

type childSample struct {
	Step int   `json:"step"`
	KiB  int64 `json:"kib"`
}

// MemoryWorkloads are the runs a memory child knows.
var MemoryWorkloads = map[string]string{
	"mlp": "tiny MLP 32-64-10 b16 (models.MLP, bench/workload's MLPTiny sizes)",
	"cnn": "SmallCNN 1x28x28 b64",
}

// RSSKiB reads VmRSS from /proc/self/status.
func RSSKiB() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS line %q", sc.Text())
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// RunMemoryChild trains workload ("mlp" or "cnn") for steps steps through a kernel over dir
// with every built-in enabled (feature maps every 50 steps, of the MLP's ReLU), on one pinned
// goroutine, and
// prints its report on out. Warm-up is the first quarter of the steps; RSS is read at the end
// of warm-up and after the last step right after a collection and its cleanups (so that
// garbage not yet collected is not counted as growth), and every steps/50 steps in between.
func RunMemoryChild(workloadName string, steps int, dir string, out io.Writer) error {
	if _, ok := MemoryWorkloads[workloadName]; !ok {
		return fmt.Errorf("memory child: unknown workload %q", workloadName)
	}
	if steps < 10 {
		return fmt.Errorf("memory child: %d steps: want at least 10", steps)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var t *trainee
	var err error
	cbs := builtins(50)
	if workloadName == "mlp" { // no Conv2d to default to: the hidden layer's activations
		cbs[1].init["layers"] = []any{"2"}
	}
	if workloadName == "cnn" {
		t, err = newCNNTrainee(dir, cbs)
	} else {
		t, err = newMLPTrainee(dir, cbs)
	}
	if err != nil {
		return err
	}
	defer t.k.Close()
	rep := childReport{Workload: workloadName, Steps: steps, Warmup: steps / 4, Callbacks: ids(cbs)}
	every := max(1, steps/50)
	start := time.Now()
	var rssErr error
	sample := func(step int) int64 {
		kib, err := RSSKiB()
		if err != nil {
			rssErr = err
		}
		rep.Samples = append(rep.Samples, childSample{Step: step, KiB: kib})
		return kib
	}
	err = bridge.Try(func() {
		for i := 1; i <= steps; i++ {
			t.Step()
			switch {
			case i == rep.Warmup:
				harness.Settle()
				rep.StartKiB = sample(i)
			case i == steps:
				harness.Settle()
				rep.EndKiB = sample(i)
			case i%every == 0:
				sample(i)
			}
		}
	})
	if err != nil {
		return err
	}
	if rssErr != nil {
		return rssErr
	}
	rep.Seconds = time.Since(start).Seconds()
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s%s\n", childMarker, b)
	return err
}

// newMLPTrainee is the tiny MLP (bench/workload's MLPTiny sizes: 32-64-10, a fixed random batch
// of 16, SGD lr 0.1) built as models.MLP, an nn.Module, so that the built-ins that read the
// model have one, and instruments it.
func newMLPTrainee(dir string, cbs []builtin) (*trainee, error) {
	c := workload.MLPTiny
	t := &trainee{lr: c.LR}
	err := bridge.Try(func() {
		bridge.ManualSeed(workload.Seed)
		t.x = bridge.Randn(bridge.Shape{c.Batch, c.In})
		t.y = bridge.RandInt(0, c.Out, bridge.Shape{c.Batch})
		t.model = models.MLP(c.In, c.Hidden, c.Out)
		t.params = nn.Parameters(t.model)
	})
	if err != nil {
		return nil, err
	}
	return instrument(t, dir, cbs)
}

// ParseMemoryChild reads a memory child's stdout: the last report line, checked.
func ParseMemoryChild(stdout []byte, name string) (harness.MemoryResult, error) {
	var line []byte
	for l := range bytes.Lines(stdout) {
		if rest, ok := bytes.CutPrefix(l, []byte(childMarker)); ok {
			line = rest
		}
	}
	if line == nil {
		return harness.MemoryResult{}, fmt.Errorf("memory child printed no report line (%q…): %s", childMarker, head(stdout, 300))
	}
	var r childReport
	if err := json.Unmarshal(line, &r); err != nil {
		return harness.MemoryResult{}, fmt.Errorf("memory child's report: %v: %s", err, head(line, 300))
	}
	switch {
	case r.Steps <= 0 || r.Warmup <= 0 || r.Warmup >= r.Steps:
		return harness.MemoryResult{}, fmt.Errorf("memory child's report: %d steps, warm-up %d", r.Steps, r.Warmup)
	case r.StartKiB <= 0 || r.EndKiB <= 0 || len(r.Samples) == 0:
		return harness.MemoryResult{}, fmt.Errorf("memory child's report: no RSS (start %d KiB, end %d KiB, %d samples)",
			r.StartKiB, r.EndKiB, len(r.Samples))
	}
	mib := func(k int64) float64 { return float64(k) / 1024 }
	res := harness.MemoryResult{Name: name, Workload: MemoryWorkloads[r.Workload], Callbacks: r.Callbacks,
		Steps: r.Steps, WarmupSteps: r.Warmup, StartMiB: mib(r.StartKiB), EndMiB: mib(r.EndKiB),
		Seconds: r.Seconds, Goal: fmt.Sprintf("growth < %d%%", GoalGrowthPct), GoalMax: GoalGrowthPct}
	peak := r.EndKiB
	for _, s := range r.Samples {
		res.Samples = append(res.Samples, harness.RSSSample{Step: s.Step, MiB: mib(s.KiB)})
		if s.Step >= r.Warmup {
			peak = max(peak, s.KiB)
		}
	}
	res.MaxMiB = mib(peak)
	res.GrowthPct = 100 * (float64(r.EndKiB)/float64(r.StartKiB) - 1)
	res.MaxPct = 100 * (float64(peak)/float64(r.StartKiB) - 1)
	met := res.GrowthPct < GoalGrowthPct
	res.Met = &met
	return res, nil
}

func head(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	if s == "" {
		return "(nothing)"
	}
	return s
}

// RunChild runs cmd with a deadline and returns its stdout; a child that fails, is killed at
// the deadline, or prints nothing is an error that quotes the end of its stderr.
func RunChild(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tail := func() string {
		s := strings.TrimSpace(stderr.String())
		if len(s) > 600 {
			s = "…" + s[len(s)-600:]
		}
		return s
	}
	select {
	case err := <-done:
		if err != nil {
			return stdout.Bytes(), fmt.Errorf("%s: %v; stderr: %s", cmd.Path, err, tail())
		}
		return stdout.Bytes(), nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return stdout.Bytes(), fmt.Errorf("%s: killed: %v; stderr: %s", cmd.Path, ctx.Err(), tail())
	}
}

// MemoryOptions size MeasureMemory.
type MemoryOptions struct {
	// Command returns the command line of a child (the benchmark re-executing itself) for a
	// workload and a number of steps; the child calls RunMemoryChild.
	Command            func(workload string, steps int) *exec.Cmd
	MLPSteps, CNNSteps int           // default 20000 and 2000
	Timeout            time.Duration // per child (default 5 minutes)
}

// MeasureMemory runs one fresh child per workload and reads its report.
func MeasureMemory(o MemoryOptions) ([]harness.MemoryResult, error) {
	if o.MLPSteps <= 0 {
		o.MLPSteps = 20000
	}
	if o.CNNSteps <= 0 {
		o.CNNSteps = 2000
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	var out []harness.MemoryResult
	for _, w := range []struct {
		name  string
		steps int
	}{{"mlp", o.MLPSteps}, {"cnn", o.CNNSteps}} {
		ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
		stdout, err := RunChild(ctx, o.Command(w.name, w.steps))
		cancel()
		if err != nil {
			return out, fmt.Errorf("memory %s: %w", w.name, err)
		}
		r, err := ParseMemoryChild(stdout, fmt.Sprintf("%s, %d steps", MemoryWorkloads[w.name], w.steps))
		if err != nil {
			return out, fmt.Errorf("memory %s: %w", w.name, err)
		}
		out = append(out, r)
	}
	return out, nil
}
