package optim

import (
	"fmt"
	"math"
	"sort"
)

// Schedulers set an optimizer's group learning rates as PyTorch 1.13's lr_scheduler does: the
// constructor sets the epoch-0 rate (so build them before training), and each Step — once per
// epoch or once per iteration, after the optimizer's Step — moves to the next. Like PyTorch's
// "chainable" form, each step derives the new rate from the group's current one, so a rate set
// by hand (or by a live `opt set_params lr=…`) carries on from there. A scheduler shares the
// optimizer's concurrency contract: call it from the goroutine that calls Step.

// Scheduler is what every scheduler here does.
type Scheduler interface {
	Step()
	LastLR() []float64 // the group rates set by the last Step (or by the constructor)
	LastEpoch() int
}

// LRScheduler is one of StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
// LambdaLR, CyclicLR or OneCycleLR.
type LRScheduler struct {
	name      string
	opt       *Optimizer
	rule      lrRule
	base      []float64 // the groups' initial_lr
	lastEpoch int
	lastLR    []float64
}

// lrRule computes group i's rate at s.lastEpoch: chain from the current rate, closed from the
// base rate alone (used when SequentialLR restarts a scheduler at a milestone). Rules that are
// not chainable in PyTorch (LambdaLR, CyclicLR, OneCycleLR) compute the same in both.
type lrRule interface {
	chain(s *LRScheduler, i int, cur, base float64) float64
	closed(s *LRScheduler, i int, base float64) float64
}

func newScheduler(name string, opt *Optimizer, rule lrRule) *LRScheduler {
	s := &LRScheduler{name: name, opt: opt, rule: rule, lastEpoch: -1}
	for _, g := range opt.groups {
		if !g.hasInitial {
			g.initialLR, g.hasInitial = g.h.lr, true
		}
		s.base = append(s.base, g.initialLR)
	}
	s.initialStep()
	return s
}

func (s *LRScheduler) initialStep() { s.advance(-1) }

// advance moves to the next epoch (epoch < 0) or jumps to epoch with the closed form.
func (s *LRScheduler) advance(epoch int) {
	lrs := make([]float64, len(s.opt.groups))
	if epoch < 0 {
		s.lastEpoch++
		for i, g := range s.opt.groups {
			lrs[i] = s.rule.chain(s, i, g.h.lr, s.base[i])
		}
	} else {
		s.lastEpoch = epoch
		for i := range s.opt.groups {
			lrs[i] = s.rule.closed(s, i, s.base[i])
		}
	}
	for i, g := range s.opt.groups {
		g.h.lr = lrs[i]
	}
	s.lastLR = lrs
}

// Step moves to the next epoch (or iteration) and sets the groups' rates.
func (s *LRScheduler) Step() { s.advance(-1) }

// LastLR returns the group rates the scheduler set last.
func (s *LRScheduler) LastLR() []float64 { return append([]float64(nil), s.lastLR...) }

// LastEpoch is the number of Steps taken (0 after the constructor).
func (s *LRScheduler) LastEpoch() int { return s.lastEpoch }

// Name is the PyTorch class: "StepLR", "CosineAnnealingLR", "OneCycleLR", ….
func (s *LRScheduler) Name() string { return s.name }

type stepRule struct {
	stepSize int
	gamma    float64
}

func (r stepRule) chain(s *LRScheduler, _ int, cur, _ float64) float64 {
	if s.lastEpoch == 0 || s.lastEpoch%r.stepSize != 0 {
		return cur
	}
	return cur * r.gamma
}

func (r stepRule) closed(s *LRScheduler, _ int, base float64) float64 {
	return base * pow(r.gamma, float64(s.lastEpoch/r.stepSize))
}

// NewStepLR multiplies the rates by gamma every stepSize steps (torch StepLR).
func NewStepLR(opt *Optimizer, stepSize int, gamma float64) (*LRScheduler, error) {
	if stepSize <= 0 {
		return nil, fmt.Errorf("optim: StepLR: step_size must be > 0, got %d", stepSize)
	}
	if math.IsNaN(gamma) || math.IsInf(gamma, 0) || gamma < 0 {
		return nil, fmt.Errorf("optim: StepLR: gamma must be finite and >= 0, got %v", gamma)
	}
	return newScheduler("StepLR", opt, stepRule{stepSize, gamma}), nil
}

type cosineRule struct {
	tMax   int
	etaMin float64
}

// The float64(…) conversions keep Go from fusing a*b+c into one rounding, so the sequence is
// PyTorch's to the last bit (cos is the C library's, as Python's math.cos).
func (r cosineRule) chain(s *LRScheduler, _ int, cur, base float64) float64 {
	e, t := s.lastEpoch, float64(r.tMax)
	switch {
	case e == 0:
		return cur
	case (e-1-r.tMax)%(2*r.tMax) == 0:
		return cur + float64(float64((base-r.etaMin)*(1-cos(math.Pi/t)))/2)
	}
	ratio := (1 + cos(float64(math.Pi*float64(e))/t)) / (1 + cos(float64(math.Pi*float64(e-1))/t))
	return float64(ratio*(cur-r.etaMin)) + r.etaMin
}

func (r cosineRule) closed(s *LRScheduler, _ int, base float64) float64 {
	c := 1 + cos(float64(math.Pi*float64(s.lastEpoch))/float64(r.tMax))
	return r.etaMin + float64((base-r.etaMin)*c)/2
}

// NewCosineAnnealingLR anneals the rates from their initial value to etaMin along half a cosine
// over tMax steps (torch CosineAnnealingLR; past tMax the cosine continues, rising again).
func NewCosineAnnealingLR(opt *Optimizer, tMax int, etaMin float64) (*LRScheduler, error) {
	if err := checkCosine(tMax, etaMin); err != nil {
		return nil, err
	}
	return newScheduler("CosineAnnealingLR", opt, cosineRule{tMax, etaMin}), nil
}

