package trainer_test

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/amp"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// recorder is an Applier that records the events, with the loss it sees at each.
type recorder struct {
	events []string
	losses []float64
	inputs []int64 // env.Inputs' first dimension at each event
}

func (r *recorder) Apply(env *torchenv.Env, events ...string) {
	for _, ev := range events {
		r.events = append(r.events, ev)
		l := math.NaN()
		if env.Loss != nil {
			l = env.Loss.Item()
		}
		r.losses = append(r.losses, l)
		var n int64 = -1
		if env.Inputs != nil {
			n = env.Inputs.Size(0)
		}
		r.inputs = append(r.inputs, n)
	}
}

// noted wraps an optimizer and notes its calls in a shared log.
type noted struct {
	opt *optim.Optimizer
	log *[]string
}

func (n noted) ZeroGrad() { *n.log = append(*n.log, "zero_grad"); n.opt.ZeroGrad() }
func (n noted) Step()     { *n.log = append(*n.log, "step"); n.opt.Step() }

// mlpSetup builds models.MLP(4, 8, 3) with SGD and a batch of 8, the same for every seed.
func mlpSetup(t *testing.T) (*torchenv.Env, nn.Module, *optim.Optimizer) {
	t.Helper()
	bridge.ManualSeed(7)
	model := models.MLP(4, 8, 3)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.5})
	require.NoError(t, err)
	x := bridge.Randn(bridge.Shape{8, 4})
	y := bridge.FromSlice([]int64{0, 1, 2, 0, 1, 2, 2, 1}, 8)
	return &torchenv.Env{Model: model, Inputs: x, Targets: y}, model, opt
}

func params(m nn.Module) [][]float32 {
	var out [][]float32
	for _, p := range nn.Parameters(m) {
		out = append(out, p.Float32s())
	}
	return out
}

// A typed nil Applier (a kernel or controller never created) is no instrumentation, not a crash.
func TestStepTypedNilApplier(t *testing.T) {
	env, model, opt := mlpSetup(t)
	var k *kernel.Kernel
	require.NotPanics(t, func() { trainer.Step(k, env, model, opt) })
	var c *controller.HotController
	require.NoError(t, trainer.StepWith(c, env, model, opt, trainer.StepOptions{Accumulate: 2}))
	var a trainer.Applier
	require.NoError(t, trainer.StepWith(a, env, model, opt, trainer.StepOptions{}))
	require.False(t, env.Loss.IsFreed())
}

// Step keeps its events and results: one batch, cross-entropy, the step's loss and outputs kept.
func TestStepEventsAndResults(t *testing.T) {
	env, model, opt := mlpSetup(t)
	var before float64
	bridge.NoGrad(func() { before = bridge.CrossEntropy(model.Forward(env.Inputs), env.Targets).Item() })
	r := &recorder{}
	trainer.Step(r, env, model, opt)
	require.Equal(t, []string{torchenv.TrainStepStart, torchenv.ForwardEnd, torchenv.BackwardEnd,
		torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd}, r.events)
	require.Equal(t, before, env.Loss.Item(), "the loss before the update")
	require.Equal(t, before, r.losses[1])
	require.False(t, bridge.InScope(env.Loss))
	require.Equal(t, bridge.Shape{8, 3}, env.Outputs.Shape())
	require.False(t, env.Outputs.RequiresGrad())
}

