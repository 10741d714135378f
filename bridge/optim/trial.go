package optim

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/hotcb/hotcb/bridge"
)

// Changes that fail
//
// A hyper-parameter change is checked three times before it can hurt a run:
//
//  1. SetParams checks each value (finite, in PyTorch's range) and that it fits in the dtype of
//     every parameter of the group (lr=1e308 does not fit in float32): libtorch raises when it
//     converts such a scalar for a float32 tensor.
//  2. SetParams then runs the update with the new values on one-element scratch tensors of each
//     dtype and device the group's parameters have, at their current step count and with the
//     state they have (which of momentum_buffer, max_exp_avg_sq, grad_avg, … exist; NAdam's
//     mu_product): combinations such as an Adam step size lr/(1-beta1^step) that overflows are
//     refused there, with libtorch's message. (The scratch state has the parameter's dtype: state
//     kept in another dtype, after a SetData, is probed as if it had the parameter's.)
//  3. The first Step after the change (its "trial") repeats 2 before touching the group, in case
//     something changed in between (a parameter moved to float16 with SetData), and then watches
//     the real update: if libtorch raises, the change is rolled back — the keys it set get their
//     previous values again — and the step is completed with them.
//
// A rollback in step 3 before the update wrote anything is exact: the state is as if the step
// had run with the previous values from the start. When libtorch raises in the middle of a
// parameter's update, the writes already made stay and the update resumes at the first write not
// done, with the previous values; Rollback.Left says what the new values may have left changed
// (nothing when the writes made so far do not read the keys the change set — lr, for instance, is
// read by the last write only). An in-place write that raises is taken to have written nothing:
// libtorch checks its arguments (the scalar conversions among them) before it writes. Parameters
// of the group updated earlier in the same Step keep their update with the new values; Left
// counts them. If the update fails again with the previous values, or the change set nothing
// that differs, or a freed tensor is used, the failure is not the change's and Step panics as
// before.
//
// LBFGS, whose step runs the closure and updates all parameters together many times, has no
// writes to resume at: its trial step (StepClosure after a change) probes as in 2 — the one scalar
// it hands libtorch is the step size, param += t·d — then runs on a copy of its state with the
// parameters saved; if libtorch raises, the parameters and the state are put back, the change is
// rolled back, and the step runs again with the previous values, calling the closure again from
// the start (Left counts the closure calls of the failed attempt: their side effects, such as
// BatchNorm statistics, stay).
//
// The rollbacks are kept until TakeRollbacks, which the kernel calls at each safe point to
// record them in the ledger.

// Rollback is a hyper-parameter change that a Step could not use and undid.
type Rollback struct {
	Group int // the parameter group
	// Revisions are the SetParams calls undone (Revision's values after each), oldest first: every
	// change to the group since its last Step.
	Revisions []int64
	// Restored holds the keys those calls set, with the values in force again (as Get returns
	// them: float64, bool, or [2]float64 for "betas").
	Restored map[string]any
	Err      error  // what libtorch raised (a *bridge.Error)
	Left     string // what the failed attempt left changed; "" when nothing
}

// Revision counts the SetParams calls (Set, SetLR) that changed something; a Rollback names the
// calls it undid by the value Revision had after each.
func (o *Optimizer) Revision() int64 { return o.rev }

// TakeRollbacks returns the rollbacks since the last call, oldest first, and forgets them.
func (o *Optimizer) TakeRollbacks() []Rollback {
	if len(o.rollbacks) == 0 {
		return nil
	}
	r := o.rollbacks
	o.rollbacks = nil
	return r
}

// trial is a group's change that no Step has used yet.
type trial struct {
	prev hyper           // the values before the first change since the last Step
	keys map[string]bool // the keys set ("betas" for beta1 and beta2)
	revs []int64
	// probed: the kinds of parameter on which SetParams tried the update with probedH; the
	// trial step tries only the others (a parameter moved since, or a scheduler changed lr).
	probed  map[probeKey]bool
	probedH hyper
}

func canonicalKey(k string) string {
	if k == "beta1" || k == "beta2" {
		return "betas"
	}
	return k
}

// note records that SetParams changed group g from prev to h under revision rev, having tried h
// on the kinds of parameter in probed.
func (g *group) note(prev, h hyper, keys []string, rev int64, probed map[probeKey]bool) {
	if g.trial == nil {
		g.trial = &trial{prev: prev, keys: map[string]bool{}}
	}
	g.trial.probed, g.trial.probedH = probed, h
	for _, k := range keys {
		g.trial.keys[canonicalKey(k)] = true
	}
	g.trial.revs = append(g.trial.revs, rev)
}

