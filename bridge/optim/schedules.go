package optim

import (
	"fmt"
	"math"
	"sort"
)

// More schedulers of PyTorch 1.13's lr_scheduler: MultiStepLR, ExponentialLR, LambdaLR,
// CyclicLR, OneCycleLR (all *LRScheduler, so SequentialLR chains them) and ReduceLROnPlateau,
// which steps on a metric. CyclicLR and OneCycleLR also cycle the momentum ("momentum", or
// beta1 of "betas" for OneCycleLR) as PyTorch does; like the rates, the scheduler sets it
// directly, without a trial.

func checkFinite(name, key string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("optim: %s: %s must be finite, got %v", name, key, v)
	}
	return nil
}

type multiStepRule struct {
	counts     map[int]int // milestone -> how often it is given
	milestones []int       // sorted, with repeats
	gamma      float64
}

func (r multiStepRule) chain(s *LRScheduler, _ int, cur, _ float64) float64 {
	n, ok := r.counts[s.lastEpoch]
	if !ok {
		return cur
	}
	return cur * pow(r.gamma, float64(n))
}

func (r multiStepRule) closed(s *LRScheduler, _ int, base float64) float64 {
	// bisect_right: the milestones <= last_epoch.
	n := sort.Search(len(r.milestones), func(i int) bool { return r.milestones[i] > s.lastEpoch })
	return base * pow(r.gamma, float64(n))
}

// NewMultiStepLR multiplies the rates by gamma at each milestone (a step count; one given twice
// multiplies by gamma²) — torch MultiStepLR.
func NewMultiStepLR(opt *Optimizer, milestones []int, gamma float64) (*LRScheduler, error) {
	if err := checkFinite("MultiStepLR", "gamma", gamma); err != nil {
		return nil, err
	}
	if gamma < 0 {
		return nil, fmt.Errorf("optim: MultiStepLR: gamma must be >= 0, got %v", gamma)
	}
	r := multiStepRule{counts: map[int]int{}, gamma: gamma}
	for _, m := range milestones {
		r.counts[m]++
		r.milestones = append(r.milestones, m)
	}
	sort.Ints(r.milestones)
	return newScheduler("MultiStepLR", opt, r), nil
}

type exponentialRule struct{ gamma float64 }

func (r exponentialRule) chain(s *LRScheduler, _ int, cur, _ float64) float64 {
	if s.lastEpoch == 0 {
		return cur
	}
	return cur * r.gamma
}

func (r exponentialRule) closed(s *LRScheduler, _ int, base float64) float64 {
	return base * pow(r.gamma, float64(s.lastEpoch))
}

// NewExponentialLR multiplies the rates by gamma at every step (torch ExponentialLR).
func NewExponentialLR(opt *Optimizer, gamma float64) (*LRScheduler, error) {
	if err := checkFinite("ExponentialLR", "gamma", gamma); err != nil {
		return nil, err
	}
	if gamma < 0 {
		return nil, fmt.Errorf("optim: ExponentialLR: gamma must be >= 0, got %v", gamma)
	}
	return newScheduler("ExponentialLR", opt, exponentialRule{gamma}), nil
}

type lambdaRule struct{ fns []func(epoch int) float64 }

func (r lambdaRule) chain(s *LRScheduler, i int, _, base float64) float64 {
	return r.closed(s, i, base)
}

func (r lambdaRule) closed(s *LRScheduler, i int, base float64) float64 {
	return base * r.fns[i](s.lastEpoch)
}

// NewLambdaLR sets each group's rate to its initial rate times fn(step) (torch LambdaLR): one
// function for every group, or one per group. Not chainable: a rate set by hand lasts until the
// next Step.
func NewLambdaLR(opt *Optimizer, fns ...func(epoch int) float64) (*LRScheduler, error) {
	switch len(fns) {
	case 1:
		for len(fns) < len(opt.groups) {
			fns = append(fns, fns[0])
		}
	case len(opt.groups):
	default:
		return nil, fmt.Errorf("optim: LambdaLR: want 1 function or %d (one per group), got %d", len(opt.groups), len(fns))
	}
	for i, f := range fns {
		if f == nil {
			return nil, fmt.Errorf("optim: LambdaLR: function %d is nil", i)
		}
	}
	return newScheduler("LambdaLR", opt, lambdaRule{fns}), nil
}

