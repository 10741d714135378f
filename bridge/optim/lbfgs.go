package optim

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// L-BFGS, as torch.optim.LBFGS in PyTorch 1.13 (itself after minFunc): each StepClosure runs up
// to max_iter iterations, each a two-loop recursion over the last history_size curvature pairs,
// then a step of lr (the first scaled by min(1, 1/|g|₁)) or, with line_search_fn "strong_wolfe",
// a line search satisfying the strong Wolfe conditions.
//
// PyTorch mixes Python floats and 0-d tensors in this algorithm (the step t, ys, ro, H_diag, the
// line search's brackets), and the two round differently: an operation on a tensor of the
// parameters' dtype rounds to that dtype, a Python scalar meeting a tensor is first rounded to it,
// Python floats stay float64. num carries which one a value is, so that the steps agree with
// PyTorch's bit for bit.

// LBFGSOptions are torch.optim.LBFGS's arguments; start from DefaultLBFGS.
type LBFGSOptions struct {
	LR      float64
	MaxIter int // iterations per StepClosure
	// MaxEval bounds the closure calls per StepClosure; 0 means MaxIter·5/4 (PyTorch's None).
	MaxEval         int
	ToleranceGrad   float64 // stop when max |gradient| <= this
	ToleranceChange float64 // stop when the step or the loss changes by less
	HistorySize     int
	LineSearch      string // "" (none: a fixed step) or "strong_wolfe"
}

// DefaultLBFGS returns torch.optim.LBFGS's defaults: lr 1, max_iter 20, max_eval 25,
// tolerance_grad 1e-7, tolerance_change 1e-9, history_size 100, no line search.
func DefaultLBFGS() LBFGSOptions {
	return LBFGSOptions{LR: 1, MaxIter: 20, ToleranceGrad: 1e-7, ToleranceChange: 1e-9, HistorySize: 100}
}

// NewLBFGS returns L-BFGS as torch.optim.LBFGS in PyTorch 1.13: one parameter group, all
// parameters on one device; step with StepClosure. Its state is the flat direction, the last
// history_size curvature pairs and the previous flat gradient (about (2·history_size+2) times the
// parameters' size). Each step replaces tensors of that state and frees the old ones: what
// StateDict and TorchStateDict return is valid until the next StepClosure (save or Clone it
// before). Unlike PyTorch, history_size may be changed after the first steps (a smaller one drops
// the oldest pairs).
func NewLBFGS(params []*bridge.Tensor, o LBFGSOptions) (*Optimizer, error) {
	maxEval := o.MaxEval
	if maxEval == 0 {
		maxEval = o.MaxIter * 5 / 4
	}
	return newOptimizer(kindLBFGS, Params(params...), hyper{lr: o.LR, maxIter: o.MaxIter, maxEval: maxEval,
		toleranceGrad: o.ToleranceGrad, toleranceChange: o.ToleranceChange, historySize: o.HistorySize,
		lineSearch: o.LineSearch})
}

// num is a number of the algorithm as PyTorch holds it: a Python float, or a 0-d tensor of the
// flat gradient's dtype (ten).
type num struct {
	v   float64
	ten bool
}

func py(v float64) num { return num{v: v} }

// lbfgsState is torch.optim.LBFGS's state (PyTorch files it under the first parameter).
type lbfgsState struct {
	funcEvals, nIter int
	d                *bridge.Tensor // the last direction; nil before the first iteration
	t                num            // the last step size
	oldDirs, oldStps []*bridge.Tensor
	ro               []num
	hDiag            num
	prevFlatGrad     *bridge.Tensor
	prevLoss         float64
	al               []num  // "al": history_size entries, made at the second iteration
	alSet            []bool // which al entries are not None
	hasAl            bool
}

// clone copies the state for a trial step: the tensors a step writes in place are cloned, the
// lists copied.
func (s *lbfgsState) clone() *lbfgsState {
	c := *s
	c.oldDirs = append([]*bridge.Tensor(nil), s.oldDirs...)
	c.oldStps = append([]*bridge.Tensor(nil), s.oldStps...)
	c.ro = append([]num(nil), s.ro...)
	c.al = append([]num(nil), s.al...)
	c.alSet = append([]bool(nil), s.alSet...)
	if s.prevFlatGrad != nil {
		c.prevFlatGrad = bridge.Keep(s.prevFlatGrad.Clone())
	}
	return &c
}

