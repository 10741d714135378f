package gpucheck

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	_ "github.com/hotcb/hotcb/callbacks/featviz"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// What this process runs on; never skipped. With GPUCHECK_REQUIRE_CUDA=1 (scripts/gpu-check.sh
// on a GPU machine) a shim without CUDA, or no device, fails here, naming the shim that loaded.
func TestEnvironment(t *testing.T) {
	dev := bridge.CPU
	fields := map[string]any{
		"libtorch":        bridge.Version(),
		"built_with_cuda": bridge.BuiltWithCUDA(),
		"cuda_available":  bridge.CUDAIsAvailable(),
		"device_count":    bridge.CUDADeviceCount(),
		"shim":            loadedShim(),
		"go":              runtime.Version(),
		"threads":         bridge.NumThreads(),
	}
	if bridge.CUDAIsAvailable() {
		dev = bridge.CUDA(0)
		x := bridge.Ones(bridge.Shape{1 << 20}, dev) // 4 MiB, so the allocator reports something
		require.NoError(t, bridge.Synchronize(dev))
		alloc, reserved, err := bridge.CUDAMemory(dev)
		require.NoError(t, err)
		fields["cuda_allocated_bytes"], fields["cuda_reserved_bytes"] = alloc, reserved
		require.GreaterOrEqual(t, alloc, int64(4<<20))
		require.NoError(t, x.Free())
	}
	for _, line := range strings.Split(bridge.Config(), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "- CUDA Runtime") || strings.HasPrefix(l, "- CuDNN") ||
			strings.HasPrefix(l, "- NVCC architecture flags") {
			k, v, _ := strings.Cut(strings.TrimPrefix(l, "- "), ":")
			fields["config "+strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	record(t, fields)
	if os.Getenv("GPUCHECK_REQUIRE_CUDA") == "1" {
		require.True(t, bridge.BuiltWithCUDA(), "the shim this process loaded (%s) was built without CUDA: put the CUDA shim's directory first in LD_LIBRARY_PATH", loadedShim())
		require.True(t, bridge.CUDAIsAvailable(), "the CUDA shim (%s) sees no device: check nvidia-smi and CUDA_VISIBLE_DEVICES", loadedShim())
	}
}

// Tensors created on and moved to the device: values, dtypes, ops against the CPU, autograd,
// a module, and a device mismatch reported as an error, not a crash.
func TestCUDATensors(t *testing.T) {
	dev := device(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	bridge.ManualSeed(1)

	// round trips are exact, in several dtypes
	x := bridge.Randn(bridge.Shape{64, 128})
	xd := x.To(dev)
	require.Equal(t, dev, xd.Device())
	require.Equal(t, x.Float32s(), xd.To(bridge.CPU).Float32s())
	require.Equal(t, x.Float32s(), xd.Float32s(), "Float32s copies from the device")
	d64 := bridge.FromSlice([]float64{1.5, -2.25, math.Pi}).To(dev)
	require.Equal(t, bridge.Float64, d64.DType())
	require.Equal(t, []float64{1.5, -2.25, math.Pi}, d64.Float64s())
	ints := bridge.Arange(0, 10, 1, bridge.Int64, dev)
	require.Equal(t, dev, ints.Device())
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ints.Int64s())
	require.Equal(t, 45.0, ints.Sum().Item())
	z := bridge.Zeros(bridge.Shape{3, 3}, bridge.Float64, dev)
	require.Equal(t, dev, z.Device())
	require.Equal(t, bridge.Float64, z.DType())
	nb := x.ToNonBlocking(dev)
	require.NoError(t, bridge.Synchronize(dev))
	require.Equal(t, x.Float32s(), nb.Float32s())

	// ops on the device against the same ops on the CPU
	a, b := bridge.Randn(bridge.Shape{96, 64}), bridge.Randn(bridge.Shape{64, 80})
	ad, bd := a.To(dev), b.To(dev)
	diffs := map[string]float64{}
	cmp := func(name string, cpu, gpu *bridge.Tensor, tol float64) {
		require.Equal(t, dev, gpu.Device(), name)
		require.Equal(t, cpu.Shape(), gpu.Shape(), name)
		d := maxRelDiff(gpu.To(bridge.Float32).Float32s(), cpu.To(bridge.Float32).Float32s())
		diffs[name] = d
		require.LessOrEqual(t, d, tol, "%s: device and CPU results differ by %g (relative)", name, d)
	}
	cmp("matmul", a.MatMul(b), ad.MatMul(bd), 1e-3)
	cmp("relu_exp", a.Relu().MulScalar(0.5).Exp(), ad.Relu().MulScalar(0.5).Exp(), 1e-5)
	cmp("softmax", a.Softmax(1), ad.Softmax(1), 1e-5)
	cmp("mean_dims", a.MeanDims([]int64{0}, false), ad.MeanDims([]int64{0}, false), 1e-5)
	img, w := bridge.Randn(bridge.Shape{4, 3, 16, 16}), bridge.Randn(bridge.Shape{8, 3, 3, 3})
	// cuDNN may use TF32 for convolutions (libtorch's default): about 1e-3 relative
	cmp("conv2d", bridge.Conv2d(img, w, nil, bridge.Conv2dOptions{Padding: [2]int64{1, 1}}),
		bridge.Conv2d(img.To(dev), w.To(dev), nil, bridge.Conv2dOptions{Padding: [2]int64{1, 1}}), 1e-2)
	y := bridge.RandInt(0, 80, bridge.Shape{96})
	cmp("cross_entropy", bridge.CrossEntropy(a.MatMul(b), y), bridge.CrossEntropy(ad.MatMul(bd), y.To(dev)), 1e-3)

	// autograd on the device
	wc := b.Detach().SetRequiresGrad(true)
	a.MatMul(wc).PowScalar(2).Mean().Backward()
	wd := b.To(dev).SetRequiresGrad(true)
	ad.MatMul(wd).PowScalar(2).Mean().Backward()
	require.NotNil(t, wd.Grad())
	cmp("grad", wc.Grad(), wd.Grad(), 1e-3)

	// a module on the device
	net := models.NewSmallCNN(1, 6)
	nn.To(net, dev)
	for _, p := range nn.NamedParameters(net) {
		require.Equal(t, dev, p.Tensor.Device(), p.Name)
	}
	out := net.Forward(bridge.Randn(bridge.Shape{8, 1, 28, 28}, dev))
	require.Equal(t, dev, out.Device())
	require.Equal(t, bridge.Shape{8, 6}, out.Shape())

	// mixing devices is libtorch's error, returned through Try; the process goes on
	if dev.IsCUDA() {
		err := bridge.Try(func() { a.Add(ad) })
		require.Error(t, err)
		require.Contains(t, strings.ToLower(err.Error()), "device")
		diffs["mixed_device_error"] = 1
		_, _, err = bridge.CUDAMemory(dev)
		require.NoError(t, err)
	}
	require.NoError(t, bridge.Synchronize(dev))
	fields := map[string]any{"device": dev.String()}
	for k, v := range diffs {
		fields["max_rel_diff_"+k] = v
	}
	record(t, fields)
}

// A short training through trainer.Run — the code behind `hotcb train --device cuda` — with its
// default instruments (timing with CUDA events, feature maps) on.
func TestTrainOnCUDA(t *testing.T) {
	dev := device(t)
	steps := int64(300)
	if v, err := strconv.ParseInt(os.Getenv("GPUCHECK_STEPS"), 10, 64); err == nil && v > 0 {
		steps = v
	}
	dir := filepath.Join(t.TempDir(), "run")
	var out bytes.Buffer
	sum, err := trainer.Run(context.Background(), trainer.Options{Dir: dir, Device: dev, Steps: steps, Seed: 1,
		TrainN: 4000, TestN: 1000, Progress: -1, Out: &out,
		Kernel: kernel.Options{Controller: controller.Options{AllowAnyOwner: true}}})
	require.NoError(t, err, out.String())
	t.Log(out.String())
	require.Equal(t, steps, sum.Steps)
	require.Empty(t, sum.Stopped)
	// a smoke check, not a benchmark: 300 steps reach ≈70% on the CPU; chance is 1/6
	require.Greater(t, sum.TestAcc, 0.4, "test accuracy after %d steps of the SmallCNN on the shapes", steps)
	frames, err := filepath.Glob(filepath.Join(dir, "featviz", "*.png"))
	require.NoError(t, err)
	require.NotEmpty(t, frames, "the default feat_viz drew feature maps")
	_, err = os.Stat(sum.FeatViz)
	require.NoError(t, err)

	// the timing instrument's last report: on CUDA it read device times from CUDA events
	report := lastJSONL(t, filepath.Join(sum.Timing, "timing.jsonl"))
	fields := map[string]any{"device": dev.String(), "steps": sum.Steps, "test_acc": sum.TestAcc,
		"elapsed_s": sum.Elapsed.Seconds(), "steps_per_s_overall": float64(sum.Steps) / sum.Elapsed.Seconds(),
		"featviz_frames": len(frames)}
	fields["timing_device_timing"] = report["device_timing"]
	fields["timing_steps_per_s"] = report["steps_per_s"]
	if s, ok := report["step_ms"].(map[string]any); ok {
		fields["timing_host_step_ms_p50"] = s["p50"]
	}
	if s, ok := report["device_step_ms"].(map[string]any); ok {
		fields["timing_device_step_ms_p50"] = s["p50"]
	}
	if dev.IsCUDA() {
		require.Equal(t, true, report["device_timing"], "timing used CUDA events: %v", report)
		alloc, reserved, err := bridge.CUDAMemory(dev)
		require.NoError(t, err)
		fields["cuda_allocated_bytes_after"], fields["cuda_reserved_bytes_after"] = alloc, reserved
	}
	record(t, fields)
}

func lastJSONL(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &m))
	return m
}