// perGroup spreads one value to every group, or checks there is one per group.
func perGroup(sched, name string, opt *Optimizer, vs []float64) ([]float64, error) {
	switch len(vs) {
	case 1:
		out := make([]float64, len(opt.groups))
		for i := range out {
			out[i] = vs[0]
		}
		return out, nil
	case len(opt.groups):
		return append([]float64(nil), vs...), nil
	}
	return nil, fmt.Errorf("optim: %s: expected 1 or %d values for %s, got %d", sched, len(opt.groups), name, len(vs))
}

// CyclicOptions are torch CyclicLR's arguments; start from DefaultCyclic.
type CyclicOptions struct {
	BaseLR, MaxLR []float64 // one value for every group, or one per group
	// StepSizeUp and StepSizeDown are the steps of the rising and falling halves of a cycle;
	// StepSizeDown 0 means StepSizeUp.
	StepSizeUp, StepSizeDown float64
	// Mode is "triangular" (constant amplitude), "triangular2" (halved each cycle) or
	// "exp_range" (scaled by Gamma^step); ignored when ScaleFn is set.
	Mode  string
	Gamma float64
	// ScaleFn, if set, scales the amplitude: of the cycle number (ScaleMode "cycle") or of the
	// step ("iterations").
	ScaleFn   func(x float64) float64
	ScaleMode string
	// CycleMomentum cycles "momentum" inversely between MaxMomentum and BaseMomentum; it needs
	// an optimizer with momentum (SGD, RMSprop), as in PyTorch.
	CycleMomentum             bool
	BaseMomentum, MaxMomentum float64
}

// DefaultCyclic returns torch CyclicLR's defaults for these rates: step_size_up 2000,
// triangular, gamma 1, cycling momentum between 0.8 and 0.9.
func DefaultCyclic(baseLR, maxLR float64) CyclicOptions {
	return CyclicOptions{BaseLR: []float64{baseLR}, MaxLR: []float64{maxLR}, StepSizeUp: 2000, Mode: "triangular",
		Gamma: 1, ScaleMode: "cycle", CycleMomentum: true, BaseMomentum: 0.8, MaxMomentum: 0.9}
}

type cyclicRule struct {
	o                    CyclicOptions
	maxLRs               []float64
	totalSize, stepRatio float64
	scaleFn              func(float64) float64
	byCycle              bool
}

func (r *cyclicRule) chain(s *LRScheduler, i int, _, base float64) float64 {
	return r.closed(s, i, base)
}

func (r *cyclicRule) closed(s *LRScheduler, i int, base float64) float64 {
	e := float64(s.lastEpoch)
	cycle := math.Floor(1 + e/r.totalSize)
	x := float64(1+e/r.totalSize) - cycle
	var scale float64
	if x <= r.stepRatio {
		scale = x / r.stepRatio
	} else {
		scale = (x - 1) / (r.stepRatio - 1)
	}
	at := e
	if r.byCycle {
		at = cycle
	}
	f := r.scaleFn(at)
	lr := base + float64(float64((r.maxLRs[i]-base)*scale)*f)
	if r.o.CycleMomentum {
		height := float64((r.o.MaxMomentum - r.o.BaseMomentum) * scale)
		s.opt.groups[i].h.momentum = r.o.MaxMomentum - float64(height*f)
	}
	return lr
}

