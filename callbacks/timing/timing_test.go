package timing

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// phases are the default events, in dispatch order.
var phases = []string{torchenv.TrainStepStart, torchenv.ForwardEnd, torchenv.BackwardEnd, torchenv.OptimizerStepEnd,
	torchenv.TrainStepEnd}

// rig is a timing callback attached to a temp run dir with a fake clock and a captured log.
type rig struct {
	t     *testing.T
	tm    *Timing
	env   *torchenv.Env
	clock int64 // ns
	lines []string
}

func newRig(t *testing.T, init map[string]any) *rig {
	r := &rig{t: t}
	tm, err := New("timing", init)
	require.NoError(t, err)
	tm.now = func() int64 { return r.clock }
	tm.stdout = &bytes.Buffer{}
	r.tm = tm
	r.env = &torchenv.Env{RunDir: t.TempDir(), Log: func(s string) { r.lines = append(r.lines, s) }}
	require.NoError(t, tm.OnAttach(r.env))
	return r
}

// step runs one step; gaps[i] is the time before event i (ms).
func (r *rig) step(gaps ...float64) {
	for i, ev := range phases {
		r.clock += int64(gaps[i] * 1e6)
		require.NoError(r.t, r.tm.Handle(ev, r.env))
	}
	r.env.Step++
}

func (r *rig) records() []Record {
	f, err := os.Open(filepath.Join(r.env.RunDir, "timing", "timing.jsonl"))
	require.NoError(r.t, err)
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec Record
		require.NoError(r.t, json.Unmarshal(sc.Bytes(), &rec), "line %q", sc.Text())
		out = append(out, rec)
	}
	require.NoError(r.t, sc.Err())
	return out
}

func TestIntervalsWithAFakeClock(t *testing.T) {
	r := newRig(t, map[string]any{"every": 10, "window": 100})
	for range 21 { // the first step only starts the clock: 20 steps are timed
		r.step(1, 3, 10, 6, 0) // data/other 1, forward 3, backward 10, optimizer 6, optimizer->end 0
	}
	recs := r.records()
	require.Len(t, recs, 2)
	rec := recs[1]
	require.EqualValues(t, 20, rec.Steps)
	require.EqualValues(t, 20, rec.Step)
	require.Equal(t, []string{Forward, Backward, Optimizer, "optimizer_step_end->train_step_end", DataOther}, rec.Order)
	require.InDelta(t, 3, rec.Intervals[Forward].HostMs.P50, 1e-9)
	require.InDelta(t, 10, rec.Intervals[Backward].HostMs.P50, 1e-9)
	require.InDelta(t, 6, rec.Intervals[Optimizer].HostMs.Max, 1e-9)
	require.InDelta(t, 0, rec.Intervals["optimizer_step_end->train_step_end"].HostMs.Mean, 1e-9)
	require.InDelta(t, 1, rec.Intervals[DataOther].HostMs.P95, 1e-9)
	require.Equal(t, 20, rec.Intervals[DataOther].HostMs.N)
	require.InDelta(t, 20, rec.StepMs.P50, 1e-9)
	require.InDelta(t, 50, rec.StepsPerS, 1e-9)
	require.Nil(t, rec.SamplesPerS, "no inputs, no samples/s")
	require.False(t, rec.DeviceTiming)
	require.Equal(t, "host only: device timing unavailable on cpu", rec.Note)
	require.Nil(t, rec.Intervals[DataOther].DeviceMs)
	require.Len(t, r.lines, 2)
	require.Contains(t, r.lines[1], "[timing] step=20 50.0 steps/s | step p50 20.00ms")
	require.Contains(t, r.lines[1], "host only")
}

func TestDisabledPeriodIsNoInterval(t *testing.T) {
	r := newRig(t, map[string]any{"every": 1000, "window": 100})
	for range 5 {
		r.step(1, 3, 10, 6, 0)
	}
	// disabled mid-step (after forward_end) for 10 s: no events reach it
	r.clock += int64(1e6)
	require.NoError(t, r.tm.Handle(torchenv.TrainStepStart, r.env))
	r.clock += int64(3e6)
	require.NoError(t, r.tm.Handle(torchenv.ForwardEnd, r.env))
	r.clock += int64(10e9)
	r.env.Step += 500
	var _ callback.Pauser = r.tm
	r.tm.OnPause()
	r.tm.OnResume()
	for range 5 {
		r.step(1, 3, 10, 6, 0)
	}
	snap := r.tm.Snapshot()
	for name, iv := range snap.Intervals {
		require.LessOrEqual(t, iv.HostMs.Max, 10.0, "interval %s spans the disabled period", name)
	}
	require.LessOrEqual(t, snap.StepMs.Max, 20.0, "a step spans the disabled period")
	require.Equal(t, 4+4, snap.StepMs.N, "the first step after each start only starts the clock")
}