// lbfgsRun is one LBFGS step with hyper-parameters h.
type lbfgsRun struct {
	o       *Optimizer
	h       *hyper
	st      *lbfgsState
	closure func() *bridge.Tensor
	rnd     func(float64) float64 // rounding to the flat gradient's dtype
	calls   int                   // closure calls
	// protect holds the tensors the run must not free: those of the state a trial step copied.
	protect map[*bridge.Tensor]bool
}

// rounder returns the rounding of a float64 to dt, as storing it in a 0-d tensor of dt does.
func rounder(dt bridge.DType) func(float64) float64 {
	switch dt {
	case bridge.Float64:
		return func(x float64) float64 { return x }
	case bridge.Float32:
		return f32
	}
	return func(x float64) float64 {
		t := bridge.Scalar(x, dt)
		defer t.Free()
		return t.Item()
	}
}

// Arithmetic on nums, with PyTorch's rounding.
func (r *lbfgsRun) op(a, b num, f func(x, y float64) float64) num {
	switch {
	case a.ten && b.ten:
		return num{r.rnd(f(a.v, b.v)), true}
	case a.ten:
		return num{r.rnd(f(a.v, r.rnd(b.v))), true}
	case b.ten:
		return num{r.rnd(f(r.rnd(a.v), b.v)), true}
	}
	return num{f(a.v, b.v), false}
}

func (r *lbfgsRun) add(a, b num) num { return r.op(a, b, func(x, y float64) float64 { return x + y }) }
func (r *lbfgsRun) sub(a, b num) num { return r.op(a, b, func(x, y float64) float64 { return x - y }) }
func (r *lbfgsRun) mul(a, b num) num { return r.op(a, b, func(x, y float64) float64 { return x * y }) }

// div: a Python float divided by a tensor is the tensor's reciprocal times the float.
func (r *lbfgsRun) div(a, b num) num {
	if !a.ten && b.ten {
		return num{r.rnd(r.rnd(1/b.v) * r.rnd(a.v)), true}
	}
	return r.op(a, b, func(x, y float64) float64 { return x / y })
}

// cmp compares as PyTorch does: a Python float meeting a tensor is rounded to its dtype.
func (r *lbfgsRun) cmp(a, b num) (x, y float64) {
	switch {
	case a.ten && !b.ten:
		return a.v, r.rnd(b.v)
	case b.ten && !a.ten:
		return r.rnd(a.v), b.v
	}
	return a.v, b.v
}

func (r *lbfgsRun) lt(a, b num) bool { x, y := r.cmp(a, b); return x < y }
func (r *lbfgsRun) le(a, b num) bool { x, y := r.cmp(a, b); return x <= y }

// min and max are Python's builtins: the first argument unless the second is smaller (larger).
func (r *lbfgsRun) min(a, b num) num {
	if r.lt(b, a) {
		return b
	}
	return a
}

func (r *lbfgsRun) max(a, b num) num {
	if r.lt(a, b) {
		return b
	}
	return a
}

func abs(a num) num { return num{math.Abs(a.v), a.ten} }

// scalar reads a 0-d tensor and frees it.
func scalar(t *bridge.Tensor) num {
	defer t.Free()
	return num{t.Item(), true}
}

func dot(a, b *bridge.Tensor) num { return scalar(aten.Dot(a, b)) }

func absMax(t *bridge.Tensor) num {
	a := t.Abs()
	defer a.Free()
	return scalar(a.Max())
}

func absSum(t *bridge.Tensor) num {
	a := t.Abs()
	defer a.Free()
	return scalar(a.Sum())
}

// eval calls the closure with autograd on and returns its loss as a Python float.
func (r *lbfgsRun) eval() (loss *bridge.Tensor, f float64) {
	bridge.EnableGrad(func() { loss = r.closure() })
	r.calls++
	if loss == nil {
		panic(&bridge.Error{Op: "optim.lbfgs", Msg: "the closure returned a nil loss"})
	}
	return loss, loss.Item()
}

// flatGrad concatenates the parameters' gradients (zeros where a parameter has none).
func (r *lbfgsRun) flatGrad() *bridge.Tensor {
	views := make([]*bridge.Tensor, len(r.o.params))
	defer freeAll(views)
	for i, p := range r.o.params {
		if g := p.Grad(); g != nil {
			views[i] = g.Reshape(-1)
			g.Free()
		} else {
			views[i] = bridge.Zeros(bridge.Shape{p.Numel()}, p.DType(), p.Device())
		}
	}
	return bridge.Cat(views, 0)
}

