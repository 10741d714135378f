package trainer

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/amp"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/torchenv"
)

// Applier receives a training loop's safe points: a *kernel.Kernel or a
// *controller.HotController.
type Applier interface {
	Apply(env *torchenv.Env, events ...string)
}

// Optimizer is what Step needs of an optimizer (*optim.Optimizer has it).
type Optimizer interface {
	ZeroGrad()
	Step()
}

// StepOptions make StepWith a step for any model: its own loss, gradient accumulation, and code
// between the backward pass and the optimizer step. The zero value is Step: one batch, the
// cross-entropy of model.Forward(env.Inputs) against env.Targets.
type StepOptions struct {
	// Loss runs the model on the (micro-)batch in env (env.Inputs, env.Targets, or whatever the
	// loop put in env.Extra) and returns a scalar loss to minimise: a sequence model's
	// cross-entropy over every position, a regression's MSE, a sum of several losses. It should
	// set env.Outputs to the model's output, which the callbacks see (feature maps, accuracy).
	// It runs inside the step's bridge.Scope, like the rest of the step: its tensors are freed
	// when the step returns. nil: env.Outputs = model.Forward(env.Inputs) and the loss is
	// bridge.CrossEntropy(env.Outputs, env.Targets).
	Loss func(env *torchenv.Env) *bridge.Tensor

	// Accumulate is how many micro-batches one optimizer step takes its gradient from (0 or 1:
	// one). Each micro-batch runs forward, loss and backward, with its loss divided by
	// Accumulate first, so that the gradients summed in .grad are those of the mean of the
	// micro-batches' losses, the loss of the whole batch when the loss is a mean over equal
	// micro-batches; the optimizer then steps once.
	Accumulate int

	// MicroBatch, when set, puts micro-batch i (0 ≤ i < Accumulate) in env before its forward
	// (the next batch of a loader, say). Tensors it creates are the step's and are freed when it
	// returns, except those it passes to bridge.Keep. When nil, the env.Inputs and env.Targets the
	// step starts with are split along their first dimension into Accumulate equal parts (views,
	// no copy; a first dimension Accumulate does not divide is an error), and put back when the
	// step ends.
	MicroBatch func(env *torchenv.Env, i int)

	// BeforeOptimizerStep runs after the last backward pass and its backward_end safe point,
	// right before the optimizer step, with the accumulated gradients in place: clip them
	// (optim.ClipGradNorm), inspect them, scale them. It runs inside the step's scope.
	BeforeOptimizerStep func(env *torchenv.Env)

	// AfterOptimizerStep runs right after the optimizer step, before optimizer_step_end: step the
	// learning-rate schedulers (optim.LRScheduler.Step), update an EMA of the weights. It runs
	// inside the step's scope.
	AfterOptimizerStep func(env *torchenv.Env)

	// Scaler makes the step float16 mixed precision's (run the forward under bridge.Autocast in
	// Loss): each micro-batch's loss is multiplied by the scale before its backward, the
	// gradients are divided by it again before BeforeOptimizerStep (which so clips true
	// gradients), the optimizer steps through Scaler.Step — not at all when a gradient is
	// infinite or NaN — and Scaler.Update ends the step. env.Loss stays unscaled. The optimizer
	// must then have Params() (as *optim.Optimizer has). nil: no scaling.
	Scaler *amp.GradScaler
}

// ErrStepOptions is wrapped by the errors StepWith returns for options it cannot run: a negative
// Accumulate, a batch that Accumulate does not split evenly, a Loss that returns nil.
var ErrStepOptions = errors.New("trainer: step options")

// Step runs one classification training step on env.Inputs and env.Targets the way `hotcb
// train` does: StepWith with the zero StepOptions. It panics where StepWith returns an error
// (with the *bridge.Error of a tensor operation that failed, as bridge operations do).
func Step(a Applier, env *torchenv.Env, model nn.Module, opt Optimizer) {
	if err := StepWith(a, env, model, opt, StepOptions{}); err != nil {
		var be *bridge.Error
		if errors.As(err, &be) {
			panic(be)
		}
		panic(err)
	}
}