func TestWindowStatistics(t *testing.T) {
	r := newRig(t, map[string]any{"every": 100, "window": 10})
	r.step(1, 1, 1, 1, 1)
	for i := 1; i <= 30; i++ { // the backward takes i ms: the window holds 21..30
		r.step(1, 1, float64(i), 1, 1)
	}
	s := r.tm.Snapshot().Intervals[Backward].HostMs
	require.Equal(t, 10, s.N)
	require.InDelta(t, 25.5, s.Mean, 1e-9)
	require.InDelta(t, 25.5, s.P50, 1e-9)
	require.InDelta(t, 29.55, s.P95, 1e-9)
	require.InDelta(t, 30, s.Max, 1e-9)

	// a smaller window keeps the newest values
	require.NoError(t, r.tm.SetParams(map[string]any{"window": 4}))
	s = r.tm.Snapshot().Intervals[Backward].HostMs
	require.Equal(t, 4, s.N)
	require.InDelta(t, 28.5, s.Mean, 1e-9)
}

func TestSamplesPerSecondFromInputs(t *testing.T) {
	r := newRig(t, map[string]any{"every": 5})
	r.env.Inputs = bridge.Zeros(bridge.Shape{32, 3})
	for range 6 {
		r.step(1, 1, 3, 3, 2) // 10 ms steps: 100 steps/s, 3200 samples/s
	}
	rec := r.records()[0]
	require.InDelta(t, 100, rec.StepsPerS, 1e-9)
	require.NotNil(t, rec.SamplesPerS)
	require.InDelta(t, 3200, *rec.SamplesPerS, 1e-9)
	require.EqualValues(t, 32, rec.BatchSize)
	require.Contains(t, r.lines[0], "3200 samples/s")
}

func TestSleepIsMeasured(t *testing.T) {
	const sleep = 20 * time.Millisecond
	tm, err := New("timing", map[string]any{"every": 1000})
	require.NoError(t, err)
	env := &torchenv.Env{RunDir: t.TempDir(), Log: func(string) {}}
	require.NoError(t, tm.OnAttach(env))
	for step := range 6 {
		env.Step = int64(step)
		require.NoError(t, tm.Handle(torchenv.TrainStepStart, env))
		require.NoError(t, tm.Handle(torchenv.ForwardEnd, env))
		time.Sleep(sleep)
		require.NoError(t, tm.Handle(torchenv.BackwardEnd, env))
		require.NoError(t, tm.Handle(torchenv.OptimizerStepEnd, env))
		require.NoError(t, tm.Handle(torchenv.TrainStepEnd, env))
	}
	rec := tm.Snapshot()
	fb := rec.Intervals[Backward].HostMs
	require.Equal(t, 6, fb.N)
	t.Logf("20 ms sleep measured as p50 %.3f ms, mean %.3f, max %.3f", fb.P50, fb.Mean, fb.Max)
	require.InDelta(t, 20, fb.P50, 10)
	require.GreaterOrEqual(t, fb.P50, 20.0, "a sleep is never shorter than asked")
	require.InDelta(t, 20, rec.StepMs.P50, 10)
	// a step contains its intervals: each of the 5 steps timed is at least its backward, so the
	// longest step is at least the second-longest of the 6 backwards, hence their median
	require.GreaterOrEqual(t, rec.StepMs.Max, fb.P50, "a step contains its intervals")
	require.Less(t, rec.Intervals[Optimizer].HostMs.Max, 5.0)
	require.Less(t, rec.Intervals[Forward].HostMs.Max, 5.0)
	require.Less(t, rec.Intervals[DataOther].HostMs.Max, 5.0)
	// monotone: every value is a duration >= 0
	for _, name := range rec.Order {
		require.GreaterOrEqual(t, rec.Intervals[name].HostMs.P50, 0.0, name)
	}
}

