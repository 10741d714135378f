package timing

import (
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/torchenv"
)

// fakeDevice is a device clock: marks complete when the test moves now past them. Reading the
// time of a mark the device has not reached is an error, as it is for CUDA events.
type fakeDevice struct {
	now      float64 // ms the device has completed
	queueAt  float64 // ms at which the work enqueued so far completes
	records  int
	syncs    int
	dones    int
	released int
	failNext error
}

type fakeEvent struct {
	d  *fakeDevice
	at float64
}

func (d *fakeDevice) Record() (deviceEvent, error) {
	if err := d.failNext; err != nil {
		d.failNext = nil
		return nil, err
	}
	d.records++
	return &fakeEvent{d: d, at: d.queueAt}, nil
}

func (d *fakeDevice) Synchronize() error {
	d.syncs++
	d.now = max(d.now, d.queueAt)
	return nil
}

func (d *fakeDevice) Release(deviceEvent) { d.released++ }

func (e *fakeEvent) Done() (bool, error) {
	e.d.dones++
	return e.at <= e.d.now, nil
}

func (e *fakeEvent) ElapsedMs(end deviceEvent) (float64, error) {
	f := end.(*fakeEvent)
	if e.at > e.d.now || f.at > e.d.now {
		return 0, fmt.Errorf("device not ready: mark at %v ms, device at %v ms", max(e.at, f.at), e.d.now)
	}
	return f.at - e.at, nil
}

// legacyPhases are the events timed before train_step_start was among the defaults: the device
// tests time these, so the close → forward_end interval holds data/other and the forward.
var legacyPhases = []string{torchenv.ForwardEnd, torchenv.BackwardEnd, torchenv.OptimizerStepEnd, torchenv.TrainStepEnd}

// dataForward is what the interval from train_step_end to forward_end is called then.
const dataForward = DataOther + "+" + Forward

// deviceRig is a rig on "cuda:0" with a fake device, timing legacyPhases.
func deviceRig(t *testing.T, init map[string]any) (*rig, *fakeDevice) {
	fd := &fakeDevice{}
	r := &rig{t: t}
	init = maps.Clone(init)
	if init == nil {
		init = map[string]any{}
	}
	init["events"] = legacyPhases
	tm, err := New("timing", init)
	require.NoError(t, err)
	tm.now = func() int64 { return r.clock }
	tm.newSource = func(d bridge.Device) (eventSource, error) {
		require.Equal(t, bridge.CUDA(0), d)
		return fd, nil
	}
	r.tm = tm
	r.env = &torchenv.Env{RunDir: t.TempDir(), Device: bridge.CUDA(0), Log: func(s string) { r.lines = append(r.lines, s) }}
	require.NoError(t, tm.OnAttach(r.env))
	return r, fd
}

// gpuStep enqueues device work (ms per event: data+forward, backward, optimizer, end) as the
// host dispatches each event 1 ms apart; the device does not move unless the test moves it.
func (r *rig) gpuStep(fd *fakeDevice, work ...float64) {
	for i, ev := range legacyPhases {
		r.clock += 1e6
		fd.queueAt += work[i]
		require.NoError(r.t, r.tm.Handle(ev, r.env))
	}
	r.env.Step++
}

func TestDeviceTimesAreReadWhenDoneWithoutBlocking(t *testing.T) {
	r, fd := deviceRig(t, map[string]any{"every": 1000})
	for range 10 {
		r.gpuStep(fd, 4, 9, 2, 0) // the device runs behind: nothing has completed
	}
	require.Zero(t, fd.syncs, "the hot path never synchronises")
	require.Equal(t, 40, fd.records)
	require.Positive(t, fd.dones, "completion is asked with Done")
	require.Equal(t, 40, r.tm.devTimes.n, "all marks pending")
	snap := r.tm.Snapshot()
	require.True(t, snap.DeviceTiming)
	require.Empty(t, snap.Note)
	require.Zero(t, snap.DeviceStepMs.N)
	require.InDelta(t, 1, snap.Intervals[Backward].HostMs.P50, 1e-9, "host time is there at once")

	// The device catches up with the first 6 steps; the next event reads what completed.
	fd.now = 6 * 15
	r.gpuStep(fd, 4, 9, 2, 0)
	require.Zero(t, fd.syncs)
	require.Equal(t, 44-16, r.tm.devTimes.n, "4 events each read up to 4 completed marks")
	for range 5 { // the device keeps up from now on
		fd.now = fd.queueAt
		r.gpuStep(fd, 4, 9, 2, 0)
	}
	require.Zero(t, fd.syncs)
	snap = r.tm.Snapshot()
	require.Nil(t, r.tm.devTimes.prev.(*fakeEvent).d.failNext)
	dev := func(name string) Stats { return *snap.Intervals[name].DeviceMs }
	require.InDelta(t, 9, dev(Backward).P50, 1e-9)
	require.InDelta(t, 9, dev(Backward).Max, 1e-9)
	require.InDelta(t, 2, dev(Optimizer).P95, 1e-9)
	require.InDelta(t, 0, dev("optimizer_step_end->train_step_end").Mean, 1e-9)
	require.InDelta(t, 4, dev(dataForward).P50, 1e-9)
	require.InDelta(t, 15, snap.DeviceStepMs.P50, 1e-9)
	require.Positive(t, fd.released, "events are reused")

	// fit_end waits for the rest (the run is over) and reports everything.
	require.NoError(t, r.tm.Handle(torchenv.FitEnd, r.env))
	require.Equal(t, 1, fd.syncs)
	require.Zero(t, r.tm.devTimes.n)
	rec := r.records()[0]
	require.Equal(t, 15, rec.DeviceStepMs.N, "16 steps closed, the first only starts")
	require.Equal(t, 16, rec.Intervals[Backward].DeviceMs.N)
	require.Contains(t, r.lines[0], "(device p50 15.00ms")
	require.Contains(t, r.lines[0], "backward 1.00/9.00")
	require.NotContains(t, r.lines[0], "host only")
}

