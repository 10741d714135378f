package kernel_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/metrics"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// reporter reports the step's number at train_step_end, as timing or grad_stats do.
type reporter struct{ id string }

func (r reporter) ID() string { return r.id }
func (r reporter) Handle(ev string, env *torchenv.Env) error {
	if ev == torchenv.TrainStepEnd {
		env.Report("cb/step_x2", float64(2*env.Step))
	}
	return nil
}
func (r reporter) SetParams(map[string]any) error { return nil }

func metricsKernel(t *testing.T, dir string, mo kernel.MetricsOptions) *kernel.Kernel {
	reg := callback.NewRegistry()
	reg.Register("test/reporter", "Reporter", func(id string, _ map[string]any) (callback.HotCallback, error) {
		return reporter{id: id}, nil
	})
	k, err := kernel.New(dir, kernel.Options{Metrics: mo,
		Controller: controller.Options{Registry: reg, PollEveryStep: true, AllowAnyOwner: true}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hotcb.commands.jsonl"),
		[]byte(`{"module":"cb","op":"load","id":"rep","target":{"kind":"module","path":"test/reporter","symbol":"Reporter"}}`+"\n"), 0o600))
	return k
}

// loop runs steps [from, to) of a bare loop: the phase events, the loss in env.Loss, a number the
// loop reports itself, and validation at the end.
func loop(t *testing.T, k *kernel.Kernel, env *torchenv.Env, from, to int64) {
	for s := from; s < to; s++ {
		env.Step, env.Epoch, env.Phase = s, float64(s)/4, "train"
		env.Inputs = bridge.Zeros(bridge.Shape{8, 3})
		k.Apply(env, torchenv.TrainStepStart)
		env.Loss = bridge.Scalar(1 / float64(s+1))
		k.Apply(env, torchenv.ForwardEnd)
		env.Report("loop/custom", float64(s))
		k.Apply(env, torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd)
		env.Report("loop/after", float64(s)) // after the step's last safe point: still its line
		time.Sleep(time.Millisecond)         // a throughput to measure
	}
	env.Phase = "val"
	env.Report("val_loss", 0.75)
	k.Apply(env, torchenv.EpochEnd)
}

