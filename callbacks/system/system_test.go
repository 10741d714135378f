package system

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		out = append(out, m)
	}
	return out
}

func TestSnapshotIsPlausible(t *testing.T) {
	var logs []string
	env := &torchenv.Env{RunDir: t.TempDir(), Log: func(s string) { logs = append(logs, s) }}
	c, err := New("sys", map[string]any{"every": 2})
	require.NoError(t, err)
	runtime.GC()
	keep := bridge.Randn(bridge.Shape{256, 256}) // some libtorch memory held through Go
	for s := int64(0); s < 3; s++ {
		env.Step = s
		burn := 0.0
		for i := 0; i < 2_000_000; i++ { // CPU time between the reports
			burn += math.Sqrt(float64(i))
		}
		require.NotZero(t, burn)
		require.NoError(t, c.Handle(torchenv.TrainStepEnd, env))
		require.NoError(t, c.Handle(torchenv.BackwardEnd, env))
	}
	s := c.Last()
	require.EqualValues(t, 2, s.Step)
	require.Greater(t, s.RSS, int64(1<<20), "RSS")
	require.GreaterOrEqual(t, s.RSSPeak, s.RSS)
	require.Greater(t, s.Threads, int64(0))
	require.Greater(t, s.GoHeap, int64(0))
	require.GreaterOrEqual(t, s.GoHeapGoal, int64(0))
	require.Greater(t, s.GoTotal, s.GoHeap)
	require.GreaterOrEqual(t, s.GCCycles, int64(1))
	require.GreaterOrEqual(t, s.GCPauses, int64(1))
	require.Greater(t, s.GCPauseTotal, 0.0)
	require.Greater(t, s.Goroutines, int64(0))
	require.Greater(t, s.CPUUser, 0.0)
	require.Greater(t, s.CPUPercent, 0.0, "the second report has a CPU share")
	require.GreaterOrEqual(t, s.TorchLive, keep.Numel()*4)
	require.GreaterOrEqual(t, s.TorchPressure, s.TorchLive)
	require.EqualValues(t, -1, s.CUDAAllocated, "no CUDA figures on the CPU")

	recs := readJSONL(t, filepath.Join(env.RunDir, "system", "system_stats.jsonl"))
	require.Len(t, recs, 2, "steps 0 and 2")
	r := recs[1]
	for _, k := range []string{"rss_bytes", "rss_peak_bytes", "threads", "go_heap_bytes", "go_heap_goal_bytes",
		"go_total_bytes", "gc_cycles", "gc_pauses", "gc_pause_total_s", "gc_pause_max_s", "gc_cpu_s", "goroutines",
		"cpu_user_s", "cpu_system_s", "cpu_percent", "torch_live_bytes", "torch_pressure_bytes", "torch_gc_requests"} {
		require.Contains(t, r, k)
	}
	require.Equal(t, float64(s.RSS), r["rss_bytes"])
	require.NotContains(t, recs[0], "cpu_percent", "no share on the first report")
	require.NotContains(t, r, "cuda_allocated_bytes")
	require.Len(t, logs, 2)
	require.Contains(t, logs[1], "system_stats sys step 2: rss=")
	require.Contains(t, logs[1], " cpu=")
	runtime.KeepAlive(keep)
}

// TestTorchFigureIsLiveBytes: the libtorch figure read 9,660 MiB after 20k steps of a loop at
// 324 MiB RSS — it never subtracted the tensors the garbage collector freed. A training loop that
// frees its tensors by Scope every other step and leaves them to the collector on the others must
// report a bounded figure, and at the end exactly what it had before the loop: the model, the
// batch (the gradients live inside libtorch, behind no Go handle).
func TestTorchFigureIsLiveBytes(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	steps := int64(4000)
	if testing.Short() {
		steps = 1000
	}
	env := &torchenv.Env{RunDir: t.TempDir()}
	c, err := New("sys", map[string]any{"every": 100, "log": false})
	require.NoError(t, err)
	defer c.Close()
	model := models.MLP(784, 256, 10)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.01})
	require.NoError(t, err)
	x, y := bridge.Randn(bridge.Shape{64, 784}), bridge.RandInt(0, 10, bridge.Shape{64})
	settle := func() int64 {
		prev := int64(-1)
		for range 50 {
			runtime.GC()
			time.Sleep(5 * time.Millisecond)
			bridge.ReleaseUnreachable()
			live := c.Read(nil).TorchLive
			if live == prev {
				return live
			}
			prev = live
		}
		t.Fatal("the live figure never settled")
		return 0
	}
	step := func() {
		opt.ZeroGrad()
		bridge.CrossEntropy(model.Forward(x), y).Backward()
		opt.Step()
	}
	base := settle()
	for s := int64(0); s < steps; s++ {
		if s%2 == 0 {
			bridge.Scope(step)
		} else {
			step()
		}
		env.Step = s
		require.NoError(t, c.Handle(torchenv.TrainStepEnd, env))
	}
	end := settle()
	var lo, hi float64 = math.Inf(1), 0
	for _, r := range readJSONL(t, filepath.Join(env.RunDir, "system", "system_stats.jsonl")) {
		v := r["torch_live_bytes"].(float64)
		lo, hi = min(lo, v), max(hi, v)
	}
	t.Logf("%d steps: torch_live_bytes %.1f..%.1f MiB, %d bytes before the loop and %d after; torch_pressure_bytes %.1f MiB",
		steps, lo/(1<<20), hi/(1<<20), base, end, float64(c.Read(nil).TorchPressure)/(1<<20))
	require.Less(t, hi-float64(base), float64(8*bridge.DefaultGCThreshold), "bounded during the loop")
	require.Equal(t, base, end, "after the loop only what was live before is counted")
	runtime.KeepAlive(model)
	runtime.KeepAlive(opt)
	runtime.KeepAlive(x)
	runtime.KeepAlive(y)
}