// NewCyclicLR cycles the rates between BaseLR and MaxLR (torch CyclicLR, stepped once per batch):
// it sets them to BaseLR at once, then each Step moves along a triangle of StepSizeUp rising and
// StepSizeDown falling steps, its amplitude scaled by Mode. Not chainable.
func NewCyclicLR(opt *Optimizer, o CyclicOptions) (*LRScheduler, error) {
	const name = "CyclicLR"
	baseLRs, err := perGroup(name, "base_lr", opt, o.BaseLR)
	if err != nil {
		return nil, err
	}
	maxLRs, err := perGroup(name, "max_lr", opt, o.MaxLR)
	if err != nil {
		return nil, err
	}
	for i := range baseLRs {
		for _, v := range []float64{baseLRs[i], maxLRs[i]} {
			if err := checkFinite(name, "the rates", v); err != nil {
				return nil, err
			}
			if v < 0 {
				return nil, fmt.Errorf("optim: %s: rates must be >= 0, got %v", name, v)
			}
		}
	}
	down := o.StepSizeDown
	if down == 0 {
		down = o.StepSizeUp
	}
	if !(o.StepSizeUp > 0 && down > 0) || math.IsInf(o.StepSizeUp+down, 0) {
		return nil, fmt.Errorf("optim: %s: step sizes must be > 0, got %v up and %v down", name, o.StepSizeUp, down)
	}
	r := &cyclicRule{o: o, maxLRs: maxLRs, totalSize: o.StepSizeUp + down}
	r.stepRatio = o.StepSizeUp / r.totalSize
	if o.ScaleFn != nil {
		switch o.ScaleMode {
		case "cycle", "":
			r.byCycle = true
		case "iterations":
		default:
			return nil, fmt.Errorf("optim: %s: scale mode %q (want cycle or iterations)", name, o.ScaleMode)
		}
		r.scaleFn = o.ScaleFn
	} else {
		switch o.Mode {
		case "triangular":
			r.scaleFn, r.byCycle = func(float64) float64 { return 1 }, true
		case "triangular2":
			r.scaleFn, r.byCycle = func(x float64) float64 { return 1 / pow(2, x-1) }, true
		case "exp_range":
			if err := checkFinite(name, "gamma", o.Gamma); err != nil {
				return nil, err
			}
			g := o.Gamma
			r.scaleFn = func(x float64) float64 { return pow(g, x) }
		default:
			return nil, fmt.Errorf("optim: %s: mode %q (want triangular, triangular2 or exp_range, or a ScaleFn)", name, o.Mode)
		}
	}
	if o.CycleMomentum {
		if !opt.kind.accepts("momentum") {
			return nil, fmt.Errorf("optim: %s: %s has no momentum to cycle (set CycleMomentum false)", name, opt.kind)
		}
		if err := checkMomenta(name, opt, o.BaseMomentum, o.MaxMomentum); err != nil {
			return nil, err
		}
	}
	for i, g := range opt.groups {
		g.h.lr = baseLRs[i]
		if o.CycleMomentum {
			g.h.momentum = o.BaseMomentum
		}
	}
	s := newScheduler(name, opt, r)
	// As in PyTorch, the first rate comes from initial_lr (base_lr unless an earlier scheduler
	// set it), the later ones from base_lr.
	s.base = baseLRs
	return s, nil
}

// checkMomenta refuses cycled momenta that are not finite and >= 0, or that SGD's Nesterov
// momentum cannot take.
func checkMomenta(sched string, opt *Optimizer, ms ...float64) error {
	for _, m := range ms {
		if math.IsNaN(m) || m < 0 || math.IsInf(m, 0) {
			return fmt.Errorf("optim: %s: momenta must be finite and >= 0, got %v", sched, m)
		}
	}
	if opt.kind != kindSGD {
		return nil
	}
	for _, g := range opt.groups {
		for _, m := range ms {
			if g.h.nesterov && m <= 0 {
				return fmt.Errorf("optim: %s: nesterov momentum needs momentum > 0, got %v", sched, m)
			}
		}
	}
	return nil
}