// CUDA events time device work without blocking the host; they must agree with (and never
// exceed) the wall time of the same work measured with Synchronize, while the host's enqueue
// time alone says little about it.
func TestEventTimingVsSync(t *testing.T) {
	dev := needCUDA(t, "CUDA-event timing")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const n, iters, rounds = 2048, 50, 5
	a, b := bridge.Randn(bridge.Shape{n, n}, dev), bridge.Randn(bridge.Shape{n, n}, dev)
	for i := 0; i < 5; i++ { // warm-up: cuBLAS handles, workspace, clocks
		_ = a.MatMul(b).Free()
	}
	require.NoError(t, bridge.Synchronize(dev))
	start, err := bridge.NewEvent()
	require.NoError(t, err)
	defer start.Close()
	end, err := bridge.NewEvent()
	require.NoError(t, err)
	defer end.Close()

	var eventMs, wallMs, enqueueMs []float64
	doneBeforeSync := 0
	for r := 0; r < rounds; r++ {
		t0 := time.Now()
		require.NoError(t, start.Record(dev))
		for i := 0; i < iters; i++ {
			_ = a.MatMul(b).Free() // freed at once: the caching allocator reuses it in stream order
		}
		require.NoError(t, end.Record(dev))
		enq := time.Since(t0)
		if done, err := end.Done(); err == nil && done {
			doneBeforeSync++
		}
		require.NoError(t, bridge.Synchronize(dev))
		wall := time.Since(t0)
		ms, err := start.ElapsedMs(end)
		require.NoError(t, err)
		eventMs = append(eventMs, float64(ms))
		wallMs = append(wallMs, float64(wall.Microseconds())/1e3)
		enqueueMs = append(enqueueMs, float64(enq.Microseconds())/1e3)
		require.Greater(t, ms, float32(0))
		// the events lie inside the synchronised window (0.1 ms of slack for clock granularity)
		require.LessOrEqual(t, float64(ms), wallMs[r]+0.1, "round %d: event time %.3f ms > synchronised wall time %.3f ms", r, ms, wallMs[r])
	}
	ev, wall := median(eventMs), median(wallMs)
	flops := 2.0 * n * n * n * iters
	fields := map[string]any{"n": n, "iters": iters, "rounds": rounds,
		"event_ms_median": ev, "sync_wall_ms_median": wall, "enqueue_ms_median": median(enqueueMs),
		"event_over_wall": ev / wall, "event_tflops": flops / (ev / 1e3) / 1e12, "wall_tflops": flops / (wall / 1e3) / 1e12,
		"event_ms": eventMs, "sync_wall_ms": wallMs, "enqueue_ms": enqueueMs, "done_before_sync_rounds": doneBeforeSync}
	record(t, fields)
	// the device did almost all of the synchronised time: events and wall clock agree
	require.Greater(t, ev/wall, 0.5, "event %.3f ms vs wall %.3f ms", ev, wall)
}

