package amp

import (
	"errors"
	"fmt"
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// Optimizer is what a GradScaler needs of an optimizer: its parameters (whose gradients it
// unscales and checks) and its step. *optim.Optimizer has both.
type Optimizer interface {
	Params() []*bridge.Tensor
	Step()
}

// Options are torch.cuda.amp.GradScaler's arguments. Start from DefaultOptions.
type Options struct {
	InitScale      float64 // the first scale factor (PyTorch: 2**16)
	GrowthFactor   float64 // the scale is multiplied by this after GrowthInterval clean steps (> 1)
	BackoffFactor  float64 // and by this after a step with an inf/NaN gradient (in (0, 1))
	GrowthInterval int64   // clean steps in a row before the scale grows (> 0)
	Disabled       bool    // pass-through: Scale returns its input, Step just steps
}

// DefaultOptions returns PyTorch's defaults: init scale 65536, growth ×2 every 2000 clean
// steps, backoff ×0.5.
func DefaultOptions() Options {
	return Options{InitScale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000}
}

// validScale reports whether v can be a scale: positive, and finite once rounded to float32 (the
// type PyTorch keeps it in).
func validScale(v float64) bool {
	return v > 0 && !math.IsInf(float64(float32(v)), 0) // NaN > 0 is false
}

func (o Options) check() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !validScale(o.InitScale):
		return fmt.Errorf("amp: InitScale %v must be positive and finite in float32", o.InitScale)
	case !finite(o.GrowthFactor) || o.GrowthFactor <= 1:
		return fmt.Errorf("amp: GrowthFactor %v must be > 1", o.GrowthFactor)
	case !finite(o.BackoffFactor) || o.BackoffFactor <= 0 || o.BackoffFactor >= 1:
		return fmt.Errorf("amp: BackoffFactor %v must be in (0, 1)", o.BackoffFactor)
	case o.GrowthInterval <= 0:
		return fmt.Errorf("amp: GrowthInterval %d must be > 0", o.GrowthInterval)
	}
	return nil
}

// stage is where one optimizer is in the current iteration (PyTorch's OptState).
type stage int

const (
	ready stage = iota
	unscaled
	stepped
)

type optState struct {
	stage    stage
	foundInf bool
}

// GradScaler scales a loss, unscales and checks the gradients, and steps or skips the optimizer,
// as torch.cuda.amp.GradScaler. Per iteration: Scale(loss).Backward(), optionally Unscale(opt)
// (to clip or inspect true gradients), Step(opt) for each optimizer, then one Update.
//
// Like an optimizer it is not safe for concurrent use; call it from the training goroutine.
type GradScaler struct {
	o       Options
	scale   float64 // always a float32 value, as PyTorch's float32 scale tensor
	tracker int64   // clean steps in a row since the last growth or backoff
	per     map[Optimizer]*optState
}

// NewGradScaler returns a scaler, or an error naming the option that is out of range.
func NewGradScaler(o Options) (*GradScaler, error) {
	if !o.Disabled {
		if err := o.check(); err != nil {
			return nil, err
		}
	}
	return &GradScaler{o: o, scale: float64(float32(o.InitScale)), per: map[Optimizer]*optState{}}, nil
}

// Enabled reports whether the scaler scales (false: Options.Disabled).
func (s *GradScaler) Enabled() bool { return !s.o.Disabled }

// CurrentScale is the scale factor (PyTorch's get_scale()); 1 when disabled.
func (s *GradScaler) CurrentScale() float64 {
	if s.o.Disabled {
		return 1
	}
	return s.scale
}

// GrowthTracker is the number of clean steps since the scale last changed.
func (s *GradScaler) GrowthTracker() int64 { return s.tracker }

// Scale returns loss × scale — as PyTorch, a product with a one-element float32 tensor on the
// loss's device, so a float16 or bfloat16 loss comes back float32 with shape [1] when it was a
// scalar. Disabled: loss itself.
func (s *GradScaler) Scale(loss *bridge.Tensor) *bridge.Tensor {
	if s.o.Disabled {
		return loss
	}
	f := bridge.Full(bridge.Shape{1}, s.scale, bridge.Float32, loss.Device())
	defer f.Free()
	return loss.Mul(f)
}

// Unscale divides the gradients of opt's parameters by the scale, in place, and records
// whether any was infinite or NaN — PyTorch's unscale_. Call it at most once per optimizer per
// iteration, before Step; Step calls it itself when it has not been called. Float16 gradients are
// refused (keep float32 master parameters, as PyTorch requires).
func (s *GradScaler) Unscale(opt Optimizer) error {
	if s.o.Disabled {
		return nil
	}
	st := s.state(opt)
	switch st.stage {
	case unscaled:
		return errors.New("amp: Unscale has already been called on this optimizer since the last Update")
	case stepped:
		return errors.New("amp: Unscale is being called after Step")
	}
	inv := float64(float32(1 / s.scale)) // PyTorch: scale.double().reciprocal().float()
	var grads []*bridge.Tensor
	defer func() {
		for _, g := range grads {
			g.Free()
		}
	}()
	for _, p := range opt.Params() {
		g := p.Grad()
		if g == nil {
			continue
		}
		grads = append(grads, g)
		if g.DType() == bridge.Float16 {
			return errors.New("amp: attempting to unscale float16 gradients: keep the optimizer's parameters in float32")
		}
	}
	if len(grads) == 0 {
		return errors.New("amp: no inf checks were recorded for this optimizer: none of its parameters has a gradient")
	}
	// One bool per gradient, combined on the device; one read back.
	var ok *bridge.Tensor
	for _, g := range grads {
		fin := aten.Isfinite(g)
		all := aten.All(fin)
		fin.Free()
		if ok == nil {
			ok = all
		} else {
			both := ok.LogicalAnd(all)
			ok.Free()
			all.Free()
			ok = both
		}
		aten.MulScalar_(g, aten.FloatScalar(inv))
	}
	st.foundInf = ok.Item() == 0
	ok.Free()
	st.stage = unscaled
	return nil
}