// StepWith runs one training step, reporting its safe points to a: train_step_start; for each
// micro-batch its forward and loss (env.Outputs, env.Loss: the micro-batch's own, unscaled),
// forward_end, zero_grad (before the first backward only), backward, backward_end; then
// (with a Scaler) the unscaling, o.BeforeOptimizerStep, the optimizer step (skipped by a Scaler
// on an inf/NaN gradient), o.AfterOptimizerStep, and optimizer_step_end,
// train_step_end and train_batch_end together. A nil a — or an interface holding a nil pointer,
// such as a *kernel.Kernel never created — reports nothing.
//
// The step runs in a bridge.Scope, so the activations, losses and graphs are freed when it
// returns; the callbacks run unscoped (what they create is theirs). Once the optimizer has
// stepped, env.Loss is a detached copy of the step's loss (the mean of the micro-batches'
// losses) and env.Outputs a detached copy of the outputs (of the whole batch when StepWith split
// it, else of the last micro-batch), both outliving the step.
//
// A tensor operation that fails (a panic with *bridge.Error) ends the step with that error, as
// does an option it cannot run (ErrStepOptions, before anything ran); env.Loss and env.Outputs
// are then nil, env.Inputs and env.Targets as the step found them, and the optimizer has not
// stepped unless the failure came after it. Other panics, from the loss or the hooks, propagate.
func StepWith(a Applier, env *torchenv.Env, model nn.Module, opt Optimizer, o StepOptions) (err error) {
	n := o.Accumulate
	if n < 0 {
		return fmt.Errorf("%w: Accumulate %d is negative", ErrStepOptions, n)
	}
	n = max(n, 1)
	inputs, targets := env.Inputs, env.Targets
	split := n > 1 && o.MicroBatch == nil
	if split {
		if err := checkSplit(n, inputs, targets); err != nil {
			return err
		}
	}
	var scaled amp.Optimizer
	if o.Scaler != nil {
		var ok bool
		if scaled, ok = opt.(amp.Optimizer); !ok {
			return fmt.Errorf("%w: a Scaler needs an optimizer with Params(); %T has none", ErrStepOptions, opt)
		}
	}
	if noApplier(a) {
		a = nil
	}
	apply := func(ev ...string) {
		if a != nil {
			bridge.Unscoped(func() { a.Apply(env, ev...) })
		}
	}
	ok := false
	defer func() {
		if !ok { // failed: nothing of the scope may stay in env
			env.Loss, env.Outputs = nil, nil
			env.Inputs, env.Targets = inputs, targets
		}
	}()
	return bridge.Try(func() {
		bridge.Scope(func() {
			apply(torchenv.TrainStepStart)
			var losses, outputs []*bridge.Tensor
			for i := range n {
				switch {
				case o.MicroBatch != nil:
					o.MicroBatch(env, i)
				case split:
					env.Inputs, env.Targets = part(inputs, i, n), part(targets, i, n)
				}
				env.Outputs = nil
				env.Loss = stepLoss(env, model, o.Loss)
				apply(torchenv.ForwardEnd)
				if i == 0 {
					opt.ZeroGrad()
				}
				l := env.Loss
				if n > 1 {
					l = l.DivScalar(float64(n))
				}
				if o.Scaler != nil {
					l = o.Scaler.Scale(l)
				}
				l.Backward()
				apply(torchenv.BackwardEnd)
				if n > 1 {
					losses = append(losses, env.Loss.Detach())
					if env.Outputs != nil {
						outputs = append(outputs, env.Outputs.Detach())
					}
				}
			}
			if o.Scaler != nil {
				scalerDo(o.Scaler.Unscale(scaled))
			}
			if o.BeforeOptimizerStep != nil {
				o.BeforeOptimizerStep(env)
			}
			if o.Scaler != nil {
				_, err := o.Scaler.Step(scaled)
				scalerDo(err)
				scalerDo(o.Scaler.Update())
			} else {
				opt.Step()
			}
			if o.AfterOptimizerStep != nil {
				o.AfterOptimizerStep(env)
			}
			if n == 1 {
				env.Loss = bridge.Keep(env.Loss.Detach())
			} else {
				env.Loss = bridge.Keep(meanOf(losses))
			}
			switch {
			case env.Outputs == nil:
			case split && len(outputs) == n:
				env.Outputs = bridge.Keep(bridge.Cat(outputs, 0))
			default:
				env.Outputs = bridge.Keep(env.Outputs.Detach())
			}
			if split {
				env.Inputs, env.Targets = inputs, targets
			} else if o.MicroBatch != nil {
				bridge.Keep(env.Inputs)
				bridge.Keep(env.Targets)
			}
			ok = true
			apply(torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd)
		})
	})
}

// scalerDo ends the step with a GradScaler's error (a call out of order, float16 parameters).
func scalerDo(err error) {
	if err != nil {
		panic(&bridge.Error{Op: "trainer.StepWith", Msg: err.Error(), Err: err})
	}
}

// stepLoss runs the forward pass and the loss of one (micro-)batch.
func stepLoss(env *torchenv.Env, model nn.Module, loss func(*torchenv.Env) *bridge.Tensor) *bridge.Tensor {
	if loss == nil {
		env.Outputs = model.Forward(env.Inputs)
		return bridge.CrossEntropy(env.Outputs, env.Targets)
	}
	l := loss(env)
	if l == nil {
		panic(&bridge.Error{Op: "trainer.StepWith", Msg: "StepOptions.Loss returned nil", Err: ErrStepOptions})
	}
	return l
}

// checkSplit returns an ErrStepOptions error unless n divides the first dimension of each
// tensor given (nil ones are skipped).
func checkSplit(n int, ts ...*bridge.Tensor) error {
	for i, t := range ts {
		if t == nil {
			continue
		}
		var s bridge.Shape
		if err := bridge.Try(func() { s = t.Shape() }); err != nil {
			return err
		}
		if len(s) == 0 || s[0]%int64(n) != 0 {
			return fmt.Errorf("%w: Accumulate %d does not split env.%s of shape %v along its first dimension",
				ErrStepOptions, n, [...]string{"Inputs", "Targets"}[i], s)
		}
	}
	return nil
}

// part is the i-th of n equal parts of t along its first dimension (nil for nil).
func part(t *bridge.Tensor, i, n int) *bridge.Tensor {
	if t == nil {
		return nil
	}
	size := t.Size(0) / int64(n)
	return t.Narrow(0, int64(i)*size, size)
}

// meanOf is the mean of equally weighted scalar losses, summed in order.
func meanOf(ls []*bridge.Tensor) *bridge.Tensor {
	sum := ls[0]
	for _, l := range ls[1:] {
		sum = sum.Add(l)
	}
	return sum.DivScalar(float64(len(ls)))
}

// noApplier reports whether a is nil or an interface holding a nil pointer (or other nil
// reference): calling Apply on it would crash, and it stands for no instrumentation.
func noApplier(a Applier) bool {
	if a == nil {
		return true
	}
	switch v := reflect.ValueOf(a); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Interface, reflect.Slice, reflect.Chan:
		return v.IsNil()
	}
	return false
}
