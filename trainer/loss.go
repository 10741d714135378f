package trainer

import (
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/loss"
	"github.com/hotcb/hotcb/torchenv"
)

// The loss terms of `hotcb train`, registered with the kernel as loss "main": the loss is
// Σ wᵢ·termᵢ over
//
//   - "ce", the cross-entropy of the logits against the labels (weight 1);
//   - "smooth", the mean over the batch of −(1/C)·Σ_c log p_c, the cross-entropy against the
//     uniform distribution: (1−ε)·ce + ε·smooth is label smoothing ε (weight 0.1, off until
//     `hotcb loss set_params terms.smooth=true`);
//   - "l2", ½·Σ‖θ‖² over the model's parameters, an L2 penalty whose weight is the decay
//     (weight 0, so on but not computed, until `hotcb loss set_params l2_w=5e-4`).
//
// With the defaults the loss is the cross-entropy alone, computed as before.
const (
	TermCE     = "ce"
	TermSmooth = "smooth"
	TermL2     = "l2"
)

// NewLoss is the loss configuration `hotcb train` registers, for a run of total steps.
func NewLoss(total int64) *loss.Loss {
	l := loss.New(
		loss.Term{Name: TermCE, Weight: 1},
		loss.Term{Name: TermSmooth, Weight: 0.1, Disabled: true},
		loss.Term{Name: TermL2, Weight: 0},
	)
	l.SetTotalSteps(total)
	return l
}

// lossOf is StepOptions.Loss for the terms of NewLoss: the model's forward on env.Inputs (into
// env.Outputs), and the terms that count at env.Step combined with their weights. params are the
// model's parameters, for l2.
func lossOf(l *loss.Loss, model nn.Module, params []*bridge.Tensor) func(env *torchenv.Env) *bridge.Tensor {
	return func(env *torchenv.Env) *bridge.Tensor {
		env.Outputs = model.Forward(env.Inputs)
		terms := map[string]*bridge.Tensor{TermCE: bridge.CrossEntropy(env.Outputs, env.Targets)}
		if l.Active(TermSmooth, env.Step) {
			terms[TermSmooth] = env.Outputs.LogSoftmax(1).Mean().Neg()
		}
		if l.Active(TermL2, env.Step) {
			var sq *bridge.Tensor
			for _, p := range params {
				s := p.Square().Sum()
				if sq == nil {
					sq = s
				} else {
					sq = sq.Add(s)
				}
			}
			terms[TermL2] = sq.MulScalar(0.5)
		}
		return loss.Combine(l, env.Step, terms)
	}
}