// Four micro-batches of 2 take the gradient of the whole batch of 8: the update equals one step
// on the batch (up to float rounding), and the loss reported is the batch's.
func TestStepAccumulateEqualsTheWholeBatch(t *testing.T) {
	env, model, opt := mlpSetup(t)
	trainer.Step(nil, env, model, opt)
	whole, wholeLoss := params(model), env.Loss.Item()

	env, model, opt = mlpSetup(t)
	x, y := env.Inputs, env.Targets
	var log []string
	r := &recorder{}
	err := trainer.StepWith(r, env, model, noted{opt, &log}, trainer.StepOptions{
		Accumulate:          4,
		BeforeOptimizerStep: func(*torchenv.Env) { log = append(log, "before") },
		AfterOptimizerStep:  func(*torchenv.Env) { log = append(log, "after") },
	})
	require.NoError(t, err)
	require.Equal(t, []string{"zero_grad", "before", "step", "after"}, log)
	want := []string{torchenv.TrainStepStart}
	for range 4 {
		want = append(want, torchenv.ForwardEnd, torchenv.BackwardEnd)
	}
	want = append(want, torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd)
	require.Equal(t, want, r.events)
	require.Equal(t, []int64{8, 2, 2, 2, 2, 2, 2, 2, 2, 8, 8, 8}, r.inputs, "micro-batches of 2, the batch after")
	var micro float64
	for i := 1; i <= 7; i += 2 {
		micro += r.losses[i] / 4
	}
	require.InDelta(t, wholeLoss, env.Loss.Item(), 1e-6)
	require.InDelta(t, micro, env.Loss.Item(), 1e-6, "the mean of the micro-batches' losses")
	require.Same(t, x, env.Inputs)
	require.Same(t, y, env.Targets)
	require.Equal(t, bridge.Shape{8, 3}, env.Outputs.Shape(), "the outputs of the whole batch")
	for i, p := range params(model) {
		for j := range p {
			require.InDelta(t, whole[i][j], p[j], 1e-6, "parameter %d[%d]", i, j)
		}
	}
}

// A regression with its own loss (MSE), micro-batches from a loader, clipping between backward
// and step, a scheduler after it.
func TestStepOwnLossMicroBatchesClipSchedule(t *testing.T) {
	bridge.ManualSeed(3)
	model := models.MLP(3, 16, 1)
	ao := optim.DefaultAdamW()
	ao.LR = 0.03
	opt, err := optim.NewAdamW(optim.Params(nn.Parameters(model)...), ao)
	require.NoError(t, err)
	sched, err := optim.NewCosineAnnealingLR(opt, 50, 0)
	require.NoError(t, err)
	w := bridge.FromSlice([]float32{1.5, -2, 0.5}, 3, 1)
	batch := func() (*bridge.Tensor, *bridge.Tensor) {
		x := bridge.Randn(bridge.Shape{16, 3})
		return x, x.MatMul(w)
	}
	env := &torchenv.Env{Model: model}
	var norms []float64
	var seen []int
	o := trainer.StepOptions{
		Loss: func(env *torchenv.Env) *bridge.Tensor {
			env.Outputs = model.Forward(env.Inputs)
			return bridge.MSELoss(env.Outputs, env.Targets)
		},
		Accumulate: 2,
		MicroBatch: func(env *torchenv.Env, i int) {
			seen = append(seen, i)
			env.Inputs, env.Targets = batch()
		},
		BeforeOptimizerStep: func(env *torchenv.Env) {
			norms = append(norms, optim.ClipGradNorm(nn.Parameters(model), 1, 2))
		},
		AfterOptimizerStep: func(*torchenv.Env) { sched.Step() },
	}
	var first, last float64
	for step := range 50 {
		require.NoError(t, trainer.StepWith(nil, env, model, opt, o))
		if step == 0 {
			first = env.Loss.Item()
		}
		last = env.Loss.Item()
	}
	t.Logf("MSE %.4f → %.4f; grad norm %.3f → %.3f; lr %.2g", first, last, norms[0], norms[49], opt.LR(0))
	require.Less(t, last, first/4)
	require.Len(t, norms, 50)
	require.Equal(t, []int{0, 1, 0, 1}, seen[:4])
	require.Less(t, opt.LR(0), 1e-5, "cosine annealed to 0 after 50 steps")
	require.Equal(t, bridge.Shape{16, 1}, env.Outputs.Shape(), "the last micro-batch's outputs")
	require.NotPanics(t, func() { env.Inputs.Sum().Item() }, "the last micro-batch outlives the step")
}

