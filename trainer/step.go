package trainer

import (
	"github.com/hotcb/hotcb/bridge"
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

// Step runs one classification training step on env.Inputs and env.Targets the way `hotcb
// train` does, reporting its safe points to a (nil: none): train_step_start, forward,
// cross-entropy (env.Outputs, env.Loss), forward_end, zero_grad, backward, backward_end,
// optimizer step, then optimizer_step_end, train_step_end and train_batch_end.
//
// The step runs in a bridge.Scope, so the activations, loss and graph are freed when it returns;
// the callbacks run unscoped (what they create is theirs). Once the optimizer has stepped,
// env.Loss and env.Outputs are replaced by detached copies that outlive the step.
func Step(a Applier, env *torchenv.Env, model nn.Module, opt Optimizer) {
	apply := func(ev ...string) {
		if a != nil {
			bridge.Unscoped(func() { a.Apply(env, ev...) })
		}
	}
	bridge.Scope(func() {
		apply(torchenv.TrainStepStart)
		env.Outputs = model.Forward(env.Inputs)
		env.Loss = bridge.CrossEntropy(env.Outputs, env.Targets)
		apply(torchenv.ForwardEnd)
		opt.ZeroGrad()
		env.Loss.Backward()
		apply(torchenv.BackwardEnd)
		opt.Step()
		env.Loss = bridge.Keep(env.Loss.Detach())
		env.Outputs = bridge.Keep(env.Outputs.Detach())
		apply(torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd)
	})
}