// The compiled FeatureViz (hotcb's feat_viz) and the go_file example under a HotController on a
// CUDA model: frames on the capture steps, and the .npy holds exactly the device's activations.
func TestFeatVizOnCUDA(t *testing.T) {
	dev := device(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	ctl, err := controller.New(controller.Options{RunDir: dir, SourcesDir: filepath.Join(dir, "hotcb.sources"), AllowAnyOwner: true,
		Log: func(string) {}})
	require.NoError(t, err)
	closed := false
	defer func() {
		if !closed {
			ctl.Close()
		}
	}()
	require.NoError(t, ctl.Submit(ops.Op{Op: "load", ID: "fv", Target: &ops.CallbackTarget{Kind: ops.KindModule,
		Path: "hotcb.modules.cb.callbacks.feat_viz", Symbol: "FeatureVizCallback"},
		Init: map[string]any{"every": 2, "npy": true, "layers": []any{"features.0", "features.4"}}}))
	example := filepath.Join(repoRoot(), "examples", "callbacks", "feat_viz.go")
	require.NoError(t, ctl.Submit(ops.Op{Op: "load", ID: "feat_viz", Target: &ops.CallbackTarget{Kind: ops.KindGoFile,
		Path: example, Symbol: "FeatureVizCallback"}, Init: map[string]any{"every": 2}}))

	bridge.ManualSeed(2)
	model := models.NewSmallCNN(1, 6)
	nn.To(model, dev)
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), optim.DefaultAdam())
	require.NoError(t, err)
	var lines []string
	env := &torchenv.Env{Framework: "hotcb-go", Model: model, Optimizer: opt, Device: dev, RunDir: dir, Phase: "train",
		Log: func(s string) { lines = append(lines, s) }}
	ref := map[int64][]float32{} // features.0's first sample on the host, by step
	h, err := nn.RegisterForwardHook(model, "features.0", func(name string, m nn.Module, in, out *bridge.Tensor) {
		ref[env.Step] = out.Narrow(0, 0, 1).Float32s()
	})
	require.NoError(t, err)
	defer h.Remove()

	const steps = 5
	t0 := time.Now()
	for step := int64(0); step < steps; step++ {
		env.Step = step
		x, y := bridge.Randn(bridge.Shape{8, 1, 28, 28}, dev), bridge.RandInt(0, 6, bridge.Shape{8}, dev)
		ctl.Apply(env, torchenv.TrainStepStart)
		env.Outputs = model.Forward(x)
		env.Loss = bridge.CrossEntropy(env.Outputs, y)
		ctl.Apply(env, torchenv.ForwardEnd)
		opt.ZeroGrad()
		env.Loss.Backward()
		ctl.Apply(env, torchenv.BackwardEnd)
		opt.Step()
		ctl.Apply(env, torchenv.OptimizerStepEnd, torchenv.TrainStepEnd)
	}
	loopMs := float64(time.Since(t0).Microseconds()) / 1e3
	ctl.RequestStatus()
	ctl.Apply(env, torchenv.EpochEnd) // a safe point that takes the status snapshot
	st := ctl.Status()
	require.NotNil(t, st)
	require.Len(t, st.Callbacks, 2)
	for _, cb := range st.Callbacks {
		require.Empty(t, cb.LastError, cb.ID)
		require.True(t, cb.Loaded && cb.Enabled, "%s: %+v", cb.ID, cb)
	}
	closed = true
	require.NoError(t, ctl.Close()) // waits for FeatureViz's writer

	glob := func(pattern string) []string {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		require.NoError(t, err)
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		sort.Strings(m)
		return m
	}
	require.Equal(t, []string{"step00000000_features.0.png", "step00000000_features.4.png", "step00000002_features.0.png",
		"step00000002_features.4.png", "step00000004_features.0.png", "step00000004_features.4.png"}, glob("featviz/*.png"))
	require.Equal(t, []string{"step00000000_features.0.png", "step00000002_features.0.png", "step00000004_features.0.png"},
		glob("featviz_go/*.png"))
	require.FileExists(t, filepath.Join(dir, "featviz", "index.html"))
	for _, step := range []int64{0, 2, 4} {
		got := readNpyFloat32(t, filepath.Join(dir, "featviz", stepName(step)+"_features.0.npy"))
		require.Equal(t, ref[step], got, "step %d: the .npy is the device's activation of the first sample", step)
	}
	var drawn int
	for _, l := range lines {
		if strings.HasPrefix(l, "[feat_viz] step ") {
			drawn++
		}
	}
	require.Equal(t, 3, drawn, "%q", lines)
	record(t, map[string]any{"device": dev.String(), "steps": steps, "loop_ms": loopMs,
		"featviz_frames": len(glob("featviz/*.png")), "featviz_go_frames": len(glob("featviz_go/*.png"))})
}

func stepName(step int64) string { return fmt.Sprintf("step%08d", step) }

// readNpyFloat32 reads a little-endian float32 .npy (version 1 or 2 header).
func readNpyFloat32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, len(b) > 10 && string(b[1:6]) == "NUMPY", "%s is not a .npy file", path)
	var hlen, off int
	if b[6] == 1 {
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	} else {
		hlen, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	}
	header := string(b[off : off+hlen])
	require.Contains(t, header, "'descr': '<f4'")
	data := b[off+hlen:]
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}