// lbfgsAddGrad numbers LBFGS's parameter write for faultHook (trial steps only).
const lbfgsAddGrad = 0

// addGrad adds step·update (flat) to the parameters.
func (r *lbfgsRun) addGrad(step num, update *bridge.Tensor) {
	if r.protect != nil && faultHook != nil {
		faultHook(lbfgsAddGrad)
	}
	var off int64
	for _, p := range r.o.params {
		n := p.Numel()
		v := update.Narrow(0, off, n)
		w := v.View(p.Shape()...)
		p.AddInPlace(w, step.v)
		w.Free()
		v.Free()
		off += n
	}
}

func (r *lbfgsRun) cloneParams() []*bridge.Tensor {
	out := make([]*bridge.Tensor, len(r.o.params))
	for i, p := range r.o.params {
		out[i] = p.Clone()
	}
	return out
}

func (r *lbfgsRun) setParams(xs []*bridge.Tensor) {
	for i, p := range r.o.params {
		p.CopyFrom(xs[i])
	}
}

// directional evaluates the loss and gradient at x + t·d, then puts the parameters back to x.
func (r *lbfgsRun) directional(x []*bridge.Tensor, t num, d *bridge.Tensor) (float64, *bridge.Tensor) {
	r.addGrad(t, d)
	_, f := r.eval()
	g := r.flatGrad()
	r.setParams(x)
	return f, g
}

// lbfgsStep is StepClosure for LBFGS.
func (o *Optimizer) lbfgsStep(closure func() *bridge.Tensor) *bridge.Tensor {
	g := o.groups[0]
	if g.trial != nil {
		return o.lbfgsTrialStep(g, closure)
	}
	var loss *bridge.Tensor
	bridge.NoGrad(func() {
		r := &lbfgsRun{o: o, h: &g.h, st: o.lbfgs, closure: closure}
		loss = r.step()
	})
	return loss
}

// lbfgsTrialStep is lbfgsStep after a hyper-parameter change: it probes the change, then runs
// the step on a copy of the state with the parameters saved; if libtorch raises, the parameters
// and the state are put back, the change is rolled back and the step rerun with the previous
// values (the closure runs again from the start).
func (o *Optimizer) lbfgsTrialStep(g *group, closure func() *bridge.Tensor) *bridge.Tensor {
	tr := o.beginTrial(0, g)
	if tr == nil {
		return o.lbfgsStep(closure)
	}
	var loss *bridge.Tensor
	var saved []*bridge.Tensor
	st := o.lbfgs.clone()
	r := &lbfgsRun{o: o, h: &g.h, st: st, closure: closure, protect: map[*bridge.Tensor]bool{}}
	for _, t := range o.lbfgs.tensors() {
		r.protect[t] = true
	}
	err := bridge.Try(func() {
		bridge.NoGrad(func() {
			saved = r.cloneParams()
			loss = r.step()
		})
	})
	if err == nil {
		freeAll(saved)
		o.lbfgs.free(st)
		o.lbfgs = st
		return loss
	}
	if tr.notTheChange(&g.h, err) || saved == nil {
		panic(err) // not the change's doing, or before the parameters were saved
	}
	bridge.NoGrad(func() { r.setParams(saved) })
	freeAll(saved)
	st.free(o.lbfgs)
	left := ""
	if r.calls > 0 {
		left = fmt.Sprintf("the closure ran %d time(s) in the failed attempt (parameters and LBFGS state were put back)", r.calls)
	}
	o.rollBack(0, g, tr, err, left)
	return o.lbfgsStep(closure)
}

// free frees the tensors of s that keep (the state kept instead) does not hold.
func (s *lbfgsState) free(keep *lbfgsState) {
	held := map[*bridge.Tensor]bool{}
	for _, t := range keep.tensors() {
		held[t] = true
	}
	for _, t := range s.tensors() {
		if !held[t] {
			t.Free()
		}
	}
}

