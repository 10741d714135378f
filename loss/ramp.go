package loss

import (
	"errors"
	"fmt"
	"math"
)

// Ramp types.
const (
	RampLinear = "linear" // a straight line from Start to End
	RampCosine = "cosine" // half a cosine from Start to End: slow, fast, slow
)

// Ramp moves a term's weight from Start to End over a warm-up, then holds End: at step s the
// progress is p = (s − FromStep) / W, clamped to [0, 1], where W is WarmupSteps, or
// ⌈WarmupFrac × the run's total steps⌉ when WarmupSteps is 0; the weight is
// Start + (End − Start)·p for "linear" and Start + (End − Start)·(1 − cos πp)/2 for "cosine".
// Before FromStep the weight is Start; with W = 0 it is End.
//
// set_params gives a ramp as an object, hotcb's {"type":"linear","warmup_frac":0.2,"end":2.0}:
// type defaults to linear, start to 0, end to the term's weight (after the op's own weights),
// from_step to the step the op is applied at, and exactly one of warmup_steps and warmup_frac is
// required.
type Ramp struct {
	Type        string  `json:"type"`
	Start       float64 `json:"start"`
	End         float64 `json:"end"`
	FromStep    int64   `json:"from_step"`
	WarmupSteps int64   `json:"warmup_steps,omitempty"`
	WarmupFrac  float64 `json:"warmup_frac,omitempty"`
}

// Warmup is the warm-up's length in steps for a run of total steps (0 when unknown).
func (r Ramp) Warmup(total int64) int64 {
	if r.WarmupSteps > 0 || r.WarmupFrac <= 0 || total <= 0 {
		return r.WarmupSteps
	}
	return int64(math.Ceil(r.WarmupFrac * float64(total)))
}

// At is the ramp's weight at step, in a run of total steps.
func (r Ramp) At(step, total int64) float64 {
	w := r.Warmup(total)
	if step < r.FromStep {
		return r.Start
	}
	if w <= 0 || step-r.FromStep >= w {
		return r.End
	}
	p := float64(step-r.FromStep) / float64(w)
	if r.Type == RampCosine {
		p = (1 - math.Cos(math.Pi*p)) / 2
	}
	return r.Start + (r.End-r.Start)*p
}

// check says what is wrong with a resolved ramp.
func (r Ramp) check() error {
	if r.Type != RampLinear && r.Type != RampCosine {
		return fmt.Errorf("type %q is not a ramp type (want %s or %s)", r.Type, RampLinear, RampCosine)
	}
	if err := checkWeight(r.Start); err != nil {
		return fmt.Errorf("start %v", err)
	}
	if err := checkWeight(r.End); err != nil {
		return fmt.Errorf("end %v", err)
	}
	switch {
	case r.WarmupSteps < 0:
		return fmt.Errorf("warmup_steps must be >= 0, got %d", r.WarmupSteps)
	case math.IsNaN(r.WarmupFrac) || r.WarmupFrac < 0 || r.WarmupFrac > 1:
		return fmt.Errorf("warmup_frac must be in (0, 1], got %v", r.WarmupFrac)
	case r.WarmupSteps > 0 && r.WarmupFrac > 0:
		return errors.New("give warmup_steps or warmup_frac, not both")
	case r.WarmupSteps == 0 && r.WarmupFrac == 0:
		return errors.New("give warmup_steps or warmup_frac (a ramp without a warm-up is a weight: set NAME_w)")
	case r.FromStep < 0:
		return fmt.Errorf("from_step must be >= 0, got %d", r.FromStep)
	}
	return nil
}

// String describes the ramp for ledger notes: "linear 0 -> 2 over steps 100..300".
func (r Ramp) String() string { return r.describe(0) }

func (r Ramp) describe(total int64) string {
	w := r.Warmup(total)
	if w <= 0 && r.WarmupFrac > 0 {
		return fmt.Sprintf("%s %g -> %g from step %d over %g of the run", r.Type, r.Start, r.End, r.FromStep, r.WarmupFrac)
	}
	if w <= 0 {
		return fmt.Sprintf("%s %g -> %g from step %d (no warm-up: %g)", r.Type, r.Start, r.End, r.FromStep, r.End)
	}
	return fmt.Sprintf("%s %g -> %g over steps %d..%d", r.Type, r.Start, r.End, r.FromStep, r.FromStep+w)
}