func TestSyncWaitsAtEachEvent(t *testing.T) {
	r, fd := deviceRig(t, map[string]any{"every": 1000, "sync": true})
	for range 5 {
		r.gpuStep(fd, 4, 9, 2, 0)
	}
	require.Equal(t, 20, fd.syncs, "one synchronize per timed event")
	require.LessOrEqual(t, r.tm.devTimes.n, 1, "with sync every mark completes at once")
	snap := r.tm.Snapshot()
	require.True(t, snap.Sync)
	require.InDelta(t, 9, snap.Intervals[Backward].DeviceMs.P50, 1e-9)
}

func TestDeviceErrorsFallBackToHostOnly(t *testing.T) {
	r, fd := deviceRig(t, map[string]any{"every": 1000})
	r.gpuStep(fd, 1, 1, 1, 1)
	fd.failNext = errors.New("cuda event record failed")
	r.gpuStep(fd, 1, 1, 1, 1)
	r.gpuStep(fd, 1, 1, 1, 1)
	snap := r.tm.Snapshot()
	require.False(t, snap.DeviceTiming)
	require.Contains(t, snap.Note, "host only: device timing stopped on cuda:0 (cuda event record failed)")
	require.Equal(t, 2, snap.StepMs.N, "host timing goes on")

	// a source that cannot be made at all
	tm, err := New("timing", nil)
	require.NoError(t, err)
	tm.newSource = func(bridge.Device) (eventSource, error) { return nil, errors.New("no CUDA in this shim") }
	tm.stdout = &discard{}
	env := &torchenv.Env{RunDir: t.TempDir(), Device: bridge.CUDA(0)}
	require.NoError(t, tm.Handle(torchenv.ForwardEnd, env))
	require.Equal(t, "host only: device timing unavailable on cuda:0 (no CUDA in this shim)", tm.Snapshot().Note)
}

func TestRealCUDASourceOnThisShim(t *testing.T) {
	if bridge.BuiltWithCUDA() && bridge.CUDAIsAvailable() {
		src, err := newCUDASource(bridge.CUDA(0))
		require.NoError(t, err)
		ev, err := src.Record()
		require.NoError(t, err)
		require.NoError(t, src.Synchronize())
		done, err := ev.Done()
		require.NoError(t, err)
		require.True(t, done)
		return
	}
	_, err := newCUDASource(bridge.CUDA(0))
	require.Error(t, err, "a CPU-only shim cannot make CUDA events")
	tm, err := New("timing", nil)
	require.NoError(t, err)
	tm.stdout = &discard{}
	env := &torchenv.Env{RunDir: t.TempDir(), Device: bridge.CUDA(0)}
	require.NoError(t, tm.Handle(torchenv.ForwardEnd, env))
	require.Contains(t, tm.Snapshot().Note, "host only: device timing unavailable on cuda:0")
}

func TestPendingMarksAreBounded(t *testing.T) {
	r, fd := deviceRig(t, map[string]any{"every": 100000})
	steps := maxPending/4 + 10
	for range steps { // a device that never completes anything
		r.gpuStep(fd, 4, 9, 2, 0)
	}
	d := r.tm.devTimes
	require.Equal(t, maxPending, d.n)
	require.EqualValues(t, 40, d.dropped)
	// The device catches up: the marks after the gap must not produce an interval across it.
	fd.now = fd.queueAt
	for range 3 {
		r.gpuStep(fd, 4, 9, 2, 0)
		fd.now = fd.queueAt
	}
	require.NoError(t, r.tm.Handle(torchenv.FitEnd, r.env))
	snap := r.tm.Snapshot()
	for _, name := range snap.Order {
		s := snap.Intervals[name].DeviceMs
		require.LessOrEqual(t, s.Max, 9.0, "%s: no interval spans the skipped marks", name)
	}
	require.InDelta(t, 15, snap.DeviceStepMs.Max, 1e-9)
	require.EqualValues(t, 41, snap.DeviceDropped, "the first event after catching up still found the queue full")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