func TestBadParamsKeepTheOldOnes(t *testing.T) {
	r := newRig(t, map[string]any{"every": 7, "window": 30})
	before := r.tm.Params()
	for _, tc := range []struct {
		in  map[string]any
		key string
	}{
		{map[string]any{"every": 0}, "every"},
		{map[string]any{"window": -1}, "window"},
		{map[string]any{"events": []any{"forward_end", "backwrd_end"}, "every": 3}, "events.1"},
		{map[string]any{"events": "forward_end,forward_end"}, "events"},
		{map[string]any{"events": ""}, "events"},
		{map[string]any{"out": "../elsewhere.jsonl"}, "out"},
		{map[string]any{"out": "/tmp/timing.jsonl", "every": 3}, "out"},
		{map[string]any{"evry": 3}, "evry"},
		{map[string]any{"sync": "maybe"}, "sync"},
	} {
		err := r.tm.SetParams(tc.in)
		require.Error(t, err, "%v", tc.in)
		var pe *params.Error
		require.True(t, errors.As(err, &pe), "%v: %v", tc.in, err)
		require.Equal(t, tc.key, pe.Key, "%v: %v", tc.in, err)
		require.Contains(t, err.Error(), `"`+tc.key+`"`)
		require.Equal(t, before, r.tm.Params(), "%v changed the params", tc.in)
	}
	// a good update is applied, and is idempotent
	for range 2 {
		require.NoError(t, r.tm.SetParams(map[string]any{"every": "3", "events": "train_step_end,forward_end", "out": "t/x.jsonl"}))
		p := r.tm.Params()
		require.Equal(t, 3, p.Every)
		require.Equal(t, []string{"train_step_end", "forward_end"}, p.Events)
		require.Equal(t, []string{"forward_end", "train_step_end"}, r.tm.names, "timed in dispatch order")
	}
	_, err := New("timing", map[string]any{"every": 0})
	require.ErrorContains(t, err, `param "every"`)
	// an absolute out outside the run dir is refused at attach
	tm, err := New("timing", map[string]any{"out": "/etc/timing.jsonl"})
	require.NoError(t, err)
	err = tm.OnAttach(&torchenv.Env{RunDir: t.TempDir()})
	require.ErrorContains(t, err, `param "out"`)
}

func TestCustomEventsAndOut(t *testing.T) {
	r := newRig(t, map[string]any{"every": 2, "events": []any{"train_step_end"}, "out": "perf/steps.jsonl"})
	for range 5 {
		r.step(0, 1, 2, 3, 4)
	}
	b, err := os.ReadFile(filepath.Join(r.env.RunDir, "perf", "steps.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2)
	var rec Record
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &rec))
	require.InDelta(t, 10, rec.StepMs.P50, 1e-9)
	require.Equal(t, []string{"train_step_end->train_step_end"}, rec.Order, "one event: the interval is the step")
	require.NoError(t, r.tm.Handle(torchenv.FitEnd, r.env))
	require.FileExists(t, filepath.Join(r.env.RunDir, "perf", "steps.png"))
}