func TestStepErrors(t *testing.T) {
	env, model, opt := mlpSetup(t)
	x, y := env.Inputs, env.Targets
	before := params(model)

	err := trainer.StepWith(nil, env, model, opt, trainer.StepOptions{Accumulate: 3})
	require.ErrorIs(t, err, trainer.ErrStepOptions)
	require.ErrorContains(t, err, "Accumulate 3 does not split env.Inputs of shape [8, 4]")
	err = trainer.StepWith(nil, env, model, opt, trainer.StepOptions{Accumulate: -1})
	require.ErrorIs(t, err, trainer.ErrStepOptions)

	err = trainer.StepWith(nil, env, model, opt, trainer.StepOptions{Loss: func(*torchenv.Env) *bridge.Tensor { return nil }})
	require.ErrorIs(t, err, trainer.ErrStepOptions)
	require.ErrorContains(t, err, "Loss returned nil")

	// a tensor failure (targets of the wrong shape) is an error; env holds nothing freed
	env.Targets = bridge.FromSlice([]int64{0, 1}, 2)
	r := &recorder{}
	err = trainer.StepWith(r, env, model, opt, trainer.StepOptions{})
	var be *bridge.Error
	require.True(t, errors.As(err, &be), "%v", err)
	require.Nil(t, env.Loss)
	require.Nil(t, env.Outputs)
	require.Same(t, x, env.Inputs)
	require.Equal(t, []string{torchenv.TrainStepStart}, r.events)
	require.Equal(t, before, params(model), "no update")
	require.PanicsWithError(t, be.Error(), func() { trainer.Step(nil, env, model, opt) }, "Step panics with it")
	env.Targets = y

	// other panics propagate, and env is put back
	require.PanicsWithValue(t, "boom", func() {
		_ = trainer.StepWith(nil, env, model, opt, trainer.StepOptions{Accumulate: 2,
			BeforeOptimizerStep: func(*torchenv.Env) { panic("boom") }})
	})
	require.Nil(t, env.Loss)
	require.Same(t, x, env.Inputs)
}

// With a GradScaler a step's update is the unscaled one (the scale is a power of two: scaling
// and unscaling are exact), a step whose loss is infinite is skipped and halves the scale, and
// an optimizer the scaler cannot read is refused before anything runs.
func TestStepWithScaler(t *testing.T) {
	env, model, opt := mlpSetup(t)
	for range 3 {
		require.NoError(t, trainer.StepWith(nil, env, model, opt, trainer.StepOptions{Accumulate: 2}))
	}
	plain := params(model)

	env, model, opt = mlpSetup(t)
	scaler, err := amp.NewGradScaler(amp.Options{InitScale: 1024, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2})
	require.NoError(t, err)
	var clipped []float64
	o := trainer.StepOptions{Accumulate: 2, Scaler: scaler,
		BeforeOptimizerStep: func(*torchenv.Env) {
			// what a clip sees: the true gradient, not the scaled one
			clipped = append(clipped, nn.Parameters(model)[0].Grad().Abs().Max().Item())
		}}
	for range 3 {
		require.NoError(t, trainer.StepWith(nil, env, model, opt, o))
	}
	require.Equal(t, plain, params(model), "bit for bit the unscaled steps")
	require.Equal(t, 2048.0, scaler.CurrentScale(), "grown once after two clean steps")
	for _, g := range clipped {
		require.Less(t, g, 10.0, "unscaled before BeforeOptimizerStep")
	}

	before := params(model)
	poisoned := o
	poisoned.Loss = func(env *torchenv.Env) *bridge.Tensor {
		env.Outputs = model.Forward(env.Inputs)
		return bridge.CrossEntropy(env.Outputs, env.Targets).MulScalar(math.Inf(1))
	}
	require.NoError(t, trainer.StepWith(nil, env, model, opt, poisoned))
	require.Equal(t, before, params(model), "the inf step is skipped")
	require.Equal(t, 1024.0, scaler.CurrentScale(), "and halves the scale")
	require.True(t, math.IsInf(env.Loss.Item(), 1), "env.Loss is the step's own (unscaled) loss")

	var log []string
	err = trainer.StepWith(nil, env, model, noted{opt, &log}, o)
	require.ErrorIs(t, err, trainer.ErrStepOptions)
	require.ErrorContains(t, err, "a Scaler needs an optimizer with Params()")
	require.Empty(t, log)
}