// Step unscales opt's gradients (unless Unscale already did this iteration) and runs opt.Step
// unless a gradient was infinite or NaN; it reports whether the step ran. Disabled: opt.Step.
func (s *GradScaler) Step(opt Optimizer) (ran bool, err error) {
	if s.o.Disabled {
		opt.Step()
		return true, nil
	}
	st := s.state(opt)
	if st.stage == stepped {
		return false, errors.New("amp: Step has already been called on this optimizer since the last Update")
	}
	if st.stage == ready {
		if err := s.Unscale(opt); err != nil {
			return false, err
		}
	}
	st.stage = stepped
	if st.foundInf {
		return false, nil
	}
	opt.Step()
	return true, nil
}

// Update adapts the scale after an iteration's Steps — backoff if any optimizer saw an inf/NaN
// gradient, growth after GrowthInterval clean iterations — and starts the next iteration.
// It is an error to call it when no optimizer was unscaled since the last Update.
func (s *GradScaler) Update() error {
	if s.o.Disabled {
		return nil
	}
	found, checked := false, false
	for _, st := range s.per { // any order: Update only ORs what the optimizers saw
		if st.stage != ready {
			checked = true
			found = found || st.foundInf
		}
	}
	if !checked {
		return errors.New("amp: no inf checks were recorded prior to Update: call Step (or Unscale) first")
	}
	if found {
		s.scale = float64(float32(s.scale * s.o.BackoffFactor))
		s.tracker = 0
	} else if s.tracker+1 == s.o.GrowthInterval {
		// PyTorch keeps the old scale when the grown one overflows float32.
		if grown := float32(s.scale * s.o.GrowthFactor); !math.IsInf(float64(grown), 0) {
			s.scale = float64(grown)
		}
		s.tracker = 0
	} else {
		s.tracker++
	}
	s.reset()
	return nil
}

// SetScale replaces the scale factor (PyTorch's update(new_scale)) and starts the next
// iteration; the growth tracker is kept, as PyTorch keeps it.
func (s *GradScaler) SetScale(v float64) error {
	if !validScale(v) {
		return fmt.Errorf("amp: scale %v must be positive and finite in float32", v)
	}
	if s.o.Disabled {
		return nil
	}
	s.scale = float64(float32(v))
	s.reset()
	return nil
}

func (s *GradScaler) reset() {
	for _, st := range s.per {
		*st = optState{}
	}
}

func (s *GradScaler) state(opt Optimizer) *optState {
	st, ok := s.per[opt]
	if !ok {
		st = &optState{}
		s.per[opt] = st
	}
	return st
}

// StateDict is PyTorch's GradScaler.state_dict(): scale, growth_factor, backoff_factor,
// growth_interval and _growth_tracker; empty when disabled, as PyTorch's.
func (s *GradScaler) StateDict() map[string]any {
	if s.o.Disabled {
		return map[string]any{}
	}
	return map[string]any{
		"scale":           s.scale,
		"growth_factor":   s.o.GrowthFactor,
		"backoff_factor":  s.o.BackoffFactor,
		"growth_interval": s.o.GrowthInterval,
		"_growth_tracker": s.tracker,
	}
}

// LoadStateDict restores what StateDict saved (numbers may be any Go integer or float type, as
// a decoder gives them). It checks every value before changing anything.
func (s *GradScaler) LoadStateDict(d map[string]any) error {
	if s.o.Disabled {
		return nil
	}
	if len(d) == 0 {
		return errors.New("amp: the state dict is empty: it was saved by a disabled scaler")
	}
	num := func(k string) (float64, error) {
		v, ok := d[k]
		if !ok {
			return 0, fmt.Errorf("amp: the state dict has no %q", k)
		}
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case int32:
			return float64(x), nil
		}
		return 0, fmt.Errorf("amp: state dict %q is a %T, not a number", k, v)
	}
	var vals [5]float64
	for i, k := range []string{"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"} {
		v, err := num(k)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	o := s.o
	o.InitScale, o.GrowthFactor, o.BackoffFactor, o.GrowthInterval = vals[0], vals[1], vals[2], int64(vals[3])
	if err := o.check(); err != nil {
		return err
	}
	if vals[3] != math.Trunc(vals[3]) || vals[4] != math.Trunc(vals[4]) || vals[4] < 0 {
		return fmt.Errorf("amp: growth_interval %v and _growth_tracker %v must be whole, non-negative numbers", vals[3], vals[4])
	}
	s.o.GrowthFactor, s.o.BackoffFactor, s.o.GrowthInterval = o.GrowthFactor, o.BackoffFactor, o.GrowthInterval
	s.scale, s.tracker = float64(float32(vals[0])), int64(vals[4])
	return nil
}