func TestHistogramAndProcParsing(t *testing.T) {
	h := &metrics.Float64Histogram{Counts: []uint64{0, 2, 0, 1, 1}, Buckets: []float64{math.Inf(-1), 0, 1e-4, 2e-4, 1e-3, math.Inf(1)}}
	n, sum, max := histogram(h)
	require.EqualValues(t, 4, n)
	require.InDelta(t, 2*0.5e-4+1.5e-4*0+0.6e-3+1e-3, sum, 1e-12)
	require.Equal(t, 1e-3, max, "the +Inf bucket counts at its lower bound")
	require.EqualValues(t, 190312*1024, kB([]byte("\t  190312 kB")))
	require.EqualValues(t, -1, kB([]byte("")))
	require.EqualValues(t, 12, kB([]byte("12")))
	var s Snapshot
	require.NoError(t, parseStatus([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t9\nnot a field\n"), &s))
	require.Equal(t, Snapshot{RSS: 1 << 20, RSSPeak: 2 << 20, Threads: 9}, s)
	require.ErrorContains(t, parseStatus([]byte("Name:\tx"), &Snapshot{RSS: -1}), "no VmRSS line")
}

func TestParamsAndWriteErrors(t *testing.T) {
	c, err := New("sys", nil)
	require.NoError(t, err)
	require.Equal(t, DefaultParams(), c.Params())
	for _, in := range []map[string]any{{"every": 0}, {"event": "nope"}, {"log": 2}, {"out_path": ""}, {"interval": 1}} {
		err := c.SetParams(in)
		var pe *params.Error
		require.ErrorAs(t, err, &pe, "%v", in)
		for k := range in {
			require.Equal(t, k, pe.Key)
		}
		require.Equal(t, DefaultParams(), c.Params())
	}
	var logs []string
	env := &torchenv.Env{RunDir: t.TempDir(), Log: func(s string) { logs = append(logs, s) }}
	require.NoError(t, os.MkdirAll(filepath.Join(env.RunDir, "system", "system_stats.jsonl"), 0o700))
	require.NoError(t, c.SetParams(map[string]any{"every": 1, "log": false}))
	for s := int64(0); s < 3; s++ {
		env.Step = s
		require.NoError(t, c.Handle(torchenv.TrainStepEnd, env))
	}
	require.EqualValues(t, 3, c.Writer().Dropped())
	require.Greater(t, c.Last().RSS, int64(0), "the snapshot is still taken")
	require.Len(t, logs, 1)
	require.Contains(t, logs[0], "system_stats sys: cannot write system/system_stats.jsonl")
}

func TestThroughController(t *testing.T) {
	dir := t.TempDir()
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	require.NoError(t, os.WriteFile(cmds, []byte(strings.Join([]string{
		`{"module":"cb","op":"load","id":"sys","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.system_stats","symbol":"SystemStatsCallback"},"init":{"every":1}}`,
		`{"module":"cb","op":"load","id":"sys2","target":{"kind":"module","path":"hotcb.modules.cb.callbacks","symbol":"SystemStatsCallback"},"init":{"every":2,"out_path":"system/b.jsonl"}}`,
		`{"module":"cb","op":"set_params","id":"sys","params":{"every":3}}`,
		""}, "\n")), 0o600))
	var logs []string
	ctl, err := controller.New(controller.Options{CommandsPath: cmds, PollEveryStep: true, Log: func(s string) { logs = append(logs, s) }})
	require.NoError(t, err)
	model := models.MLP(4, 8, 3)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	env := &torchenv.Env{RunDir: dir, Model: model, Optimizer: opt}
	x, y := bridge.Randn(bridge.Shape{8, 4}), bridge.RandInt(0, 3, bridge.Shape{8})
	for s := int64(0); s < 6; s++ {
		env.Step = s
		opt.ZeroGrad()
		env.Loss = bridge.CrossEntropy(model.Forward(x), y)
		env.Loss.Backward()
		opt.Step()
		ctl.Apply(env, torchenv.TrainStepEnd)
	}
	require.NoError(t, ctl.Close())
	require.NotContains(t, strings.Join(logs, "\n"), "failed")
	a := readJSONL(t, filepath.Join(dir, "system", "system_stats.jsonl"))
	require.Len(t, a, 2, "every=3: steps 0 and 3")
	require.Greater(t, a[1]["rss_bytes"], 0.0)
	require.Greater(t, a[1]["goroutines"], 0.0)
	require.Len(t, readJSONL(t, filepath.Join(dir, "system", "b.jsonl")), 3)
}

func BenchmarkSystemStatsIdle(b *testing.B) {
	c, _ := New("sys", nil)
	env := &torchenv.Env{RunDir: b.TempDir(), Step: 1}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Handle(torchenv.TrainStepEnd, env)
	}
}

func BenchmarkSystemStatsReport(b *testing.B) {
	c, _ := New("sys", map[string]any{"every": 1, "log": false})
	defer c.Close()
	env := &torchenv.Env{RunDir: b.TempDir()}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Handle(torchenv.TrainStepEnd, env)
		env.Step++
	}
}