// changed lists the trial's keys whose value differs from the previous one, sorted.
func (t *trial) changed(h *hyper) []string {
	var out []string
	for k := range t.keys {
		if h.get(k) != t.prev.get(k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// trace records what one parameter's update wrote, so that a trial step that fails can undo the
// update (nothing written yet) or resume it (at skip, the first write not done). A nil *trace is
// the fast path: every method is then a no-op that lets the update run.
type trace struct {
	skip  int // > 0 when resuming: writes below skip were done by the failed attempt
	step0 int64
	mu0   float64 // NAdam's mu_product before the update
	wrote []int
	slots []**bridge.Tensor // state the update created
	ran   bool              // the parameter had a gradient
}

func (t *trace) begin(st *paramState) {
	if t != nil && t.skip == 0 {
		t.step0, t.mu0 = st.step, st.muProduct
	}
}

func (t *trace) resuming() bool { return t != nil && t.skip > 0 }

// next reports whether write id is to be made.
func (t *trace) next(id int) bool {
	if t == nil {
		return true
	}
	if id < t.skip {
		return false
	}
	if faultHook != nil {
		faultHook(id)
	}
	return true
}

func (t *trace) done(id int) {
	if t != nil {
		t.wrote = append(t.wrote, id)
	}
}

func (t *trace) created(slots ...**bridge.Tensor) {
	if t != nil {
		t.slots = append(t.slots, slots...)
	}
}

// undo returns st to what it was before an update that wrote nothing.
func (t *trace) undo(st *paramState) {
	st.step, st.muProduct = t.step0, t.mu0
	for _, s := range t.slots {
		(*s).Free()
		*s = nil
	}
}

// faultHook, set by tests, runs before each write of a trial step's update and may panic with a
// *bridge.Error as a failing libtorch call does.
var faultHook func(write int)

// writeInfo names a write and the keys whose values it depends on (whether it happens at all,
// or what it writes).
type writeInfo struct {
	target string
	reads  []string
}

var sgdWrites = []writeInfo{
	sgdBufDecay: {"momentum_buffer", []string{"momentum"}},
	sgdBufAdd:   {"momentum_buffer", []string{"momentum", "dampening", "weight_decay", "maximize"}},
	sgdParam:    {"param", nil}, // the last write: never left behind
}

func writesOf(k kind) []writeInfo {
	g := []string{"maximize", "weight_decay"} // what g, the gradient term, reads
	switch k {
	case kindSGD:
		return sgdWrites
	case kindAdam, kindAdamW:
		g := []string{"betas", "maximize"}
		if k == kindAdam {
			g = append(g, "weight_decay")
		}
		return []writeInfo{
			adamDecay:     {"param", []string{"lr", "weight_decay"}},
			adamAvgDecay:  {"exp_avg", []string{"betas"}},
			adamAvgAdd:    {"exp_avg", g},
			adamSqDecay:   {"exp_avg_sq", []string{"betas"}},
			adamSqAdd:     {"exp_avg_sq", g},
			adamMaxUpdate: {"max_exp_avg_sq", append([]string{"amsgrad"}, g...)},
			adamParam:     {"param", nil},
		}
	case kindRMSprop:
		avg := append([]string{"alpha", "eps", "centered"}, g...)
		return []writeInfo{
			rmsSqDecay:   {"square_avg", []string{"alpha"}},
			rmsSqAdd:     {"square_avg", append([]string{"alpha"}, g...)},
			rmsGAvgDecay: {"grad_avg", []string{"alpha", "centered"}},
			rmsGAvgAdd:   {"grad_avg", append([]string{"alpha", "centered"}, g...)},
			rmsBufDecay:  {"momentum_buffer", []string{"momentum"}},
			rmsBufAdd:    {"momentum_buffer", append([]string{"momentum"}, avg...)},
			rmsParam:     {"param", nil},
		}
	case kindAdagrad:
		return []writeInfo{
			agSumAdd: {"sum", g},
			agParam:  {"param", nil},
		}
	case kindAdadelta:
		delta := append([]string{"rho", "eps"}, g...)
		return []writeInfo{
			adSqDecay: {"square_avg", []string{"rho"}},
			adSqAdd:   {"square_avg", append([]string{"rho"}, g...)},
			adParam:   {"param", append([]string{"lr"}, delta...)},
			adAcc:     {"acc_delta", nil}, // the last write
		}
	case kindAdamax:
		return []writeInfo{
			axAvgDecay: {"exp_avg", []string{"betas"}},
			axAvgAdd:   {"exp_avg", append([]string{"betas"}, g...)},
			axInfDecay: {"exp_inf", []string{"betas"}},
			axInfMax:   {"exp_inf", append([]string{"eps"}, g...)},
			axParam:    {"param", nil},
		}
	case kindNAdam:
		g := []string{"betas", "weight_decay"}
		return []writeInfo{
			naAvgDecay:  {"exp_avg", []string{"betas"}},
			naAvgAdd:    {"exp_avg", g},
			naSqDecay:   {"exp_avg_sq", []string{"betas"}},
			naSqAdd:     {"exp_avg_sq", g},
			naParamGrad: {"param", []string{"lr", "betas", "eps", "weight_decay", "momentum_decay"}},
			naParamAvg:  {"param", nil},
		}
	case kindRAdam:
		g := []string{"betas", "weight_decay"}
		return []writeInfo{
			raAvgDecay: {"exp_avg", []string{"betas"}},
			raAvgAdd:   {"exp_avg", g},
			raSqDecay:  {"exp_avg_sq", []string{"betas"}},
			raSqAdd:    {"exp_avg_sq", g},
			raParam:    {"param", nil},
		}
	}
	return nil
}

// beginTrial takes group g's trial (settled by this step, one way or the other) and repeats
// SetParams' probe on the kinds of parameter it has not tried (step 3 of "Changes that fail").
// If the probe fails it rolls the change back and returns nil: the step runs with the previous
// values.
func (o *Optimizer) beginTrial(gi int, g *group) *trial {
	tr := g.trial
	g.trial = nil
	probed := tr.probed
	if g.h != tr.probedH {
		probed = map[probeKey]bool{}
	}
	if err := o.probe(g.params, &g.h, probed); err != nil && len(tr.changed(&g.h)) > 0 {
		o.rollBack(gi, g, tr, err.Err, "")
		return nil
	}
	return tr
}

// notTheChange reports whether err, raised by a trial step, is a failure that rolling the
// change back cannot help: the change set nothing that differs, or a freed tensor was used.
func (t *trial) notTheChange(h *hyper, err error) bool {
	return len(t.changed(h)) == 0 || errors.Is(err, bridge.ErrFreed)
}

// trialStep is Step for a group changed since its last Step.
func (o *Optimizer) trialStep(gi int, g *group) {
	tr := o.beginTrial(gi, g)
	if tr == nil {
		for _, pi := range g.params {
			o.update(&g.h, pi, nil)
		}
		return
	}
	updated := 0
	for i, pi := range g.params {
		var t trace
		err := bridge.Try(func() { o.update(&g.h, pi, &t) })
		if err == nil {
			if t.ran {
				updated++
			}
			continue
		}
		if tr.notTheChange(&g.h, err) {
			panic(err) // not the change's doing
		}
		left := o.leftBehind(gi, i, updated, tr.changed(&g.h), &t)
		o.rollBack(gi, g, tr, err, left)
		st := &o.state[pi]
		if len(t.wrote) == 0 {
			t.undo(st)
			o.update(&g.h, pi, nil)
		} else {
			o.update(&g.h, pi, &trace{skip: t.wrote[len(t.wrote)-1] + 1})
		}
		for _, pj := range g.params[i+1:] {
			o.update(&g.h, pj, nil)
		}
		return
	}
}

// leftBehind describes what a failed update of the group's k-th parameter, after updated others
// took the step, may have left changed by the new values of the changed keys.
func (o *Optimizer) leftBehind(gi, k, updated int, changed []string, t *trace) string {
	var parts []string
	if updated > 0 {
		parts = append(parts, fmt.Sprintf("%d parameter(s) of group %d updated earlier in this step kept the update made with the new values",
			updated, gi))
	}
	isChanged := map[string]bool{}
	for _, c := range changed {
		isChanged[c] = true
	}
	var targets, keys []string
	seenT, seenK := map[string]bool{}, map[string]bool{}
	writes := writesOf(o.kind)
	for _, id := range t.wrote {
		w := writes[id]
		hit := false
		for _, r := range w.reads {
			if isChanged[r] {
				hit = true
				if !seenK[r] {
					seenK[r] = true
					keys = append(keys, r)
				}
			}
		}
		if hit && !seenT[w.target] {
			seenT[w.target] = true
			targets = append(targets, w.target)
		}
	}
	if len(targets) > 0 {
		sort.Strings(keys)
		parts = append(parts, fmt.Sprintf("parameter %d of group %d had written %s with the new %s before the error; its update was completed with the previous values",
			k, gi, strings.Join(targets, ", "), strings.Join(keys, ", ")))
	}
	return strings.Join(parts, "; ")
}

// rollBack restores the keys of trial tr in group g and queues the Rollback.
func (o *Optimizer) rollBack(gi int, g *group, tr *trial, err error, left string) {
	keys := make([]string, 0, len(tr.keys))
	for k := range tr.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	restored := map[string]any{}
	for _, k := range keys {
		v := tr.prev.get(k)
		g.h.set(k, v) // a value the group had: valid
		restored[k] = v
	}
	o.rollbacks = append(o.rollbacks, Rollback{Group: gi, Revisions: tr.revs, Restored: restored, Err: err, Left: left})
}

// maxOf is the largest finite value of each floating-point dtype: what libtorch converts a
// scalar argument to without "value cannot be converted to type … without overflow".
var maxOf = map[bridge.DType]float64{
	bridge.Float16:  65504,
	bridge.BFloat16: 3.3895313892515355e38,
	bridge.Float32:  math.MaxFloat32,
	bridge.Float64:  math.MaxFloat64,
}

// fmtMax writes a dtype's maximum as people quote it: 65504, 3.4e+38.
func fmtMax(m float64) string {
	if m < 1e6 {
		return strconv.FormatFloat(m, 'f', -1, 64)
	}
	return strconv.FormatFloat(m, 'g', 2, 64)
}

// floatDTypes returns the distinct floating-point dtypes of the group's (unfreed) parameters,
// the narrowest first.
func (o *Optimizer) floatDTypes(params []int) []bridge.DType {
	var out []bridge.DType
	for _, pi := range params {
		p := o.params[pi]
		if p.IsFreed() {
			continue
		}
		dt := p.DType()
		if _, ok := maxOf[dt]; ok && !containsDType(out, dt) {
			out = append(out, dt)
		}
	}
	sort.Slice(out, func(i, j int) bool { return maxOf[out[i]] < maxOf[out[j]] })
	return out
}

func containsDType(ds []bridge.DType, d bridge.DType) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// checkFits checks that the numeric values of keys fit in every dtype of the group's parameters.
// Only values beyond float16's range can fail, so the dtypes are read only then.
func (o *Optimizer) checkFits(gi int, h *hyper, keys []string, errGroup int) *HyperError {
	var dts []bridge.DType
	read := false
	for _, key := range keys {
		f, ok := h.get(key).(float64)
		if !ok || math.Abs(f) <= maxOf[bridge.Float16] {
			continue
		}
		if !read {
			dts, read = o.floatDTypes(o.groups[gi].params), true
		}
		for _, dt := range dts {
			if m := maxOf[dt]; math.Abs(f) > m {
				where := ""
				if len(o.groups) > 1 {
					where = fmt.Sprintf(" in group %d", gi)
				}
				return &HyperError{Key: key, Group: errGroup, Value: f,
					Reason: fmt.Sprintf("%s=%s overflows %v (max %s)%s", key, strconv.FormatFloat(f, 'g', -1, 64), dt, fmtMax(m), where)}
			}
		}
	}
	return nil
}

// probeKey is what makes one parameter's update differ from another's for libtorch.
type probeKey struct {
	dtype  bridge.DType
	device bridge.Device
	step   int64
	has    uint16  // the state tensors present (paramState.mask)
	mu     float64 // NAdam's mu_product
}

// probeError is a trial update on scratch tensors that libtorch refused.
type probeError struct {
	key probeKey
	Err error
}

func (e *probeError) reason(k kind) string {
	at := ""
	if k != kindSGD && k != kindLBFGS {
		at = fmt.Sprintf(" at step %d", e.key.step+1)
	}
	return fmt.Sprintf("a trial %s update of a %v parameter on %v%s failed: %v", k, e.key.dtype, e.key.device, at, e.Err)
}

// probe runs the update with h on one-element scratch tensors for each kind of parameter among
// params (dtype, device, step count, state present) that is not in seen yet, without touching
// them; it adds the kinds that passed to seen.
func (o *Optimizer) probe(params []int, h *hyper, seen map[probeKey]bool) (perr *probeError) {
	bridge.NoGrad(func() {
		for _, pi := range params {
			p := o.params[pi]
			if p.IsFreed() {
				continue
			}
			dt := p.DType()
			if _, ok := maxOf[dt]; !ok {
				continue // not a float: it has no gradient to update with
			}
			st := &o.state[pi]
			key := probeKey{dt, p.Device(), st.step, st.mask(), st.muProduct}
			if seen[key] {
				continue
			}
			if err := bridge.Try(func() { o.kind.probeOnce(key, h) }); err != nil {
				perr = &probeError{key: key, Err: err}
				return
			}
			seen[key] = true
		}
	})
	return perr
}

func (k kind) probeOnce(key probeKey, h *hyper) {
	opts := []bridge.Option{key.dtype, key.device}
	var made []*bridge.Tensor
	mk := func(v float64) *bridge.Tensor {
		t := bridge.Full(bridge.Shape{1}, v, opts...)
		made = append(made, t)
		return t
	}
	defer func() {
		for _, t := range made {
			_ = t.Free()
		}
	}()
	p, grad := mk(0.5), mk(1)
	st := paramState{step: key.step, muProduct: key.mu}
	for f := range numFields {
		if key.has&(1<<f) != 0 {
			st.t[f] = mk(0)
		}
	}
	k.update(h, p, grad, &st, nil)
	for _, t := range st.t {
		if t != nil {
			made = append(made, t) // what the update created (a second Free is harmless)
		}
	}
}