type linearRule struct {
	start, end float64
	total      int
}

func (r linearRule) chain(s *LRScheduler, _ int, cur, _ float64) float64 {
	e := s.lastEpoch
	switch {
	case e == 0:
		return cur * r.start
	case e > r.total:
		return cur
	}
	d := r.end - r.start
	den := float64(float64(r.total)*r.start) + float64(float64(e-1)*d)
	return cur * (1 + d/den)
}

func (r linearRule) closed(s *LRScheduler, _ int, base float64) float64 {
	f := float64((r.end-r.start)*float64(min(r.total, s.lastEpoch))) / float64(r.total)
	return base * (r.start + f)
}

// NewLinearLR scales the rates by a factor going linearly from startFactor to endFactor over
// totalIters steps, then keeps endFactor (torch LinearLR). Linear warmup is
// NewLinearLR(opt, startFactor, 1, warmupSteps).
func NewLinearLR(opt *Optimizer, startFactor, endFactor float64, totalIters int) (*LRScheduler, error) {
	if !(startFactor > 0 && startFactor <= 1) {
		return nil, fmt.Errorf("optim: LinearLR: start_factor must be in (0, 1], got %v", startFactor)
	}
	if !(endFactor >= 0 && endFactor <= 1) {
		return nil, fmt.Errorf("optim: LinearLR: end_factor must be in [0, 1], got %v", endFactor)
	}
	if totalIters <= 0 {
		return nil, fmt.Errorf("optim: LinearLR: total_iters must be > 0, got %d", totalIters)
	}
	return newScheduler("LinearLR", opt, linearRule{startFactor, endFactor, totalIters}), nil
}

// SequentialLR runs schedulers one after another, switching at the milestones (torch
// SequentialLR): scheduler k+1 restarts from the initial rates at step milestones[k].
type SequentialLR struct {
	opt        *Optimizer
	scheds     []*LRScheduler
	milestones []int
	lastEpoch  int
	lastLR     []float64
}

// NewSequentialLR chains schedulers built on opt; len(milestones) must be len(schedulers)-1,
// increasing. As in PyTorch, it resets the rates to their initial values and replays the first
// scheduler's epoch 0, undoing what the later schedulers' constructors did.
func NewSequentialLR(opt *Optimizer, schedulers []*LRScheduler, milestones []int) (*SequentialLR, error) {
	if len(schedulers) == 0 {
		return nil, fmt.Errorf("optim: SequentialLR: no schedulers")
	}
	for i, s := range schedulers {
		if s == nil || s.opt != opt {
			return nil, fmt.Errorf("optim: SequentialLR: scheduler %d does not drive this optimizer", i)
		}
	}
	if len(milestones) != len(schedulers)-1 {
		return nil, fmt.Errorf("optim: SequentialLR: %d schedulers need %d milestones, got %d",
			len(schedulers), len(schedulers)-1, len(milestones))
	}
	if !sort.IntsAreSorted(milestones) {
		return nil, fmt.Errorf("optim: SequentialLR: milestones must increase, got %v", milestones)
	}
	q := &SequentialLR{opt: opt, scheds: schedulers, milestones: append([]int(nil), milestones...)}
	for _, g := range opt.groups {
		g.h.lr = g.initialLR
	}
	for _, s := range schedulers {
		s.lastEpoch--
	}
	schedulers[0].initialStep()
	q.lastLR = schedulers[0].LastLR()
	return q, nil
}

// NewWarmupCosine is linear warmup then cosine annealing: the rates rise from startFactor times
// their initial value to it over warmupSteps steps, then fall to etaMin over the next tMax steps
// (SequentialLR of LinearLR(startFactor, 1, warmupSteps) and CosineAnnealingLR(tMax, etaMin),
// switching at warmupSteps). For a run of N steps, tMax = N - warmupSteps.
func NewWarmupCosine(opt *Optimizer, startFactor float64, warmupSteps, tMax int, etaMin float64) (*SequentialLR, error) {
	// Check both before the first constructor changes the rates.
	if err := checkCosine(tMax, etaMin); err != nil {
		return nil, err
	}
	warm, err := NewLinearLR(opt, startFactor, 1, warmupSteps)
	if err != nil {
		return nil, err
	}
	cos, err := NewCosineAnnealingLR(opt, tMax, etaMin)
	if err != nil {
		return nil, err
	}
	return NewSequentialLR(opt, []*LRScheduler{warm, cos}, []int{warmupSteps})
}

// Step advances the scheduler whose turn it is.
func (q *SequentialLR) Step() {
	q.lastEpoch++
	idx := sort.Search(len(q.milestones), func(i int) bool { return q.milestones[i] > q.lastEpoch })
	s := q.scheds[idx]
	if idx > 0 && q.milestones[idx-1] == q.lastEpoch {
		s.advance(0)
	} else {
		s.advance(-1)
	}
	q.lastLR = s.LastLR()
}

// LastLR returns the group rates set by the last Step.
func (q *SequentialLR) LastLR() []float64 { return append([]float64(nil), q.lastLR...) }

// LastEpoch is the number of Steps taken.
func (q *SequentialLR) LastEpoch() int { return q.lastEpoch }

func checkCosine(tMax int, etaMin float64) error {
	if tMax <= 0 {
		return fmt.Errorf("optim: CosineAnnealingLR: T_max must be > 0, got %d", tMax)
	}
	if math.IsNaN(etaMin) || math.IsInf(etaMin, 0) || etaMin < 0 {
		return fmt.Errorf("optim: CosineAnnealingLR: eta_min must be finite and >= 0, got %v", etaMin)
	}
	return nil
}
