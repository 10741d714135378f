package optim

import (
	"fmt"
	"math"
	"sort"

	"github.com/hotcb/hotcb/bridge"
)

type kind int

const (
	kindSGD kind = iota
	kindAdam
	kindAdamW
	kindRMSprop
	kindAdagrad
	kindAdadelta
	kindAdamax
	kindNAdam
	kindRAdam
	kindLBFGS
)

var kindNames = [...]string{"sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam", "lbfgs"}

func (k kind) String() string { return kindNames[k] }

// torchName is the kind's torch.optim class.
func (k kind) torchName() string {
	return [...]string{"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "LBFGS"}[k]
}

// Group is one parameter group: its tensors and the hyper-parameters in which it differs from
// the optimizer's defaults, by name ("lr": 1e-4, "weight_decay": 0, "betas": [2]float64{…}).
type Group struct {
	Params []*bridge.Tensor
	Hyper  map[string]any
}

// Params makes the single group of an optimizer that treats all its tensors alike.
func Params(ps ...*bridge.Tensor) []Group { return []Group{{Params: ps}} }

// SGDOptions are torch.optim.SGD's arguments; the zero value is plain SGD with learning rate 0.
type SGDOptions struct {
	LR, Momentum, Dampening, WeightDecay float64
	Nesterov, Maximize                   bool
}

// AdamOptions are torch.optim.Adam's (and AdamW's) arguments. Start from DefaultAdam or
// DefaultAdamW: zero betas and eps are valid values, not "unset".
type AdamOptions struct {
	LR                float64
	Betas             [2]float64
	Eps, WeightDecay  float64
	AMSGrad, Maximize bool
}

// DefaultAdam returns torch.optim.Adam's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
// no weight decay.
func DefaultAdam() AdamOptions {
	return AdamOptions{LR: 1e-3, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}
}

// DefaultAdamW returns torch.optim.AdamW's defaults: DefaultAdam with weight decay 1e-2.
func DefaultAdamW() AdamOptions {
	o := DefaultAdam()
	o.WeightDecay = 1e-2
	return o
}

// Optimizer updates parameter tensors from their gradients.
//
// Concurrency: an Optimizer is not safe for concurrent use. Step, ZeroGrad, the hyper-parameter
// getters and setters (Get, Set, SetParams, SetLR…), the schedulers driving it and
// StateDict/LoadStateDict must not run at the same time; the caller serialises them — typically
// by calling them all on the training goroutine, between steps (a live control plane applies
// `opt set_params` at its next safe point, not from another goroutine in the middle of a Step).
type Optimizer struct {
	kind   kind
	params []*bridge.Tensor // every group's params, in order: PyTorch's state-dict indices
	state  []paramState     // by param index
	groups []*group
	lbfgs  *lbfgsState // LBFGS's state (PyTorch keeps it as the first parameter's)

	rev       int64      // SetParams calls that changed something (Revision)
	rollbacks []Rollback // not yet taken (TakeRollbacks)
}

type group struct {
	params     []int // indices into Optimizer.params
	h          hyper
	initialLR  float64 // "initial_lr", set by the first scheduler (as PyTorch does)
	hasInitial bool
	extra      []extraKey // other keys schedulers add to the group (OneCycleLR's max_lr, …)
	trial      *trial     // the change since the last Step, if any (see trial.go)
}

// extraKey is a number a scheduler keeps in a parameter group, as PyTorch's schedulers do
// ("max_lr", "min_lr", "max_momentum", "base_momentum"): written to state dicts, not read by
// the optimizer.
type extraKey struct {
	key string
	v   float64
}

// extraKeys are the scheduler keys StateDict writes and LoadStateDict reads, in PyTorch's order.
var extraKeys = []string{"max_lr", "min_lr", "max_momentum", "base_momentum"}

func (g *group) setExtra(key string, v float64) {
	for i := range g.extra {
		if g.extra[i].key == key {
			g.extra[i].v = v
			return
		}
	}
	g.extra = append(g.extra, extraKey{key, v})
}

// stateField names a tensor of torch.optim's per-parameter state.
type stateField int

const (
	fMomentumBuffer stateField = iota // SGD, RMSprop
	fExpAvg                           // Adam, AdamW, Adamax, NAdam, RAdam
	fExpAvgSq                         // Adam, AdamW, NAdam, RAdam
	fMaxExpAvgSq                      // Adam, AdamW with amsgrad
	fSquareAvg                        // RMSprop, Adadelta
	fGradAvg                          // RMSprop, centered
	fSum                              // Adagrad
	fAccDelta                         // Adadelta
	fExpInf                           // Adamax
	numFields
)

var fieldNames = [numFields]string{"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg",
	"grad_avg", "sum", "acc_delta", "exp_inf"}

func fieldByName(name string) (stateField, bool) {
	for f, n := range fieldNames {
		if n == name {
			return stateField(f), true
		}
	}
	return 0, false
}

// paramState is torch.optim's per-parameter state; nil tensors are absent.
type paramState struct {
	step int64
	// muProduct is NAdam's mu_product, a float32 scalar in PyTorch (held here as the float64 of
	// that float32); 0 until NAdam's first update of the parameter sets it.
	muProduct float64
	t         [numFields]*bridge.Tensor
}

// field returns the slot of a tensor of the state by its PyTorch name, or nil.
func (st *paramState) field(name string) **bridge.Tensor {
	if f, ok := fieldByName(name); ok {
		return &st.t[f]
	}
	return nil
}

// mask says which tensors the state has.
func (st *paramState) mask() uint16 {
	var m uint16
	for f, t := range st.t {
		if t != nil {
			m |= 1 << f
		}
	}
	return m
}

// empty reports whether the parameter has no state at all (never updated).
func (st *paramState) empty() bool { return st.step == 0 && st.mask() == 0 && st.muProduct == 0 }

// NewSGD returns stochastic gradient descent (with momentum, Nesterov momentum, weight decay)
// as torch.optim.SGD in PyTorch 1.13.
func NewSGD(groups []Group, o SGDOptions) (*Optimizer, error) {
	return newOptimizer(kindSGD, groups, hyper{
		lr: o.LR, momentum: o.Momentum, dampening: o.Dampening, weightDecay: o.WeightDecay,
		nesterov: o.Nesterov, maximize: o.Maximize,
	})
}

// NewAdam returns Adam (L2 weight decay added to the gradient; AMSGrad optional) as
// torch.optim.Adam in PyTorch 1.13.
func NewAdam(groups []Group, o AdamOptions) (*Optimizer, error) {
	return newOptimizer(kindAdam, groups, adamHyper(o))
}

// NewAdamW returns AdamW (decoupled weight decay) as torch.optim.AdamW in PyTorch 1.13.
func NewAdamW(groups []Group, o AdamOptions) (*Optimizer, error) {
	return newOptimizer(kindAdamW, groups, adamHyper(o))
}

func adamHyper(o AdamOptions) hyper {
	return hyper{lr: o.LR, beta1: o.Betas[0], beta2: o.Betas[1], eps: o.Eps, weightDecay: o.WeightDecay,
		amsgrad: o.AMSGrad, maximize: o.Maximize}
}

func newOptimizer(k kind, groups []Group, defaults hyper) (*Optimizer, error) {
	// The defaults go through the same checks as a live Set.
	var check hyper
	for _, key := range keysOf[k] {
		if key == "beta1" || key == "beta2" {
			continue // checked as "betas"
		}
		if err := applyKey(k, &check, key, defaults.get(key), AllGroups); err != nil {
			return nil, fmt.Errorf("optim: new %s: %w", k, err)
		}
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("optim: new %s: no parameter groups", k)
	}
	if k == kindLBFGS && len(groups) != 1 {
		return nil, fmt.Errorf("optim: new %s: LBFGS takes one parameter group, got %d (as torch.optim.LBFGS)", k, len(groups))
	}
	o := &Optimizer{kind: k}
	seen := map[*bridge.Tensor]int{}
	for gi, g := range groups {
		ng := &group{h: defaults}
		for key, v := range sortedItems(g.Hyper) {
			if err := applyKey(k, &ng.h, key, v, gi); err != nil {
				return nil, fmt.Errorf("optim: new %s: %w", k, err)
			}
		}
		for pi, p := range g.Params {
			if p == nil {
				return nil, fmt.Errorf("optim: new %s: group %d: parameter %d is nil", k, gi, pi)
			}
			if p.IsFreed() {
				return nil, fmt.Errorf("optim: new %s: group %d: parameter %d is freed", k, gi, pi)
			}
			if prev, dup := seen[p]; dup {
				return nil, fmt.Errorf("optim: new %s: group %d: parameter %d is also parameter %d of an earlier group",
					k, gi, pi, prev)
			}
			seen[p] = len(o.params)
			ng.params = append(ng.params, len(o.params))
			o.params = append(o.params, p)
		}
		o.groups = append(o.groups, ng)
	}
	o.state = make([]paramState, len(o.params))
	for gi, g := range o.groups {
		if err := o.checkFits(gi, &g.h, keysOf[k], gi); err != nil {
			return nil, fmt.Errorf("optim: new %s: %w", k, err)
		}
	}
	switch k {
	case kindAdagrad:
		// As torch.optim.Adagrad, the state is made at once: step 0 and a sum filled with the
		// constructor's initial_accumulator_value (not a group's own: PyTorch 1.13 reads the
		// argument).
		if err := bridge.Try(func() {
			for pi, p := range o.params {
				o.state[pi].t[fSum] = bridge.Keep(bridge.Full(p.Shape(), defaults.initialAcc, p.DType(), p.Device()))
			}
		}); err != nil {
			return nil, fmt.Errorf("optim: new %s: %w", k, err)
		}
	case kindLBFGS:
		o.lbfgs = &lbfgsState{}
	}
	return o, nil
}

// sortedItems iterates a map in key order, so that errors are deterministic.
func sortedItems(m map[string]any) func(func(string, any) bool) {
	return func(yield func(string, any) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// Name is the optimizer's kind in lower case: "sgd", "adam", "adamw", "rmsprop", "adagrad",
// "adadelta", "adamax", "nadam", "radam" or "lbfgs".
func (o *Optimizer) Name() string { return o.kind.String() }

// TorchName is the torch.optim class the optimizer computes as: "SGD", "Adam", "RMSprop", ….
func (o *Optimizer) TorchName() string { return o.kind.torchName() }

// NumGroups is the number of parameter groups.
func (o *Optimizer) NumGroups() int { return len(o.groups) }

// Params returns every parameter, group after group: index i is "state.<i>" in StateDict.
func (o *Optimizer) Params() []*bridge.Tensor { return append([]*bridge.Tensor(nil), o.params...) }

// GroupParams returns one group's parameters.
func (o *Optimizer) GroupParams(group int) []*bridge.Tensor {
	out := make([]*bridge.Tensor, len(o.groups[group].params))
	for i, pi := range o.groups[group].params {
		out[i] = o.params[pi]
	}
	return out
}

// ZeroGrad drops every parameter's gradient (set_to_none, PyTorch 2's default): the next
// backward allocates fresh ones, and Step skips parameters that got none.
func (o *Optimizer) ZeroGrad() {
	for _, p := range o.params {
		p.ZeroGrad()
	}
}

// Step updates every parameter that has a gradient, with autograd off (bridge.NoGrad). Tensor
// failures panic with *bridge.Error, as bridge operations do — except in a group whose
// hyper-parameters were changed (SetParams) since the last Step: there the update is first tried
// on scratch tensors, then watched, and if libtorch raises in either the change is rolled back and
// the step completed with the previous values (see Rollback and "Changes that fail" in trial.go).
//
// LBFGS re-evaluates the model several times per step and needs StepClosure: its Step panics.
func (o *Optimizer) Step() {
	if o.kind == kindLBFGS {
		panic(&bridge.Error{Op: "optim.lbfgs", Msg: "LBFGS needs a closure that re-evaluates the loss: call StepClosure"})
	}
	bridge.NoGrad(func() {
		for gi, g := range o.groups {
			if g.trial != nil {
				o.trialStep(gi, g)
				continue
			}
			for _, pi := range g.params {
				o.update(&g.h, pi, nil)
			}
		}
	})
}

// StepClosure is torch.optim's step(closure): closure clears the gradients, computes the loss,
// calls Backward on it and returns it; StepClosure returns the loss of its first call. LBFGS
// calls closure as often as its iterations and line search need; the other optimizers call it
// once, with autograd on, then Step.
func (o *Optimizer) StepClosure(closure func() *bridge.Tensor) *bridge.Tensor {
	if closure == nil {
		panic(&bridge.Error{Op: "optim." + o.kind.String(), Msg: "StepClosure: nil closure"})
	}
	if o.kind == kindLBFGS {
		return o.lbfgsStep(closure)
	}
	var loss *bridge.Tensor
	bridge.EnableGrad(func() { loss = closure() })
	o.Step()
	return loss
}

// update applies one step to parameter pi, if it has a gradient; tr (nil on the fast path)
// records what the update wrote.
func (o *Optimizer) update(h *hyper, pi int, tr *trace) {
	p := o.params[pi]
	grad := p.Grad()
	if grad == nil {
		return
	}
	if tr != nil {
		tr.ran = true
	}
	o.kind.update(h, p, grad, &o.state[pi], tr)
}

func (k kind) update(h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	switch k {
	case kindSGD:
		sgdStep(h, p, grad, st, tr)
	case kindAdam, kindAdamW:
		adamStep(k, h, p, grad, st, tr)
	case kindRMSprop:
		rmspropStep(h, p, grad, st, tr)
	case kindAdagrad:
		adagradStep(h, p, grad, st, tr)
	case kindAdadelta:
		adadeltaStep(h, p, grad, st, tr)
	case kindAdamax:
		adamaxStep(h, p, grad, st, tr)
	case kindNAdam:
		nadamStep(h, p, grad, st, tr)
	case kindRAdam:
		radamStep(h, p, grad, st, tr)
	case kindLBFGS:
		lbfgsProbeUpdate(h, p, grad)
	}
}

// temps collects the tensors one parameter's update creates, to free them at once: the garbage
// collector would free them too, but later, and a gradient handle freed now lets the next
// backward reuse the memory at once.
type temps struct {
	ts [10]*bridge.Tensor
	n  int
}

func (t *temps) add(x *bridge.Tensor) *bridge.Tensor {
	t.ts[t.n] = x
	t.n++
	return x
}

func (t *temps) free() {
	for i := range t.n {
		t.ts[i].Free()
		t.ts[i] = nil
	}
	t.n = 0
}

// gradTerm is the gradient an update uses: negated with maximize, plus weight_decay·p (L2).
func gradTerm(tmp *temps, h *hyper, p, grad *bridge.Tensor) *bridge.Tensor {
	g := grad
	if h.maximize {
		g = tmp.add(g.Neg())
	}
	if h.weightDecay != 0 {
		g = tmp.add(g.AddScaled(p, h.weightDecay))
	}
	return g
}

// The writes of one parameter's update to its state and to the parameter, numbered in the order
// they happen (see trace). A trial step that fails after some of them resumes at the first one
// not done.
const (
	sgdBufDecay = iota // momentum_buffer *= momentum
	sgdBufAdd          // momentum_buffer += (1-dampening)*d, or created as d
	sgdParam           // param -= lr*d
)

const (
	adamDecay     = iota // AdamW: param *= 1 - lr*weight_decay
	adamAvgDecay         // exp_avg *= beta1
	adamAvgAdd           // exp_avg += (1-beta1)*g
	adamSqDecay          // exp_avg_sq *= beta2
	adamSqAdd            // exp_avg_sq += (1-beta2)*g*g
	adamMaxUpdate        // amsgrad: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq)
	adamParam            // param -= step_size * exp_avg / denom
)

func sgdStep(h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	var tmp temps
	defer tmp.free()
	tr.begin(st)
	d := gradTerm(&tmp, h, p, grad)
	if h.momentum != 0 {
		buf := st.t[fMomentumBuffer]
		if buf == nil {
			if tr.next(sgdBufAdd) {
				buf = bridge.Keep(d.Clone()) // state outlives a bridge.Scope around the step
				st.t[fMomentumBuffer] = buf
				tr.done(sgdBufAdd)
			}
		} else {
			if tr.next(sgdBufDecay) {
				buf.MulScalarInPlace(h.momentum)
				tr.done(sgdBufDecay)
			}
			if tr.next(sgdBufAdd) {
				buf.AddInPlace(d, 1-h.dampening)
				tr.done(sgdBufAdd)
			}
		}
		if h.nesterov {
			d = tmp.add(d.AddScaled(buf, h.momentum))
		} else {
			d = buf
		}
	}
	if tr.next(sgdParam) {
		p.AddInPlace(d, -h.lr)
		tr.done(sgdParam)
	}
}

// ensure returns the state tensor f, creating it as zeros like p (kept: state outlives a
// bridge.Scope around the step) when absent; a trial step records the creation.
func ensure(st *paramState, f stateField, p *bridge.Tensor, tr *trace) *bridge.Tensor {
	if st.t[f] == nil {
		st.t[f] = bridge.Keep(zerosLike(p))
		tr.created(&st.t[f])
	}
	return st.t[f]
}

// ensurePair returns the state buffers a and b of a parameter, creating both when a is absent
// — both are made before either is kept, so a failure leaves neither — and b alone when only b
// is.
func ensurePair(st *paramState, a, b stateField, p *bridge.Tensor, tr *trace) (*bridge.Tensor, *bridge.Tensor) {
	if st.t[a] == nil {
		x, y := zerosLike(p), zerosLike(p)
		st.t[a], st.t[b] = bridge.Keep(x), bridge.Keep(y)
		tr.created(&st.t[a], &st.t[b])
	}
	return st.t[a], ensure(st, b, p, tr)
}

// movingAvg makes avg = beta·avg + (1-beta)·g as the two writes numbered decay (avg *= beta) and
// decay+1 (avg += (1-beta)·g).
func movingAvg(tr *trace, avg, g *bridge.Tensor, beta float64, decay int) {
	if tr.next(decay) {
		avg.MulScalarInPlace(beta)
		tr.done(decay)
	}
	if tr.next(decay + 1) {
		avg.AddInPlace(g, 1-beta)
		tr.done(decay + 1)
	}
}

// movingAvgSq makes avg = beta·avg + (1-beta)·g² as the two writes numbered decay (avg *= beta)
// and decay+1 (avg += (1-beta)·g·g).
func movingAvgSq(tr *trace, avg, g *bridge.Tensor, beta float64, decay int) {
	if tr.next(decay) {
		avg.MulScalarInPlace(beta)
		tr.done(decay)
	}
	if tr.next(decay + 1) {
		avg.AddcmulInPlace(g, g, 1-beta)
		tr.done(decay + 1)
	}
}

// adamMoments updates Adam's moment estimates from the gradient term g — exp_avg = beta1·exp_avg
// + (1-beta1)·g, then exp_avg_sq = beta2·exp_avg_sq + (1-beta2)·g² — as the four writes
// numbered first … first+3 (Adam's, NAdam's and RAdam's first four).
func adamMoments(tr *trace, h *hyper, g, expAvg, expAvgSq *bridge.Tensor, first int) {
	movingAvg(tr, expAvg, g, h.beta1, first)
	movingAvgSq(tr, expAvgSq, g, h.beta2, first+2)
}

func adamStep(k kind, h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	var tmp temps
	defer tmp.free()
	tr.begin(st)
	expAvg, expAvgSq := ensurePair(st, fExpAvg, fExpAvgSq, p, tr)
	if h.amsgrad {
		// Also when amsgrad was switched on live: max(0, v) = v from here on.
		ensure(st, fMaxExpAvgSq, p, tr)
	}
	if !tr.resuming() {
		st.step++
	}
	g := grad
	if h.maximize {
		g = tmp.add(g.Neg())
	}
	if k == kindAdamW {
		// Decoupled weight decay; skipped when it multiplies by exactly 1.
		if f := 1 - float64(h.lr*h.weightDecay); f != 1 && tr.next(adamDecay) {
			p.MulScalarInPlace(f)
			tr.done(adamDecay)
		}
	} else if h.weightDecay != 0 {
		g = tmp.add(g.AddScaled(p, h.weightDecay))
	}
	adamMoments(tr, h, g, expAvg, expAvgSq, adamAvgDecay)

	step := float64(st.step)
	biasCorrection1 := 1 - pow(h.beta1, step)
	biasCorrection2 := 1 - pow(h.beta2, step)
	stepSize := h.lr / biasCorrection1
	bc2Sqrt := math.Sqrt(biasCorrection2)

	v := expAvgSq
	if h.amsgrad {
		m := st.t[fMaxExpAvgSq]
		if tr.next(adamMaxUpdate) {
			m.CopyFrom(tmp.add(m.Maximum(expAvgSq)))
			tr.done(adamMaxUpdate)
		}
		v = m
	}
	if tr.next(adamParam) {
		denom := tmp.add(v.Sqrt())
		denom.DivScalarInPlace(bc2Sqrt)
		denom.AddScalarInPlace(h.eps)
		p.AddcdivInPlace(expAvg, denom, -stepSize)
		tr.done(adamParam)
	}
}

// zerosLike returns zeros with p's shape, dtype and device.
func zerosLike(p *bridge.Tensor) *bridge.Tensor {
	return bridge.Zeros(p.Shape(), p.DType(), p.Device())
}