func TestMetricsStreamOfALoop(t *testing.T) {
	dir := t.TempDir()
	k := metricsKernel(t, dir, kernel.MetricsOptions{})
	w := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	opt, err := optim.NewSGD([]optim.Group{{Params: []*bridge.Tensor{w}},
		{Params: []*bridge.Tensor{bridge.Ones(bridge.Shape{1}).SetRequiresGrad(true)}, Hyper: map[string]any{"lr": 0.01}}},
		optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	env := &torchenv.Env{Optimizer: opt}
	k.Apply(env, torchenv.FitStart)
	k.Apply(&torchenv.Env{Step: 99}) // no event: a status snapshot, no step's
	loop(t, k, env, 0, 5)
	require.NoError(t, k.Close())

	raw, err := os.ReadFile(filepath.Join(dir, metrics.File))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	require.Len(t, lines, 5, "one line per step")
	require.Regexp(t, `^\{"step": 0, "epoch": 0, "wall_time": \d+\.\d+, "metrics": \{"loop/custom": 0\.0, "cb/step_x2": 0\.0, "lr": 0\.1, "lr/1": 0\.01, "loss": 1\.0, "loop/after": 0\.0\}\}$`, lines[0])
	require.Regexp(t, `^\{"step": 4, "epoch": 1, "wall_time": \d+\.\d+, "metrics": \{"loop/custom": 4\.0, "cb/step_x2": 8\.0, "lr": 0\.1, "lr/1": 0\.01, "loss": 0\.2\d*, "loop/after": 4\.0, "val_loss": 0\.75, "steps_per_s": \d+\.\d+(e[-+]\d+)?, "samples_per_s": \d+\.\d+(e[-+]\d+)?\}\}$`, lines[4])

	recs, err := metrics.Read(filepath.Join(dir, metrics.File), -1)
	require.NoError(t, err)
	require.Len(t, recs, 5)
	for i, r := range recs {
		require.Equal(t, int64(i), r.Step)
		require.InDelta(t, 1/float64(i+1), r.Metrics["loss"], 1e-7)
		require.Equal(t, float64(i), r.Metrics["loop/after"])
		if i > 0 {
			sps := r.Metrics["steps_per_s"]
			require.Greater(t, sps, 1.0)
			require.Less(t, sps, 1001.0, "a step takes at least 1 ms")
			require.InDelta(t, 8*sps, r.Metrics["samples_per_s"], 1e-9*sps)
		}
	}
}

func TestMetricsStreamDecimatesAndKeepsValidation(t *testing.T) {
	dir := t.TempDir()
	k := metricsKernel(t, dir, kernel.MetricsOptions{Stream: metrics.Options{Full: 2}})
	env := &torchenv.Env{}
	loop(t, k, env, 0, 6)  // due: 0, 1, then every 2nd to 5; validation at 5, which the stride skips
	loop(t, k, env, 6, 11) // every 4th from 6 to 13; validation at 10
	require.NoError(t, k.Close())
	recs, err := metrics.Read(filepath.Join(dir, metrics.File), -1)
	require.NoError(t, err)
	var steps []int64
	for _, r := range recs {
		steps = append(steps, r.Step)
	}
	require.Equal(t, []int64{0, 1, 2, 4, 5, 8, 10}, steps)
	require.Equal(t, 0.75, recs[4].Metrics["val_loss"])
	require.Equal(t, 5.0, recs[4].Metrics["loop/custom"])
	_, hasLoss := recs[4].Metrics["loss"]
	require.False(t, hasLoss, "the kernel reads the loss only at steps the stride writes")
	_, hasLoss = recs[5].Metrics["loss"]
	require.True(t, hasLoss, "step 8's")
	require.Empty(t, recs[5].At, "step 8 has every name of the steps skipped before it: nothing carried")
}

func TestMetricsStreamRestart(t *testing.T) {
	dir := t.TempDir()
	k := metricsKernel(t, dir, kernel.MetricsOptions{})
	env := &torchenv.Env{}
	loop(t, k, env, 0, 6)
	require.NoError(t, k.Close())

	k = metricsKernel(t, dir, kernel.MetricsOptions{}) // resumed from a checkpoint at step 3
	env = &torchenv.Env{Step: 3}
	k.Apply(env, torchenv.FitStart)
	loop(t, k, env, 3, 5)
	require.NoError(t, k.Close())
	recs, err := metrics.Read(filepath.Join(dir, metrics.File), -1)
	require.NoError(t, err)
	var steps []int64
	for _, r := range recs {
		steps = append(steps, r.Step)
	}
	require.Equal(t, []int64{0, 1, 2, 3, 3, 4}, steps)
	require.NotNil(t, recs[3].Restart)
	require.Equal(t, int64(5), recs[3].Restart.PreviousLastStep)
}

func TestMetricsStreamOff(t *testing.T) {
	dir := t.TempDir()
	k := metricsKernel(t, dir, kernel.MetricsOptions{Off: true})
	loop(t, k, &torchenv.Env{}, 0, 2)
	require.NoError(t, k.Close())
	_, err := os.Stat(filepath.Join(dir, metrics.File))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// fourRanks is rank 0 of a data-parallel run of 4, as callbacks see it.
type fourRanks struct{}

func (fourRanks) Rank() int { return 0 }
func (fourRanks) Size() int { return 4 }
func (fourRanks) AllReduceWait() (torchenv.AllReduceWait, bool) {
	return torchenv.AllReduceWait{}, false
}
func (fourRanks) Share(string, float64, time.Duration) ([]float64, []int, error) {
	return nil, nil, nil
}

// Rank 0 writes the run's stream, the other ranks none; samples/s counts every rank's.
func TestMetricsStreamOnRankZeroOnly(t *testing.T) {
	root := t.TempDir()
	b := &board{}
	r0, r1 := newRankRun(t, root, 0, b), newRankRun(t, root, 1, b)
	for _, r := range []*run{r0, r1} {
		r.env.Ranks = fourRanks{}
		r.env.Inputs = bridge.Zeros(bridge.Shape{8, 2})
		r.env.Phase = "train"
	}
	for range 3 {
		r0.step()
		r1.step()
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, r0.k.Close())
	require.NoError(t, r1.k.Close())
	recs, err := metrics.Read(filepath.Join(root, metrics.File), -1)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	last := recs[2].Metrics
	require.Equal(t, 0.1, last["lr"], "the optimizer registered as main")
	require.InDelta(t, 8*4*last["steps_per_s"], last["samples_per_s"], 1e-9*last["samples_per_s"])
	_, err = os.Stat(filepath.Join(rundir.RankDir(root, 1), metrics.File))
	require.ErrorIs(t, err, os.ErrNotExist)
}