// OneCycleOptions are torch OneCycleLR's arguments; start from DefaultOneCycle.
type OneCycleOptions struct {
	MaxLR      []float64 // one value for every group, or one per group
	TotalSteps int
	PctStart   float64 // the part of the cycle spent rising
	// AnnealStrategy is "cos" or "linear".
	AnnealStrategy string
	// CycleMomentum cycles "momentum" (or beta1 of "betas") inversely between MaxMomentum and
	// BaseMomentum; it needs an optimizer with either, as in PyTorch.
	CycleMomentum             bool
	BaseMomentum, MaxMomentum float64
	DivFactor                 float64 // initial_lr = max_lr/DivFactor
	FinalDivFactor            float64 // min_lr = initial_lr/FinalDivFactor
	// ThreePhase rises, falls back to initial_lr symmetrically, then anneals to min_lr; two
	// phases rise, then anneal to min_lr.
	ThreePhase bool
}

// DefaultOneCycle returns torch OneCycleLR's defaults for this peak rate and length: pct_start
// 0.3, cos, momentum cycled between 0.85 and 0.95, div_factor 25, final_div_factor 1e4.
func DefaultOneCycle(maxLR float64, totalSteps int) OneCycleOptions {
	return OneCycleOptions{MaxLR: []float64{maxLR}, TotalSteps: totalSteps, PctStart: 0.3, AnnealStrategy: "cos",
		CycleMomentum: true, BaseMomentum: 0.85, MaxMomentum: 0.95, DivFactor: 25, FinalDivFactor: 1e4}
}

type oneCyclePhase struct {
	end                        float64
	startLR, endLR             string // initial_lr, max_lr, min_lr
	startMomentum, endMomentum string // max_momentum, base_momentum
}

type oneCycleRule struct {
	total   int
	phases  []oneCyclePhase
	anneal  func(start, end, pct float64) float64
	cycleM  bool
	useBeta bool
}

func annealCos(start, end, pct float64) float64 {
	cosOut := cos(float64(math.Pi*pct)) + 1
	return end + float64(float64((start-end)/2)*cosOut)
}

func annealLinear(start, end, pct float64) float64 { return float64((end-start)*pct) + start }

func (r *oneCycleRule) chain(s *LRScheduler, i int, cur, base float64) float64 {
	return r.closed(s, i, base)
}

func (r *oneCycleRule) closed(s *LRScheduler, i int, _ float64) float64 {
	g := s.opt.groups[i]
	step := float64(s.lastEpoch)
	if s.lastEpoch > r.total {
		// PyTorch raises ValueError ("Tried to step … times"); the rates stay at their end.
		return g.h.lr
	}
	val := func(key string) float64 {
		if key == "initial_lr" {
			return g.initialLR
		}
		for _, e := range g.extra {
			if e.key == key {
				return e.v
			}
		}
		return 0
	}
	start := 0.0
	for k, ph := range r.phases {
		if step <= ph.end || k == len(r.phases)-1 {
			pct := (step - start) / (ph.end - start)
			lr := r.anneal(val(ph.startLR), val(ph.endLR), pct)
			if r.cycleM {
				m := r.anneal(val(ph.startMomentum), val(ph.endMomentum), pct)
				if r.useBeta {
					g.h.beta1 = m
				} else {
					g.h.momentum = m
				}
			}
			return lr
		}
		start = ph.end
	}
	return g.h.lr
}