func TestJSONLFieldsAndChart(t *testing.T) {
	r := newRig(t, map[string]any{"every": 50})
	for i := range 300 {
		spike := 0.0
		if i%97 == 0 {
			spike = 25
		}
		r.step(1, 1+float64(i%7), 8+spike+float64(i)/60, 3, 0.5)
	}
	require.NoError(t, r.tm.Handle(torchenv.FitEnd, r.env))
	b, err := os.ReadFile(filepath.Join(r.env.RunDir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 5+1, "every 50 steps, and the last 49 at fit_end")
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		for _, k := range []string{"time", "id", "step", "steps", "window", "device", "device_timing", "note",
			"sync", "step_ms", "steps_per_s", "intervals", "order"} {
			require.Contains(t, m, k, l)
		}
		sm := m["step_ms"].(map[string]any)
		for _, k := range []string{"n", "mean", "p50", "p95", "max"} {
			require.Contains(t, sm, k)
		}
		require.LessOrEqual(t, sm["p50"].(float64), sm["p95"].(float64))
		require.LessOrEqual(t, sm["p95"].(float64), sm["max"].(float64))
		iv := m["intervals"].(map[string]any)
		require.Contains(t, iv, DataOther)
		require.Contains(t, iv[Backward].(map[string]any), "host_ms")
	}
	var last Record
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	require.EqualValues(t, 299, last.Steps)

	f, err := os.Open(filepath.Join(r.env.RunDir, "timing", "timing.png"))
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, ChartWidth, img.Bounds().Dx())
	require.Equal(t, ChartHeight, img.Bounds().Dy())
	require.Contains(t, r.lines[len(r.lines)-1], "step time chart")

	// Close after fit_end has nothing left to write
	require.NoError(t, r.tm.Close())
	b2, err := os.ReadFile(filepath.Join(r.env.RunDir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	require.Equal(t, b, b2)
}

func TestCloseWithoutFitEndFinishes(t *testing.T) {
	r := newRig(t, map[string]any{"every": 100})
	for range 10 {
		r.step(1, 1, 1, 1, 1)
	}
	require.NoError(t, r.tm.Close())
	require.Len(t, r.records(), 1)
	require.FileExists(t, filepath.Join(r.env.RunDir, "timing", "timing.png"))
	require.Contains(t, r.lines[0], "[timing] step=9", "the env's log is used at Close too")
}

func TestOtherEventsAreIgnored(t *testing.T) {
	r := newRig(t, nil)
	for _, ev := range []string{torchenv.FitStart, torchenv.EpochEnd, "custom_event", torchenv.ValBatchEnd} {
		require.NoError(t, r.tm.Handle(ev, r.env))
	}
	require.Equal(t, -1, r.tm.prevIdx)
	require.Empty(t, r.tm.order)
	require.NoError(t, r.tm.Handle(torchenv.FitEnd, r.env), "fit_end with nothing timed")
	require.NoFileExists(t, filepath.Join(r.env.RunDir, "timing", "timing.png"))
}

// The intervals are named by the phases they hold, so that the forward pass is never counted as
// data/other, whichever events are timed.
func TestIntervalNames(t *testing.T) {
	const (
		start = torchenv.TrainStepStart
		fwd   = torchenv.ForwardEnd
		bwd   = torchenv.BackwardEnd
		opt   = torchenv.OptimizerStepEnd
		end   = torchenv.TrainStepEnd
	)
	for _, tc := range []struct {
		events []string
		want   []string // in the order a step dispatches them, the close → first last
	}{
		{phases, []string{Forward, Backward, Optimizer, "optimizer_step_end->train_step_end", DataOther}},
		{[]string{fwd, bwd, opt, end}, []string{Backward, Optimizer, "optimizer_step_end->train_step_end", "data/other+forward"}},
		{[]string{start, bwd, end}, []string{"forward+backward", "backward_end->train_step_end", DataOther}},
		{[]string{start, opt, end}, []string{"forward+backward+optimizer", "optimizer_step_end->train_step_end", DataOther}},
		{[]string{bwd, end}, []string{"backward_end->train_step_end", "data/other+forward+backward"}},
		{[]string{start, fwd, bwd, torchenv.TrainBatchEnd}, []string{Forward, Backward, "backward_end->train_batch_end", DataOther}},
		{[]string{end}, []string{"train_step_end->train_step_end"}},
	} {
		r := newRig(t, map[string]any{"events": tc.events, "every": 1000})
		for range 3 {
			for _, ev := range append(phases, torchenv.TrainBatchEnd) {
				r.clock += 1e6
				require.NoError(t, r.tm.Handle(ev, r.env))
			}
			r.env.Step++
		}
		require.Equal(t, tc.want, r.tm.Snapshot().Order, "%v", tc.events)
	}
}

// An accumulated step dispatches forward_end and backward_end once per micro-batch: every
// micro-batch's forward is a "forward" (after the first, it follows the previous backward_end),
// every backward a "backward".
func TestMicroBatchesAreForwardAndBackward(t *testing.T) {
	r := newRig(t, map[string]any{"every": 1000})
	for range 5 {
		for _, ev := range []string{torchenv.TrainStepStart, torchenv.ForwardEnd, torchenv.BackwardEnd,
			torchenv.ForwardEnd, torchenv.BackwardEnd, torchenv.ForwardEnd, torchenv.BackwardEnd,
			torchenv.OptimizerStepEnd, torchenv.TrainStepEnd} {
			r.clock += map[string]int64{torchenv.ForwardEnd: 2e6, torchenv.BackwardEnd: 3e6}[ev] + 1e6
			require.NoError(t, r.tm.Handle(ev, r.env))
		}
		r.env.Step++
	}
	rec := r.tm.Snapshot()
	require.Equal(t, []string{Forward, Backward, Optimizer, "optimizer_step_end->train_step_end", DataOther}, rec.Order)
	require.Equal(t, 15, rec.Intervals[Forward].HostMs.N, "three micro-batches a step")
	require.InDelta(t, 3, rec.Intervals[Forward].HostMs.P50, 1e-9)
	require.InDelta(t, 4, rec.Intervals[Backward].HostMs.Max, 1e-9)
	require.Equal(t, 4, rec.Intervals[DataOther].HostMs.N)
	require.InDelta(t, 24, rec.StepMs.P50, 1e-9)
}
