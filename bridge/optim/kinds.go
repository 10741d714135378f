package optim

import (
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// The optimizers beyond SGD and Adam: each update is PyTorch 1.13's single-tensor
// implementation (what torch.optim runs on the CPU, foreach off), operation for operation, so
// that the results agree bit for bit; scalar arithmetic that PyTorch does on 0-d float32 tensors
// (NAdam's mu_product) is rounded to float32 the same way.

// RMSpropOptions are torch.optim.RMSprop's arguments; start from DefaultRMSprop.
type RMSpropOptions struct {
	LR, Alpha, Eps, WeightDecay, Momentum float64
	Centered, Maximize                    bool
}

// DefaultRMSprop returns torch.optim.RMSprop's defaults: lr 1e-2, alpha 0.99, eps 1e-8, no
// weight decay, no momentum, not centered.
func DefaultRMSprop() RMSpropOptions { return RMSpropOptions{LR: 1e-2, Alpha: 0.99, Eps: 1e-8} }

// NewRMSprop returns RMSprop (optionally centered, with momentum) as torch.optim.RMSprop in
// PyTorch 1.13. Unlike PyTorch, momentum or centered switched on after the first step (live)
// start their buffer from zeros instead of failing.
func NewRMSprop(groups []Group, o RMSpropOptions) (*Optimizer, error) {
	return newOptimizer(kindRMSprop, groups, hyper{lr: o.LR, alpha: o.Alpha, eps: o.Eps, weightDecay: o.WeightDecay,
		momentum: o.Momentum, centered: o.Centered, maximize: o.Maximize})
}

// AdagradOptions are torch.optim.Adagrad's arguments; start from DefaultAdagrad.
type AdagradOptions struct {
	LR, LRDecay, WeightDecay float64
	// InitialAccumulatorValue fills the sum of squared gradients when the optimizer is built; it
	// cannot be changed afterwards.
	InitialAccumulatorValue float64
	Eps                     float64
	Maximize                bool
}

// DefaultAdagrad returns torch.optim.Adagrad's defaults: lr 1e-2, eps 1e-10, the rest 0.
func DefaultAdagrad() AdagradOptions { return AdagradOptions{LR: 1e-2, Eps: 1e-10} }

// NewAdagrad returns Adagrad (with learning-rate decay lr/(1+(step-1)·lr_decay)) as
// torch.optim.Adagrad in PyTorch 1.13. As there, every parameter has state from the start.
func NewAdagrad(groups []Group, o AdagradOptions) (*Optimizer, error) {
	return newOptimizer(kindAdagrad, groups, hyper{lr: o.LR, lrDecay: o.LRDecay, weightDecay: o.WeightDecay,
		initialAcc: o.InitialAccumulatorValue, eps: o.Eps, maximize: o.Maximize})
}

// AdadeltaOptions are torch.optim.Adadelta's arguments; start from DefaultAdadelta.
type AdadeltaOptions struct {
	LR, Rho, Eps, WeightDecay float64
	Maximize                  bool
}

// DefaultAdadelta returns torch.optim.Adadelta's defaults: lr 1, rho 0.9, eps 1e-6.
func DefaultAdadelta() AdadeltaOptions { return AdadeltaOptions{LR: 1, Rho: 0.9, Eps: 1e-6} }

// NewAdadelta returns Adadelta as torch.optim.Adadelta in PyTorch 1.13.
func NewAdadelta(groups []Group, o AdadeltaOptions) (*Optimizer, error) {
	return newOptimizer(kindAdadelta, groups, hyper{lr: o.LR, rho: o.Rho, eps: o.Eps, weightDecay: o.WeightDecay,
		maximize: o.Maximize})
}

// AdamaxOptions are torch.optim.Adamax's arguments; start from DefaultAdamax.
type AdamaxOptions struct {
	LR               float64
	Betas            [2]float64
	Eps, WeightDecay float64
	Maximize         bool
}

// DefaultAdamax returns torch.optim.Adamax's defaults: lr 2e-3, betas (0.9, 0.999), eps 1e-8.
func DefaultAdamax() AdamaxOptions {
	return AdamaxOptions{LR: 2e-3, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}
}

// NewAdamax returns Adamax (Adam with the infinity norm) as torch.optim.Adamax in PyTorch 1.13.
func NewAdamax(groups []Group, o AdamaxOptions) (*Optimizer, error) {
	return newOptimizer(kindAdamax, groups, hyper{lr: o.LR, beta1: o.Betas[0], beta2: o.Betas[1], eps: o.Eps,
		weightDecay: o.WeightDecay, maximize: o.Maximize})
}

// NAdamOptions are torch.optim.NAdam's arguments; start from DefaultNAdam.
type NAdamOptions struct {
	LR                              float64
	Betas                           [2]float64
	Eps, WeightDecay, MomentumDecay float64
}

// DefaultNAdam returns torch.optim.NAdam's defaults: lr 2e-3, betas (0.9, 0.999), eps 1e-8,
// momentum_decay 4e-3.
func DefaultNAdam() NAdamOptions {
	return NAdamOptions{LR: 2e-3, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, MomentumDecay: 4e-3}
}

// NewNAdam returns NAdam (Adam with Nesterov momentum) as torch.optim.NAdam in PyTorch 1.13
// (which has no maximize).
func NewNAdam(groups []Group, o NAdamOptions) (*Optimizer, error) {
	return newOptimizer(kindNAdam, groups, hyper{lr: o.LR, beta1: o.Betas[0], beta2: o.Betas[1], eps: o.Eps,
		weightDecay: o.WeightDecay, momentumDecay: o.MomentumDecay})
}

// RAdamOptions are torch.optim.RAdam's arguments; start from DefaultRAdam.
type RAdamOptions struct {
	LR               float64
	Betas            [2]float64
	Eps, WeightDecay float64
}

// DefaultRAdam returns torch.optim.RAdam's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8.
func DefaultRAdam() RAdamOptions {
	return RAdamOptions{LR: 1e-3, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}
}

// NewRAdam returns RAdam (rectified Adam) as torch.optim.RAdam in PyTorch 1.13 (which has no
// maximize).
func NewRAdam(groups []Group, o RAdamOptions) (*Optimizer, error) {
	return newOptimizer(kindRAdam, groups, hyper{lr: o.LR, beta1: o.Betas[0], beta2: o.Betas[1], eps: o.Eps,
		weightDecay: o.WeightDecay})
}

// Writes of the updates below (see the SGD and Adam ones in optimizer.go). A moving average's
// two writes (…Decay, …Add) are numbered one after the other, as movingAvg makes them.
const (
	rmsSqDecay   = iota // square_avg *= alpha
	rmsSqAdd            // square_avg += (1-alpha)*g*g
	rmsGAvgDecay        // centered: grad_avg *= alpha
	rmsGAvgAdd          // centered: grad_avg += (1-alpha)*g
	rmsBufDecay         // momentum: momentum_buffer *= momentum
	rmsBufAdd           // momentum: momentum_buffer += g/avg
	rmsParam            // param -= lr*buf, or lr*g/avg
)

const (
	agSumAdd = iota // sum += g*g
	agParam         // param -= clr*g/(sqrt(sum)+eps)
)

const (
	adSqDecay = iota // square_avg *= rho
	adSqAdd          // square_avg += (1-rho)*g*g
	adParam          // param -= lr*delta
	adAcc            // acc_delta = rho*acc_delta + (1-rho)*delta*delta, written at once
)

const (
	axAvgDecay = iota // exp_avg *= beta1
	axAvgAdd          // exp_avg += (1-beta1)*g
	axInfDecay        // exp_inf *= beta2
	axInfMax          // exp_inf = max(exp_inf, |g|+eps)
	axParam           // param -= clr*exp_avg/exp_inf
)

const (
	naAvgDecay  = iota // exp_avg *= beta1
	naAvgAdd           // exp_avg += (1-beta1)*g
	naSqDecay          // exp_avg_sq *= beta2
	naSqAdd            // exp_avg_sq += (1-beta2)*g*g
	naParamGrad        // param += -lr*(1-mu)/(1-mu_product) * g/denom
	naParamAvg         // param += -lr*mu_next/(1-mu_product_next) * exp_avg/denom
)

const (
	raAvgDecay = iota // exp_avg *= beta1
	raAvgAdd          // exp_avg += (1-beta1)*g
	raSqDecay         // exp_avg_sq *= beta2
	raSqAdd           // exp_avg_sq += (1-beta2)*g*g
	raParam           // param -= the rectified (or plain momentum) step
)

func rmspropStep(h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	var tmp temps
	defer tmp.free()
	tr.begin(st)
	sq := ensure(st, fSquareAvg, p, tr)
	if h.momentum > 0 {
		ensure(st, fMomentumBuffer, p, tr)
	}
	if h.centered {
		ensure(st, fGradAvg, p, tr)
	}
	if !tr.resuming() {
		st.step++
	}
	g := gradTerm(&tmp, h, p, grad)
	movingAvgSq(tr, sq, g, h.alpha, rmsSqDecay)
	var avg *bridge.Tensor
	if h.centered {
		ga := st.t[fGradAvg]
		movingAvg(tr, ga, g, h.alpha, rmsGAvgDecay)
		avg = tmp.add(aten.Addcmul(sq, ga, ga, aten.IntScalar(-1)))
		avg.SqrtInPlace()
	} else {
		avg = tmp.add(sq.Sqrt())
	}
	avg.AddScalarInPlace(h.eps)
	if h.momentum > 0 {
		buf := st.t[fMomentumBuffer]
		if tr.next(rmsBufDecay) {
			buf.MulScalarInPlace(h.momentum)
			tr.done(rmsBufDecay)
		}
		if tr.next(rmsBufAdd) {
			buf.AddcdivInPlace(g, avg, 1)
			tr.done(rmsBufAdd)
		}
		if tr.next(rmsParam) {
			p.AddInPlace(buf, -h.lr)
			tr.done(rmsParam)
		}
		return
	}
	if tr.next(rmsParam) {
		p.AddcdivInPlace(g, avg, -h.lr)
		tr.done(rmsParam)
	}
}

func adagradStep(h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	var tmp temps
	defer tmp.free()
	tr.begin(st)
	sum := st.t[fSum]
	if sum == nil {
		// Made by the constructor; absent only after loading a state dict without it.
		sum = bridge.Keep(bridge.Full(p.Shape(), h.initialAcc, p.DType(), p.Device()))
		st.t[fSum] = sum
		tr.created(&st.t[fSum])
	}
	if !tr.resuming() {
		st.step++
	}
	// PyTorch reads the step back from its float32 tensor: exact for any step a run reaches.
	step := float64(float32(st.step))
	g := gradTerm(&tmp, h, p, grad)
	clr := h.lr / (1 + float64((step-1)*h.lrDecay))
	if tr.next(agSumAdd) {
		sum.AddcmulInPlace(g, g, 1)
		tr.done(agSumAdd)
	}
	if tr.next(agParam) {
		std := tmp.add(sum.Sqrt())
		std.AddScalarInPlace(h.eps)
		p.AddcdivInPlace(g, std, -clr)
		tr.done(agParam)
	}
}

func adadeltaStep(h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	var tmp temps
	defer tmp.free()
	tr.begin(st)
	sq, acc := ensurePair(st, fSquareAvg, fAccDelta, p, tr)
	if !tr.resuming() {
		st.step++
	}
	g := gradTerm(&tmp, h, p, grad)
	movingAvgSq(tr, sq, g, h.rho, adSqDecay)
	// delta = sqrt(acc_delta+eps)/sqrt(square_avg+eps)*g, from acc_delta before its update.
	// PyTorch updates acc_delta, then the parameter; the two are independent, and writing the
	// parameter first (and acc_delta in one write) lets a resumed trial step recompute delta.
	std := tmp.add(sq.AddScalar(h.eps))
	std.SqrtInPlace()
	delta := tmp.add(acc.AddScalar(h.eps))
	delta.SqrtInPlace()
	delta.DivInPlace(std)
	delta.MulInPlace(g)
	if tr.next(adParam) {
		p.AddInPlace(delta, -h.lr)
		tr.done(adParam)
	}
	if tr.next(adAcc) {
		next := tmp.add(acc.MulScalar(h.rho))
		next.AddcmulInPlace(delta, delta, 1-h.rho)
		acc.CopyFrom(next)
		tr.done(adAcc)
	}
}

func adamaxStep(h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	var tmp temps
	defer tmp.free()
	tr.begin(st)
	expAvg, expInf := ensurePair(st, fExpAvg, fExpInf, p, tr)
	if !tr.resuming() {
		st.step++
	}
	step := float64(float32(st.step))
	g := gradTerm(&tmp, h, p, grad)
	movingAvg(tr, expAvg, g, h.beta1, axAvgDecay)
	if tr.next(axInfDecay) {
		expInf.MulScalarInPlace(h.beta2)
		tr.done(axInfDecay)
	}
	if tr.next(axInfMax) {
		// torch.amax(cat([exp_inf, |g|+eps]), 0, out=exp_inf): the elementwise maximum.
		a := tmp.add(g.Abs())
		a.AddScalarInPlace(h.eps)
		expInf.CopyFrom(tmp.add(expInf.Maximum(a)))
		tr.done(axInfMax)
	}
	clr := h.lr / (1 - pow(h.beta1, step))
	if tr.next(axParam) {
		p.AddcdivInPlace(expAvg, expInf, -clr)
		tr.done(axParam)
	}
}

// f32 rounds x to float32, as an operation on a 0-d float32 tensor does.
func f32(x float64) float64 { return float64(float32(x)) }

// nadamMu returns mu and mu_next of NAdam's momentum schedule at step.
func nadamMu(h *hyper, step float64) (mu, muNext float64) {
	mu = h.beta1 * float64(1-float64(0.5*pow(0.96, step*h.momentumDecay)))
	muNext = h.beta1 * float64(1-float64(0.5*pow(0.96, float64((step+1)*h.momentumDecay))))
	return mu, muNext
}

func nadamStep(h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	var tmp temps
	defer tmp.free()
	tr.begin(st)
	if st.t[fExpAvg] == nil {
		st.muProduct = 1
	}
	expAvg, expAvgSq := ensurePair(st, fExpAvg, fExpAvgSq, p, tr)
	if !tr.resuming() {
		st.step++
	}
	step := float64(float32(st.step))
	mu, muNext := nadamMu(h, step)
	if !tr.resuming() {
		// mu_product *= mu on a float32 tensor: mu is rounded to float32 first.
		st.muProduct = f32(st.muProduct * f32(mu))
	}
	muProductNext := f32(f32(st.muProduct*f32(mu)) * f32(muNext))
	biasCorrection2 := 1 - pow(h.beta2, step)
	g := gradTerm(&tmp, h, p, grad)
	adamMoments(tr, h, g, expAvg, expAvgSq, naAvgDecay)
	denom := tmp.add(expAvgSq.DivScalar(biasCorrection2))
	denom.SqrtInPlace()
	denom.AddScalarInPlace(h.eps)
	if tr.next(naParamGrad) {
		p.AddcdivInPlace(g, denom, float64(-h.lr*(1-mu))/(1-st.muProduct))
		tr.done(naParamGrad)
	}
	if tr.next(naParamAvg) {
		p.AddcdivInPlace(expAvg, denom, float64(-h.lr*muNext)/(1-muProductNext))
		tr.done(naParamAvg)
	}
}

func radamStep(h *hyper, p, grad *bridge.Tensor, st *paramState, tr *trace) {
	var tmp temps
	defer tmp.free()
	tr.begin(st)
	expAvg, expAvgSq := ensurePair(st, fExpAvg, fExpAvgSq, p, tr)
	if !tr.resuming() {
		st.step++
	}
	step := float64(float32(st.step))
	biasCorrection1 := 1 - pow(h.beta1, step)
	biasCorrection2 := 1 - pow(h.beta2, step)
	g := gradTerm(&tmp, h, p, grad)
	adamMoments(tr, h, g, expAvg, expAvgSq, raAvgDecay)
	if !tr.next(raParam) {
		return
	}
	// Python evaluates these left to right in float64; the float64(…) conversions keep Go from
	// fusing a multiply and an add.
	rhoInf := float64(2/(1-h.beta2)) - 1
	rhoT := rhoInf - float64(float64(float64(2*step)*pow(h.beta2, step))/biasCorrection2)
	upd := tmp.add(expAvg.DivScalar(biasCorrection1)) // bias_corrected_exp_avg
	upd = tmp.add(upd.MulScalar(h.lr))
	if rhoT > 5 {
		num := float64(float64((rhoT-4)*(rhoT-2)) * rhoInf)
		den := float64(float64((rhoInf-4)*(rhoInf-2)) * rhoT)
		rect := math.Sqrt(num / den)
		// adaptive_lr = sqrt(bc2) / (sqrt(exp_avg_sq) + eps): a float divided by a tensor is
		// the tensor's reciprocal times the float.
		d := tmp.add(expAvgSq.Sqrt())
		d.AddScalarInPlace(h.eps)
		adaptive := tmp.add(aten.Reciprocal(d))
		adaptive.MulScalarInPlace(math.Sqrt(biasCorrection2))
		upd.MulInPlace(adaptive)
		upd.MulScalarInPlace(rect)
	}
	p.AddInPlace(upd, -1)
	tr.done(raParam)
}