// NewOneCycleLR is the 1cycle policy (torch OneCycleLR, stepped once per batch): the rates rise
// from MaxLR/DivFactor to MaxLR over PctStart of TotalSteps, then anneal to
// MaxLR/(DivFactor·FinalDivFactor), while the momentum does the opposite. It sets the groups'
// initial_lr, max_lr, min_lr (and max_momentum, base_momentum) as PyTorch does; they appear in
// StateDict. Stepping past TotalSteps keeps the last rates (PyTorch raises). Not chainable.
func NewOneCycleLR(opt *Optimizer, o OneCycleOptions) (*LRScheduler, error) {
	const name = "OneCycleLR"
	if o.TotalSteps <= 0 {
		return nil, fmt.Errorf("optim: %s: total steps must be > 0, got %d", name, o.TotalSteps)
	}
	if !(o.PctStart >= 0 && o.PctStart <= 1) {
		return nil, fmt.Errorf("optim: %s: pct_start must be in [0, 1], got %v", name, o.PctStart)
	}
	r := &oneCycleRule{total: o.TotalSteps, cycleM: o.CycleMomentum}
	switch o.AnnealStrategy {
	case "cos":
		r.anneal = annealCos
	case "linear":
		r.anneal = annealLinear
	default:
		return nil, fmt.Errorf("optim: %s: anneal strategy %q (want cos or linear)", name, o.AnnealStrategy)
	}
	total := float64(o.TotalSteps)
	if o.ThreePhase {
		r.phases = []oneCyclePhase{
			{float64(o.PctStart*total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
			{float64(2*o.PctStart*total) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
			{total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"},
		}
	} else {
		r.phases = []oneCyclePhase{
			{float64(o.PctStart*total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
			{total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"},
		}
	}
	maxLRs, err := perGroup(name, "max_lr", opt, o.MaxLR)
	if err != nil {
		return nil, err
	}
	for _, v := range append(maxLRs, o.DivFactor, o.FinalDivFactor) {
		if err := checkFinite(name, "max_lr and the div factors", v); err != nil {
			return nil, err
		}
	}
	if !(o.DivFactor > 0 && o.FinalDivFactor > 0) {
		return nil, fmt.Errorf("optim: %s: div factors must be > 0, got %v and %v", name, o.DivFactor, o.FinalDivFactor)
	}
	for _, v := range maxLRs {
		if v < 0 {
			return nil, fmt.Errorf("optim: %s: max_lr must be >= 0, got %v", name, v)
		}
	}
	if o.CycleMomentum {
		switch {
		case opt.kind.accepts("betas"):
			r.useBeta = true
			for _, m := range []float64{o.BaseMomentum, o.MaxMomentum} {
				if checkBeta(m) != "" {
					return nil, fmt.Errorf("optim: %s: momenta become beta1: %s", name, checkBeta(m))
				}
			}
		case opt.kind.accepts("momentum"):
			if err := checkMomenta(name, opt, o.BaseMomentum, o.MaxMomentum); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("optim: %s: %s has no momentum or betas to cycle (set CycleMomentum false)", name, opt.kind)
		}
	}
	for i, g := range opt.groups {
		g.initialLR, g.hasInitial = maxLRs[i]/o.DivFactor, true
		g.setExtra("max_lr", maxLRs[i])
		g.setExtra("min_lr", g.initialLR/o.FinalDivFactor)
		if o.CycleMomentum {
			if r.useBeta {
				g.h.beta1 = o.MaxMomentum
			} else {
				g.h.momentum = o.MaxMomentum
			}
			g.setExtra("max_momentum", o.MaxMomentum)
			g.setExtra("base_momentum", o.BaseMomentum)
		}
	}
	return newScheduler(name, opt, r), nil
}

// PlateauOptions are torch ReduceLROnPlateau's arguments; start from DefaultPlateau.
type PlateauOptions struct {
	Mode          string  // "min": the metric should fall; "max": rise
	Factor        float64 // the rates are multiplied by it, in [0, 1)
	Patience      int     // steps without improvement tolerated
	Threshold     float64 // what counts as an improvement
	ThresholdMode string  // "rel": by a factor 1∓Threshold; "abs": by Threshold
	Cooldown      int     // steps after a reduction before counting again
	MinLR         []float64
	Eps           float64 // reductions smaller than this are skipped
}

// DefaultPlateau returns torch ReduceLROnPlateau's defaults: min, factor 0.1, patience 10,
// threshold 1e-4 relative, no cooldown, min_lr 0, eps 1e-8.
func DefaultPlateau() PlateauOptions {
	return PlateauOptions{Mode: "min", Factor: 0.1, Patience: 10, Threshold: 1e-4, ThresholdMode: "rel",
		MinLR: []float64{0}, Eps: 1e-8}
}

// ReduceLROnPlateau reduces the rates when a metric stops improving (torch ReduceLROnPlateau):
// call Step with the metric (a validation loss, say) once per epoch. It reads and writes the
// groups' current rates, so it composes with rates set by hand or live.
type ReduceLROnPlateau struct {
	opt                    *Optimizer
	o                      PlateauOptions
	minLRs                 []float64
	best                   float64
	numBadEpochs, cooldown int
	lastEpoch              int
	lastLR                 []float64
}

// NewReduceLROnPlateau returns the scheduler; it does not change the rates.
func NewReduceLROnPlateau(opt *Optimizer, o PlateauOptions) (*ReduceLROnPlateau, error) {
	const name = "ReduceLROnPlateau"
	if !(o.Factor >= 0 && o.Factor < 1) {
		return nil, fmt.Errorf("optim: %s: factor must be in [0, 1), got %v", name, o.Factor)
	}
	if o.Mode != "min" && o.Mode != "max" {
		return nil, fmt.Errorf("optim: %s: mode %q is unknown (want min or max)", name, o.Mode)
	}
	if o.ThresholdMode != "rel" && o.ThresholdMode != "abs" {
		return nil, fmt.Errorf("optim: %s: threshold mode %q is unknown (want rel or abs)", name, o.ThresholdMode)
	}
	if o.Patience < 0 || o.Cooldown < 0 {
		return nil, fmt.Errorf("optim: %s: patience and cooldown must be >= 0, got %d and %d", name, o.Patience, o.Cooldown)
	}
	for _, v := range []float64{o.Threshold, o.Eps} {
		if err := checkFinite(name, "threshold and eps", v); err != nil {
			return nil, err
		}
	}
	minLRs, err := perGroup(name, "min_lr", opt, o.MinLR)
	if err != nil {
		return nil, err
	}
	p := &ReduceLROnPlateau{opt: opt, o: o, minLRs: minLRs}
	p.best = math.Inf(1)
	if o.Mode == "max" {
		p.best = math.Inf(-1)
	}
	p.noteLRs()
	return p, nil
}

// noteLRs reads the groups' current rates into lastLR.
func (p *ReduceLROnPlateau) noteLRs() {
	p.lastLR = p.lastLR[:0]
	for _, g := range p.opt.groups {
		p.lastLR = append(p.lastLR, g.h.lr)
	}
}

func (p *ReduceLROnPlateau) isBetter(a float64) bool {
	switch {
	case p.o.Mode == "min" && p.o.ThresholdMode == "rel":
		return a < p.best*(1-p.o.Threshold)
	case p.o.Mode == "min":
		return a < p.best-p.o.Threshold
	case p.o.ThresholdMode == "rel":
		return a > p.best*(p.o.Threshold+1)
	}
	return a > p.best+p.o.Threshold
}

// Step takes the epoch's metric and reduces the rates if it has not improved for more than
// Patience steps (outside a cooldown).
func (p *ReduceLROnPlateau) Step(metric float64) {
	p.lastEpoch++
	if p.isBetter(metric) {
		p.best, p.numBadEpochs = metric, 0
	} else {
		p.numBadEpochs++
	}
	if p.cooldown > 0 {
		p.cooldown--
		p.numBadEpochs = 0
	}
	if p.numBadEpochs > p.o.Patience {
		for i, g := range p.opt.groups {
			old := g.h.lr
			lr := old * p.o.Factor
			if p.minLRs[i] > lr { // Python's max(old*factor, min_lr)
				lr = p.minLRs[i]
			}
			if old-lr > p.o.Eps {
				g.h.lr = lr
			}
		}
		p.cooldown, p.numBadEpochs = p.o.Cooldown, 0
	}
	p.noteLRs()
}

// LastLR returns the group rates after the last Step (the current ones before any).
func (p *ReduceLROnPlateau) LastLR() []float64 { return append([]float64(nil), p.lastLR...) }

// LastEpoch is the number of Steps taken.
func (p *ReduceLROnPlateau) LastEpoch() int { return p.lastEpoch }

// Best is the best metric seen (±Inf before the first Step).
func (p *ReduceLROnPlateau) Best() float64 { return p.best }

// NumBadEpochs is the number of Steps since the metric last improved (0 during a cooldown).
func (p *ReduceLROnPlateau) NumBadEpochs() int { return p.numBadEpochs }