func (s *lbfgsState) tensors() []*bridge.Tensor {
	var out []*bridge.Tensor
	for _, t := range append(append([]*bridge.Tensor{s.d, s.prevFlatGrad}, s.oldDirs...), s.oldStps...) {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// step is torch.optim.LBFGS.step(closure).
func (r *lbfgsRun) step() *bridge.Tensor {
	h, st := r.h, r.st
	origLoss, loss := r.eval()
	currentEvals := 1
	st.funcEvals++
	flatGrad := r.flatGrad()
	r.rnd = rounder(flatGrad.DType())
	tolGrad, tolChange := py(h.toleranceGrad), py(h.toleranceChange)
	if r.le(absMax(flatGrad), tolGrad) {
		flatGrad.Free()
		return origLoss
	}
	d, t := st.d, st.t
	prevFlatGrad, prevLoss := st.prevFlatGrad, st.prevLoss
	var temps []*bridge.Tensor // to free when the step ends
	defer func() {
		for _, t := range temps {
			if !r.protect[t] {
				t.Free()
			}
		}
	}()
	optCond := false
	for nIter := 1; nIter <= h.maxIter; nIter++ {
		st.nIter++
		if st.nIter == 1 {
			d = flatGrad.Neg()
			st.oldDirs, st.oldStps, st.ro = nil, nil, nil
			st.hDiag = py(1)
		} else {
			y := flatGrad.Sub(prevFlatGrad)
			s := d.MulScalar(t.v)
			ys := dot(y, s)
			if r.lt(py(1e-10), ys) {
				// PyTorch drops the oldest pair when the history is full; a history_size made
				// smaller live drops as many as it takes (PyTorch fails on any change of it).
				for len(st.oldDirs) >= h.historySize {
					temps = append(temps, st.oldDirs[0], st.oldStps[0])
					st.oldDirs, st.oldStps, st.ro = st.oldDirs[1:], st.oldStps[1:], st.ro[1:]
				}
				st.oldDirs = append(st.oldDirs, bridge.Keep(y))
				st.oldStps = append(st.oldStps, bridge.Keep(s))
				st.ro = append(st.ro, r.div(py(1), ys))
				st.hDiag = r.div(ys, dot(y, y))
			} else {
				temps = append(temps, y, s)
			}
			if !st.hasAl {
				// state['al'] = [None] * history_size, made once: a smaller history_size set
				// later keeps its length, a larger one grows it (PyTorch would fail).
				st.al, st.alSet, st.hasAl = make([]num, h.historySize), make([]bool, h.historySize), true
			}
			for len(st.al) < len(st.oldDirs) {
				st.al, st.alSet = append(st.al, num{}), append(st.alSet, false)
			}
			q := flatGrad.Neg()
			for i := len(st.oldDirs) - 1; i >= 0; i-- {
				st.al[i], st.alSet[i] = r.mul(dot(st.oldStps[i], q), st.ro[i]), true
				q.AddInPlace(st.oldDirs[i], -st.al[i].v)
			}
			// d = r = q * H_diag: a copy when H_diag is still the Python int 1.
			dn := q.MulScalar(st.hDiag.v)
			q.Free()
			for i := range st.oldDirs {
				be := r.mul(dot(st.oldDirs[i], dn), st.ro[i])
				dn.AddInPlace(st.oldStps[i], r.sub(st.al[i], be).v)
			}
			if d != st.d {
				temps = append(temps, d)
			}
			d = dn
		}
		if prevFlatGrad == nil {
			prevFlatGrad = flatGrad.Clone()
		} else {
			prevFlatGrad.CopyFrom(flatGrad)
		}
		prevLoss = loss
		if st.nIter == 1 {
			t = r.mul(r.min(py(1), r.div(py(1), absSum(flatGrad))), py(h.lr))
		} else {
			t = py(h.lr)
		}
		gtd := dot(flatGrad, d)
		if r.lt(r.sub(py(0), tolChange), gtd) {
			break
		}
		lsEvals := 0
		if h.lineSearch != "" {
			x := r.cloneParams()
			var g *bridge.Tensor
			loss, g, t, lsEvals = r.strongWolfe(x, t, d, loss, flatGrad, gtd)
			freeAll(x)
			temps = append(temps, flatGrad)
			flatGrad = g
			r.addGrad(t, d)
			optCond = r.le(absMax(flatGrad), tolGrad)
		} else {
			r.addGrad(t, d)
			if nIter != h.maxIter {
				_, loss = r.eval()
				temps = append(temps, flatGrad)
				flatGrad = r.flatGrad()
				optCond = r.le(absMax(flatGrad), tolGrad)
				lsEvals = 1
			}
		}
		currentEvals += lsEvals
		st.funcEvals += lsEvals
		if nIter == h.maxIter || currentEvals >= h.maxEval || optCond {
			break
		}
		dt := d.MulScalar(t.v)
		small := r.le(absMax(dt), tolChange)
		dt.Free()
		if small || math.Abs(loss-prevLoss) < h.toleranceChange {
			break
		}
	}
	temps = append(temps, flatGrad)
	if st.d != nil && st.d != d {
		temps = append(temps, st.d)
	}
	st.d, st.t = bridge.Keep(d), t
	st.prevFlatGrad, st.prevLoss = bridge.Keep(prevFlatGrad), prevLoss
	return origLoss
}

// strongWolfe is torch.optim.lbfgs._strong_wolfe: a line search along d from the parameters x
// (loss f, flat gradient g, directional derivative gtd) starting at step t. It returns the loss,
// flat gradient and step found and the closure calls it made.
func (r *lbfgsRun) strongWolfe(x []*bridge.Tensor, t num, d *bridge.Tensor, f float64, g *bridge.Tensor, gtd num) (float64, *bridge.Tensor, num, int) {
	const c1, c2, maxLS = 1e-4, 0.9, 25
	tolChange := py(1e-9) // _strong_wolfe's own default: LBFGS does not pass its tolerance_change
	dNorm := absMax(d)
	var made []*bridge.Tensor // every gradient made here; all but the one returned are freed
	keep := func(t *bridge.Tensor) *bridge.Tensor { made = append(made, t); return t }
	g = keep(g.Clone())
	fNew, gNew := r.directional(x, t, d)
	keep(gNew)
	lsEvals := 1
	gtdNew := dot(gNew, d)
	tPrev, fPrev, gPrev, gtdPrev := py(0), f, g, gtd
	done := false
	lsIter := 0
	var bracket []num
	var bracketF []float64
	var bracketG []*bridge.Tensor
	var bracketGtd []num
	// armijo: f_new > f + c1·t·gtd fails the sufficient decrease condition.
	armijoFails := func(fNew float64, t num) bool {
		return r.lt(r.add(py(f), r.mul(r.mul(py(c1), t), gtd)), py(fNew))
	}
	curvatureHolds := func(gtdNew num) bool { return r.le(abs(gtdNew), r.mul(py(-c2), gtd)) }
	for lsIter < maxLS {
		if armijoFails(fNew, t) || (lsIter > 1 && fNew >= fPrev) {
			bracket, bracketF = []num{tPrev, t}, []float64{fPrev, fNew}
			bracketG, bracketGtd = []*bridge.Tensor{gPrev, keep(gNew.Clone())}, []num{gtdPrev, gtdNew}
			break
		}
		if curvatureHolds(gtdNew) {
			bracket, bracketF, bracketG = []num{t}, []float64{fNew}, []*bridge.Tensor{gNew}
			done = true
			break
		}
		if r.le(py(0), gtdNew) {
			bracket, bracketF = []num{tPrev, t}, []float64{fPrev, fNew}
			bracketG, bracketGtd = []*bridge.Tensor{gPrev, keep(gNew.Clone())}, []num{gtdPrev, gtdNew}
			break
		}
		// Interpolate (cubic) towards a step between 1.01·t and 10·t.
		minStep := r.add(t, r.mul(py(0.01), r.sub(t, tPrev)))
		maxStep := r.mul(t, py(10))
		tmp := t
		t = r.cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, &[2]num{minStep, maxStep})
		tPrev, fPrev, gPrev, gtdPrev = tmp, fNew, keep(gNew.Clone()), gtdNew
		fNew, gNew = r.directional(x, t, d)
		keep(gNew)
		lsEvals++
		gtdNew = dot(gNew, d)
		lsIter++
	}
	if lsIter == maxLS {
		bracket, bracketF, bracketG = []num{py(0), t}, []float64{f, fNew}, []*bridge.Tensor{g, gNew}
	}
	// Zoom: shrink the bracket until a step satisfies the conditions.
	insufProgress := false
	lowPos, highPos := 0, 1
	if bracketF[0] > bracketF[len(bracketF)-1] {
		lowPos, highPos = 1, 0
	}
	maxOf := func() num { return r.max(bracket[0], bracket[1]) }
	minOf := func() num { return r.min(bracket[0], bracket[1]) }
	for !done && lsIter < maxLS {
		if r.lt(r.mul(abs(r.sub(bracket[1], bracket[0])), dNorm), tolChange) {
			break
		}
		t = r.cubicInterpolate(bracket[0], bracketF[0], bracketGtd[0], bracket[1], bracketF[1], bracketGtd[1], nil)
		// Keep away from the bracket's ends (10% of its width) when progress is slow.
		hi, lo := maxOf(), minOf()
		eps := r.mul(py(0.1), r.sub(hi, lo))
		if r.lt(r.min(r.sub(hi, t), r.sub(t, lo)), eps) {
			if insufProgress || r.le(hi, t) || r.le(t, lo) {
				if r.lt(abs(r.sub(t, hi)), abs(r.sub(t, lo))) {
					t = r.sub(hi, eps)
				} else {
					t = r.add(lo, eps)
				}
				insufProgress = false
			} else {
				insufProgress = true
			}
		} else {
			insufProgress = false
		}
		fNew, gNew = r.directional(x, t, d)
		keep(gNew)
		lsEvals++
		gtdNew = dot(gNew, d)
		lsIter++
		if armijoFails(fNew, t) || fNew >= bracketF[lowPos] {
			bracket[highPos], bracketF[highPos] = t, fNew
			bracketG[highPos], bracketGtd[highPos] = keep(gNew.Clone()), gtdNew
			if bracketF[0] <= bracketF[1] {
				lowPos, highPos = 0, 1
			} else {
				lowPos, highPos = 1, 0
			}
		} else {
			if curvatureHolds(gtdNew) {
				done = true
			} else if r.le(py(0), r.mul(gtdNew, r.sub(bracket[highPos], bracket[lowPos]))) {
				bracket[highPos], bracketF[highPos] = bracket[lowPos], bracketF[lowPos]
				bracketG[highPos], bracketGtd[highPos] = bracketG[lowPos], bracketGtd[lowPos]
			}
			bracket[lowPos], bracketF[lowPos] = t, fNew
			bracketG[lowPos], bracketGtd[lowPos] = keep(gNew.Clone()), gtdNew
		}
	}
	out := bracketG[lowPos]
	for _, m := range made {
		if m != out {
			m.Free()
		}
	}
	return bracketF[lowPos], out, bracket[lowPos], lsEvals
}

// cubicInterpolate is torch.optim.lbfgs._cubic_interpolate: the minimiser of the cubic through
// (x1, f1) and (x2, f2) with slopes g1 and g2, clamped to bounds (or [x1, x2]).
func (r *lbfgsRun) cubicInterpolate(x1 num, f1 float64, g1 num, x2 num, f2 float64, g2 num, bounds *[2]num) num {
	var lo, hi num
	switch {
	case bounds != nil:
		lo, hi = bounds[0], bounds[1]
	case r.le(x1, x2):
		lo, hi = x1, x2
	default:
		lo, hi = x2, x1
	}
	// d1 = g1 + g2 - 3*(f1-f2)/(x1-x2)
	d1 := r.sub(r.add(g1, g2), r.div(r.mul(py(3), py(f1-f2)), r.sub(x1, x2)))
	d2sq := r.sub(r.mul(d1, d1), r.mul(g1, g2))
	if !r.le(py(0), d2sq) {
		return r.div(r.add(lo, hi), py(2))
	}
	d2 := num{r.rnd(math.Sqrt(d2sq.v)), d2sq.ten}
	var minPos num
	if r.le(x1, x2) {
		minPos = r.sub(x2, r.mul(r.sub(x2, x1), r.div(r.sub(r.add(g2, d2), d1), r.add(r.sub(g2, g1), r.mul(py(2), d2)))))
	} else {
		minPos = r.sub(x1, r.mul(r.sub(x1, x2), r.div(r.sub(r.add(g1, d2), d1), r.add(r.sub(g1, g2), r.mul(py(2), d2)))))
	}
	return r.min(r.max(minPos, lo), hi)
}

// lbfgsProbeUpdate is what a probe of an LBFGS change runs: the one operation that converts a
// hyper-parameter to the parameters' dtype, param += lr·d.
func lbfgsProbeUpdate(h *hyper, p, grad *bridge.Tensor) {
	p.AddInPlace(grad, h.lr)
}

// The flat state dict of LBFGS: state.<id>.func_evals, n_iter (0-d int64), d, prev_flat_grad,
// old_dirs.<k>, old_stps.<k> (flat tensors), t, ro.<k>, H_diag, al.<k> (0-d tensors of the
// parameters' dtype, or int64/float64 for Python numbers), prev_loss (0-d float64), with <id> the
// first parameter's (0).

func numTensor(n num, dt bridge.DType) *bridge.Tensor {
	if n.ten {
		return bridge.Scalar(n.v, dt)
	}
	if n.v == math.Trunc(n.v) && math.Abs(n.v) < 1<<53 {
		return bridge.FromSlice([]int64{int64(n.v)}).Reshape()
	}
	return bridge.Scalar(n.v, bridge.Float64)
}

func (s *lbfgsState) dtype() bridge.DType {
	for _, t := range []*bridge.Tensor{s.d, s.prevFlatGrad} {
		if t != nil {
			return t.DType()
		}
	}
	return bridge.Float32
}

func (s *lbfgsState) stateDict() []bridge.Named {
	if s.funcEvals == 0 && s.nIter == 0 && s.d == nil {
		return nil
	}
	const pre = "state.0."
	i64 := func(v int) *bridge.Tensor { return bridge.FromSlice([]int64{int64(v)}).Reshape() }
	dt := s.dtype()
	out := []bridge.Named{{Name: pre + "func_evals", Tensor: i64(s.funcEvals)}, {Name: pre + "n_iter", Tensor: i64(s.nIter)}}
	if s.hasAl {
		for i, set := range s.alSet {
			if set {
				out = append(out, bridge.Named{Name: pre + "al." + strconv.Itoa(i), Tensor: numTensor(s.al[i], dt)})
			}
		}
	}
	if s.d == nil {
		return out
	}
	out = append(out, bridge.Named{Name: pre + "d", Tensor: s.d}, bridge.Named{Name: pre + "t", Tensor: numTensor(s.t, dt)})
	for i, t := range s.oldDirs {
		out = append(out, bridge.Named{Name: pre + "old_dirs." + strconv.Itoa(i), Tensor: t})
	}
	for i, t := range s.oldStps {
		out = append(out, bridge.Named{Name: pre + "old_stps." + strconv.Itoa(i), Tensor: t})
	}
	for i, v := range s.ro {
		out = append(out, bridge.Named{Name: pre + "ro." + strconv.Itoa(i), Tensor: numTensor(v, dt)})
	}
	out = append(out, bridge.Named{Name: pre + "H_diag", Tensor: numTensor(s.hDiag, dt)},
		bridge.Named{Name: pre + "prev_flat_grad", Tensor: s.prevFlatGrad},
		bridge.Named{Name: pre + "prev_loss", Tensor: bridge.Scalar(s.prevLoss, bridge.Float64)})
	return out
}

// loadLBFGS reads LBFGS's state from a state dict's items.
func (o *Optimizer) loadLBFGS(items []bridge.Named, idToParam map[int64]int) (*lbfgsState, error) {
	s := &lbfgsState{}
	p0 := o.params[0]
	dt, dev := p0.DType(), p0.Device()
	var total int64
	for _, p := range o.params {
		total += p.Numel()
	}
	lists := map[string]map[int]*bridge.Tensor{}
	fields := map[string]*bridge.Tensor{}
	for _, it := range items {
		rest, ok := strings.CutPrefix(it.Name, "state.")
		if !ok {
			continue
		}
		ids, field, ok := strings.Cut(rest, ".")
		id, perr := strconv.ParseInt(ids, 10, 64)
		if !ok || perr != nil {
			return nil, fmt.Errorf("%s: want state.<param id>.<name>", it.Name)
		}
		if pi, known := idToParam[id]; !known || pi != 0 {
			return nil, fmt.Errorf("%s: LBFGS keeps its state under the first parameter (id %d)", it.Name, o.paramID(0, idToParam))
		}
		name, idx, isList := strings.Cut(field, ".")
		if isList {
			k, err := strconv.Atoi(idx)
			if err != nil || k < 0 {
				return nil, fmt.Errorf("%s: bad list index %q", it.Name, idx)
			}
			switch name {
			case "old_dirs", "old_stps", "ro", "al":
			default:
				return nil, fmt.Errorf("%s: lbfgs keeps no state %q", it.Name, name)
			}
			if lists[name] == nil {
				lists[name] = map[int]*bridge.Tensor{}
			}
			lists[name][k] = it.Tensor
			continue
		}
		switch field {
		case "func_evals", "n_iter", "d", "t", "H_diag", "prev_flat_grad", "prev_loss":
			fields[field] = it.Tensor
		default:
			return nil, fmt.Errorf("%s: lbfgs keeps no state %q", it.Name, field)
		}
	}
	if len(fields) == 0 && len(lists) == 0 {
		return s, nil
	}
	one := func(name string) (*bridge.Tensor, error) {
		t, ok := fields[name]
		if !ok {
			return nil, fmt.Errorf("state.%d.%s is missing (LBFGS has other state)", o.paramID(0, idToParam), name)
		}
		if t.Numel() != 1 {
			return nil, fmt.Errorf("state.%d.%s: want a single value, got shape %v", o.paramID(0, idToParam), name, t.Shape())
		}
		return t, nil
	}
	// A Python number is saved as int64 or float64; a tensor has the parameters' dtype (for
	// float64 parameters the two compute alike).
	numOf := func(t *bridge.Tensor) num {
		return num{t.Item(), t.DType() != bridge.Int64 && t.DType() != bridge.Float64}
	}
	flat := func(name string, t *bridge.Tensor) (*bridge.Tensor, error) {
		if t.Dim() != 1 || t.Numel() != total {
			return nil, fmt.Errorf("state.%d.%s: want a flat tensor of the parameters' %d elements, got shape %v",
				o.paramID(0, idToParam), name, total, t.Shape())
		}
		if t.DType() == dt && t.Device() == dev {
			return bridge.Keep(t.Clone()), nil
		}
		return t.To(dt, dev), nil
	}
	for _, name := range []string{"func_evals", "n_iter"} {
		t, err := one(name)
		if err != nil {
			return nil, err
		}
		if name == "func_evals" {
			s.funcEvals = int(t.ItemInt())
		} else {
			s.nIter = int(t.ItemInt())
		}
	}
	if al, ok := lists["al"]; ok {
		n := o.groups[0].h.historySize
		for k := range al {
			n = max(n, k+1)
		}
		s.al, s.alSet, s.hasAl = make([]num, n), make([]bool, n), true
		for k, t := range al {
			if t.Numel() != 1 {
				return nil, fmt.Errorf("state.%d.al.%d: want a single value, got shape %v", o.paramID(0, idToParam), k, t.Shape())
			}
			s.al[k], s.alSet[k] = numOf(t), true
		}
	}
	if _, ok := fields["d"]; !ok {
		return s, nil
	}
	var made []*bridge.Tensor
	ok := false
	defer func() {
		if !ok {
			freeAll(made)
		}
	}()
	for _, name := range []string{"d", "prev_flat_grad"} {
		t, present := fields[name]
		if !present {
			return nil, fmt.Errorf("state.%d.%s is missing (LBFGS has other state)", o.paramID(0, idToParam), name)
		}
		c, err := flat(name, t)
		if err != nil {
			return nil, err
		}
		made = append(made, c)
		if name == "d" {
			s.d = c
		} else {
			s.prevFlatGrad = c
		}
	}
	for _, name := range []string{"t", "H_diag", "prev_loss"} {
		t, err := one(name)
		if err != nil {
			return nil, err
		}
		switch name {
		case "t":
			s.t = numOf(t)
		case "H_diag":
			s.hDiag = numOf(t)
		default:
			s.prevLoss = t.Item()
		}
	}
	n := len(lists["old_dirs"])
	for _, name := range []string{"old_dirs", "old_stps", "ro"} {
		l := lists[name]
		if len(l) != n {
			return nil, fmt.Errorf("state.%d: %d old_dirs, %d %s", o.paramID(0, idToParam), n, len(l), name)
		}
		keys := make([]int, 0, len(l))
		for k := range l {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		for i, k := range keys {
			if i != k {
				return nil, fmt.Errorf("state.%d.%s.%d is missing", o.paramID(0, idToParam), name, i)
			}
			t := l[k]
			switch name {
			case "ro":
				if t.Numel() != 1 {
					return nil, fmt.Errorf("state.%d.ro.%d: want a single value, got shape %v", o.paramID(0, idToParam), k, t.Shape())
				}
				s.ro = append(s.ro, numOf(t))
			default:
				c, err := flat(name+"."+strconv.Itoa(k), t)
				if err != nil {
					return nil, err
				}
				made = append(made, c)
				if name == "old_dirs" {
					s.oldDirs = append(s.oldDirs, c)
				} else {
					s.oldStps = append(s.oldStps, c)
				}
			}
		}
	}
	ok = true
	return s, nil
}
