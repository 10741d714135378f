package kernel

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/metrics"
	"github.com/hotcb/hotcb/torchenv"
)

// fakeDevice stands for a GPU: a copy started at step s is done once the device has reached
// done; sync reaches everything.
type fakeDevice struct {
	done    int64 // steps the device has finished: reads begun before are ready
	begun   int64
	syncs   int
	pending int
}

type fakeRead struct {
	d    *fakeDevice
	at   int64
	v    float64
	done bool
}

func (d *fakeDevice) begin(t *bridge.Tensor) (pendingRead, error) {
	d.begun++
	d.pending++
	return &fakeRead{d: d, at: d.begun, v: t.Item()}, nil
}

func (d *fakeDevice) sync() error {
	d.syncs++
	d.done = d.begun
	return nil
}

func (r *fakeRead) ready() (bool, error)    { return r.at <= r.d.done, nil }
func (r *fakeRead) value() (float64, error) { return r.v, nil }
func (r *fakeRead) release()                { r.d.pending-- }

func TestDeviceLossWaitsForTheDeviceInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), metrics.File)
	w, err := metrics.Open(path, metrics.Options{FlushInterval: time.Hour, FlushLines: 1 << 30})
	require.NoError(t, err)
	dev := &fakeDevice{}
	s := &stream{w: w, k: &Kernel{optimizers: &optModule{opts: map[string]*optim.Optimizer{}}}, world: 1, dev: dev,
		deviceOf: func(*bridge.Tensor) bridge.Device { return bridge.CUDA(0) }}
	s.set = s.cur.Set
	env := &torchenv.Env{Phase: "train"}
	step := func(i int64) {
		env.Step = i
		env.Loss = bridge.Scalar(float64(i))
		env.Report("x", float64(i))
		s.observe(env, []string{torchenv.TrainStepEnd})
	}
	for i := range int64(4) {
		step(i)
	}
	// Steps 0 to 2 are finished, and wait for the device; 3 is open.
	require.Len(t, s.queue, 3)
	require.Zero(t, w.Stats().Lines, "nothing written before the device has the loss")
	require.Zero(t, dev.syncs, "the loop never waited")

	dev.done = 2 // the device finished the copies of steps 0 and 1
	step(4)
	require.Equal(t, int64(2), w.Stats().Lines)
	require.Len(t, s.queue, 2)

	for i := int64(5); i < 5+maxQueuedForDevice+2; i++ {
		step(i)
	}
	require.Equal(t, 1, dev.syncs, "the kernel waits for the device only when too many lines wait")

	require.NoError(t, s.close())
	require.Zero(t, dev.pending, "every read released")
	recs, err := metrics.Read(path, -1)
	require.NoError(t, err)
	require.Len(t, recs, 5+maxQueuedForDevice+2)
	for i, r := range recs {
		require.Equal(t, int64(i), r.Step, "in step order")
		require.Equal(t, float64(i), r.Metrics["loss"], "step %d's own loss", i)
		require.Equal(t, float64(i), r.Metrics["x"])
	}
}
