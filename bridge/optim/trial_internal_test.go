package optim

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

// pair is an optimizer that gets a change and its twin that does not (or gets it on the fast
// path), over parameters with the same values and gradients.
type pair struct {
	a, b   *Optimizer
	pa, pb []*bridge.Tensor
	coef   [][]float32 // per step: the gradient of parameter i is coef (through Backward)
	steps  int
}

func newPair(t *testing.T, n int, mk func([]Group) (*Optimizer, error)) *pair {
	t.Helper()
	pr := &pair{}
	for i := range n {
		v := []float32{0.5 + float32(i), -1.25, 2}
		pr.pa = append(pr.pa, bridge.FromSlice(append([]float32(nil), v...)).SetRequiresGrad(true))
		pr.pb = append(pr.pb, bridge.FromSlice(append([]float32(nil), v...)).SetRequiresGrad(true))
	}
	var err error
	pr.a, err = mk(Params(pr.pa...))
	require.NoError(t, err)
	pr.b, err = mk(Params(pr.pb...))
	require.NoError(t, err)
	return pr
}

// grads gives both sets the same (step-dependent) gradients.
func (pr *pair) grads() {
	pr.steps++
	s := float32(pr.steps)
	for i := range pr.pa {
		c := bridge.FromSlice([]float32{0.3 * s, -0.7 + float32(i), 1.1 / s})
		pr.pa[i].Mul(c).Sum().Backward()
		pr.pb[i].Mul(c).Sum().Backward()
	}
}

func (pr *pair) step() {
	pr.grads()
	pr.a.Step()
	pr.b.Step()
	pr.a.ZeroGrad()
	pr.b.ZeroGrad()
}

func data(t *bridge.Tensor) []float32 {
	if t == nil {
		return nil
	}
	return t.Float32s()
}

// requireSame checks that parameter i and its state are bitwise the same in both.
func (pr *pair) requireSame(t *testing.T, i int, what ...string) {
	t.Helper()
	sa, sb := &pr.a.state[i], &pr.b.state[i]
	for _, w := range what {
		switch w {
		case "param":
			require.Equal(t, data(pr.pb[i]), data(pr.pa[i]), "param %d", i)
		case "step":
			require.Equal(t, sb.step, sa.step, "step of param %d", i)
		case "mu_product":
			require.Equal(t, sb.muProduct, sa.muProduct, "mu_product of param %d", i)
		default:
			require.Equal(t, data(*sb.field(w)), data(*sa.field(w)), "%s of param %d", w, i)
		}
	}
}

// failAt makes the n-th write number w (counting from 1) of trial steps raise, as libtorch does.
func failAt(t *testing.T, w, n int) *int {
	calls := new(int)
	faultHook = func(write int) {
		if write != w {
			return
		}
		*calls++
		if *calls == n {
			panic(&bridge.Error{Op: "injected", Msg: "value cannot be converted to type float without overflow"})
		}
	}
	t.Cleanup(func() { faultHook = nil })
	return calls
}

func adamPair(t *testing.T, n int) *pair {
	return newPair(t, n, func(g []Group) (*Optimizer, error) { return NewAdam(g, DefaultAdam()) })
}

// A valid change takes the trial path once; its result is bitwise what the fast path gives.
func TestTrialStepIsBitwiseTheFastPath(t *testing.T) {
	cases := []struct {
		name   string
		mk     func([]Group) (*Optimizer, error)
		change map[string]any
	}{
		{"sgd", func(g []Group) (*Optimizer, error) {
			return NewSGD(g, SGDOptions{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01})
		}, map[string]any{"lr": 0.03, "momentum": 0.5, "maximize": true}},
		{"adam", func(g []Group) (*Optimizer, error) {
			o := DefaultAdam()
			o.WeightDecay = 0.1
			return NewAdam(g, o)
		}, map[string]any{"lr": 0.02, "betas": []any{0.8, 0.9}, "amsgrad": true, "eps": 1e-4}},
		{"adamw", func(g []Group) (*Optimizer, error) {
			o := DefaultAdamW()
			o.AMSGrad = true
			return NewAdamW(g, o)
		}, map[string]any{"lr": 0.05, "weight_decay": 0.3, "maximize": true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pr := newPair(t, 2, c.mk)
			for range 3 {
				pr.step()
			}
			require.NoError(t, pr.a.SetParams(AllGroups, c.change))
			require.NoError(t, pr.b.SetParams(AllGroups, c.change))
			require.NotNil(t, pr.b.groups[0].trial)
			pr.b.groups[0].trial = nil // b takes the fast path
			for range 3 {
				pr.step()
			}
			require.Nil(t, pr.a.groups[0].trial, "settled by the first step")
			require.Nil(t, pr.a.TakeRollbacks())
			for i := range 2 {
				pr.requireSame(t, i, "param", "step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")
			}
		})
	}
}

// An lr change that fails at the update's last write (the parameter's): the moments written
// before do not read lr, so after the rollback the state is exactly the twin's.
func TestRollbackAtTheLastWriteIsExact(t *testing.T) {
	pr := adamPair(t, 1)
	for range 3 {
		pr.step()
	}
	require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 0.5}))
	calls := failAt(t, adamParam, 1)
	pr.step()
	require.Equal(t, 2, *calls, "failed once, then resumed at that write")
	rbs := pr.a.TakeRollbacks()
	require.Len(t, rbs, 1)
	require.Equal(t, map[string]any{"lr": 1e-3}, rbs[0].Restored)
	require.Empty(t, rbs[0].Left)
	require.ErrorContains(t, rbs[0].Err, "injected")
	require.Equal(t, 1e-3, pr.a.LR(0))
	pr.requireSame(t, 0, "param", "step", "exp_avg", "exp_avg_sq")
	pr.step()
	pr.requireSame(t, 0, "param", "step", "exp_avg", "exp_avg_sq")
}

// A betas change that fails after exp_avg was written with the new beta1: exp_avg keeps that
// write (Left says so), the rest of the update runs with the old betas, and the step is counted
// once.
func TestRollbackMidUpdateSaysWhatWasLeft(t *testing.T) {
	pr := adamPair(t, 1)
	for range 2 {
		pr.step()
	}
	require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"betas": []any{0.5, 0.6}}))
	failAt(t, adamSqDecay, 1)
	pr.step()
	rbs := pr.a.TakeRollbacks()
	require.Len(t, rbs, 1)
	require.Equal(t, map[string]any{"betas": [2]float64{0.9, 0.999}}, rbs[0].Restored)
	require.Equal(t, "parameter 0 of group 0 had written exp_avg with the new betas before the error; "+
		"its update was completed with the previous values", rbs[0].Left)
	pr.requireSame(t, 0, "step", "exp_avg_sq")
	require.NotEqual(t, data(pr.b.state[0].t[fExpAvg]), data(pr.a.state[0].t[fExpAvg]))
}

// A failure before the update wrote anything undoes what it did (the state it created, the step
// count): exact, even on the very first step.
func TestRollbackBeforeAnyWriteIsExact(t *testing.T) {
	pr := adamPair(t, 1)
	require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 0.5, "amsgrad": true}))
	failAt(t, adamAvgDecay, 1)
	pr.step()
	rbs := pr.a.TakeRollbacks()
	require.Len(t, rbs, 1)
	require.Empty(t, rbs[0].Left)
	require.Equal(t, map[string]any{"lr": 1e-3, "amsgrad": false}, rbs[0].Restored)
	require.Nil(t, pr.a.state[0].t[fMaxExpAvgSq], "the max_exp_avg_sq made for amsgrad is dropped")
	pr.requireSame(t, 0, "param", "step", "exp_avg", "exp_avg_sq")
}

// The group's second parameter fails: the first one keeps its update with the new values.
func TestRollbackAfterEarlierParameters(t *testing.T) {
	pr := adamPair(t, 2)
	pr.step()
	require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 0.5}))
	failAt(t, adamParam, 2)
	pr.step()
	rbs := pr.a.TakeRollbacks()
	require.Len(t, rbs, 1)
	require.Equal(t, "1 parameter(s) of group 0 updated earlier in this step kept the update made with the new values", rbs[0].Left)
	require.NotEqual(t, data(pr.pb[0]), data(pr.pa[0]))
	pr.requireSame(t, 1, "param", "step", "exp_avg", "exp_avg_sq")
}

// SGD: momentum switched on live, failing at the parameter's write after the momentum buffer was
// created: the buffer stays (Left), the parameter is updated as with momentum 0.
func TestSGDRollbackKeepsACreatedBuffer(t *testing.T) {
	pr := newPair(t, 1, func(g []Group) (*Optimizer, error) { return NewSGD(g, SGDOptions{LR: 0.1}) })
	pr.step()
	require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"momentum": 0.9}))
	failAt(t, sgdParam, 1)
	pr.step()
	rbs := pr.a.TakeRollbacks()
	require.Len(t, rbs, 1)
	require.Contains(t, rbs[0].Left, "had written momentum_buffer with the new momentum")
	require.Equal(t, 0.0, pr.a.groups[0].h.momentum)
	pr.requireSame(t, 0, "param")
	require.NotNil(t, pr.a.state[0].t[fMomentumBuffer])
}

// Failures that are not the change's: they panic as before.
func TestFailuresNotCausedByTheChangePanic(t *testing.T) {
	t.Run("the change set the values back", func(t *testing.T) {
		pr := adamPair(t, 1)
		require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 0.5}))
		require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 1e-3}))
		failAt(t, adamParam, 1)
		pr.grads()
		require.PanicsWithError(t, "torch: injected: value cannot be converted to type float without overflow", func() { pr.a.Step() })
		require.Nil(t, pr.a.TakeRollbacks())
	})
	t.Run("the previous values fail too", func(t *testing.T) {
		pr := adamPair(t, 1)
		require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 0.5}))
		faultHook = func(w int) {
			if w == adamParam {
				panic(&bridge.Error{Op: "injected", Msg: "always"})
			}
		}
		t.Cleanup(func() { faultHook = nil })
		pr.grads()
		require.Panics(t, func() { pr.a.Step() })
		require.Len(t, pr.a.TakeRollbacks(), 1, "rolled back before the retry failed")
		require.Equal(t, 1e-3, pr.a.LR(0))
	})
	t.Run("no change", func(t *testing.T) {
		pr := adamPair(t, 1)
		require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 1e-3}))
		require.Equal(t, int64(0), pr.a.Revision(), "nothing changed: no revision, no trial")
		require.Nil(t, pr.a.groups[0].trial)
	})
}

// The optimizers beyond SGD and Adam: a valid change's trial step is bitwise the fast path, and
// an lr change failing at the parameter's write rolls back exactly.
func TestTrialStepsOfTheOtherKinds(t *testing.T) {
	kinds := []struct {
		name   string
		mk     func([]Group) (*Optimizer, error)
		change map[string]any
		param  int      // the write of the parameter that reads lr
		fields []string // the state to compare
	}{
		{"rmsprop", func(g []Group) (*Optimizer, error) {
			o := DefaultRMSprop()
			o.Momentum, o.Centered = 0.9, true
			return NewRMSprop(g, o)
		}, map[string]any{"lr": 0.03, "alpha": 0.5, "eps": 1e-3}, rmsParam, []string{"square_avg", "grad_avg", "momentum_buffer"}},
		{"rmsprop momentum and centered switched on", func(g []Group) (*Optimizer, error) { return NewRMSprop(g, DefaultRMSprop()) },
			map[string]any{"momentum": 0.5, "centered": true}, rmsParam, []string{"square_avg", "grad_avg", "momentum_buffer"}},
		{"adagrad", func(g []Group) (*Optimizer, error) { return NewAdagrad(g, DefaultAdagrad()) },
			map[string]any{"lr": 0.5, "lr_decay": 0.1, "maximize": true}, agParam, []string{"sum"}},
		{"adadelta", func(g []Group) (*Optimizer, error) { return NewAdadelta(g, DefaultAdadelta()) },
			map[string]any{"lr": 0.5, "rho": 0.5, "weight_decay": 0.1}, adParam, []string{"square_avg", "acc_delta"}},
		{"adamax", func(g []Group) (*Optimizer, error) { return NewAdamax(g, DefaultAdamax()) },
			map[string]any{"lr": 0.05, "betas": []any{0.5, 0.6}}, axParam, []string{"exp_avg", "exp_inf"}},
		{"nadam", func(g []Group) (*Optimizer, error) { return NewNAdam(g, DefaultNAdam()) },
			map[string]any{"lr": 0.05, "momentum_decay": 0.2}, naParamGrad, []string{"exp_avg", "exp_avg_sq", "mu_product"}},
		{"radam", func(g []Group) (*Optimizer, error) { return NewRAdam(g, DefaultRAdam()) },
			map[string]any{"lr": 0.05, "betas": []any{0.8, 0.9}}, raParam, []string{"exp_avg", "exp_avg_sq"}},
	}
	for _, k := range kinds {
		fields := append([]string{"param", "step"}, k.fields...)
		t.Run(k.name+" trial is the fast path", func(t *testing.T) {
			pr := newPair(t, 2, k.mk)
			for range 3 {
				pr.step()
			}
			require.NoError(t, pr.a.SetParams(AllGroups, k.change))
			require.NoError(t, pr.b.SetParams(AllGroups, k.change))
			pr.b.groups[0].trial = nil
			for range 3 {
				pr.step()
			}
			require.Nil(t, pr.a.TakeRollbacks())
			for i := range 2 {
				pr.requireSame(t, i, fields...)
			}
		})
		t.Run(k.name+" rollback at the parameter's write", func(t *testing.T) {
			pr := newPair(t, 1, k.mk)
			for range 2 {
				pr.step()
			}
			lr := pr.a.LR(0)
			require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 0.75}))
			failAt(t, k.param, 1)
			pr.step()
			rbs := pr.a.TakeRollbacks()
			require.Len(t, rbs, 1)
			require.Equal(t, map[string]any{"lr": lr}, rbs[0].Restored)
			require.Empty(t, rbs[0].Left)
			pr.requireSame(t, 0, fields...)
			pr.step()
			pr.requireSame(t, 0, fields...)
		})
	}
}

// Adadelta writes the parameter before acc_delta: a change failing at acc_delta leaves the
// parameter updated with the new values (Left says so) and acc_delta exactly the twin's.
func TestAdadeltaRollbackAfterTheParameter(t *testing.T) {
	pr := newPair(t, 1, func(g []Group) (*Optimizer, error) { return NewAdadelta(g, DefaultAdadelta()) })
	pr.step()
	require.NoError(t, pr.a.SetParams(AllGroups, map[string]any{"lr": 0.3}))
	failAt(t, adAcc, 1)
	pr.step()
	rbs := pr.a.TakeRollbacks()
	require.Len(t, rbs, 1)
	require.Equal(t, "parameter 0 of group 0 had written param with the new lr before the error; its update was completed with the previous values", rbs[0].Left)
	pr.requireSame(t, 0, "step", "square_avg", "acc_delta")
	require.NotEqual(t, data(pr.pb[0]), data(pr.pa[0]))
}

func TestAdagradInitialAccumulatorIsBuildOnly(t *testing.T) {
	p := bridge.FromSlice([]float32{1, 2}).SetRequiresGrad(true)
	o := DefaultAdagrad()
	o.InitialAccumulatorValue = 0.25
	opt, err := NewAdagrad(Params(p), o)
	require.NoError(t, err)
	require.Equal(t, []float32{0.25, 0.25}, opt.state[0].t[fSum].Float32s(), "the sum exists from the start")
	err = opt.Set(AllGroups, "initial_accumulator_value", 0.5)
	require.ErrorContains(t, err, `"initial_accumulator_value": cannot be changed: it fills Adagrad's sum`)
	v, err := opt.Get(0, "initial_accumulator_value")
	require.NoError(t, err)
	require.Equal(t, 0.25, v)
}

// LBFGS: a change whose trial step fails is rolled back with the parameters and the state put
// back, and the step rerun with the previous values gives exactly the twin's result.
func TestLBFGSRollback(t *testing.T) {
	mk := func() (*Optimizer, *bridge.Tensor, func() *bridge.Tensor) {
		p := bridge.FromSlice([]float32{1.5, -0.5, 2}).SetRequiresGrad(true)
		c := bridge.FromSlice([]float32{0.3, 1, -2})
		o := DefaultLBFGS()
		o.MaxIter, o.HistorySize = 4, 3
		opt, err := NewLBFGS([]*bridge.Tensor{p}, o)
		require.NoError(t, err)
		return opt, p, func() *bridge.Tensor {
			opt.ZeroGrad()
			l := p.Sub(c).Square().Sum().Add(p.Tanh().Sum())
			l.Backward()
			return l
		}
	}
	a, pa, ca := mk()
	b, pb, cb := mk()
	a.StepClosure(ca)
	b.StepClosure(cb)
	require.NoError(t, a.SetParams(AllGroups, map[string]any{"lr": 0.5, "line_search_fn": "strong_wolfe"}))
	calls := failAt(t, lbfgsAddGrad, 1)
	a.StepClosure(ca)
	b.StepClosure(cb)
	require.Equal(t, 1, *calls, "only the trial run is watched")
	rbs := a.TakeRollbacks()
	require.Len(t, rbs, 1)
	require.Equal(t, map[string]any{"lr": 1.0, "line_search_fn": ""}, rbs[0].Restored)
	require.Equal(t, "the closure ran 1 time(s) in the failed attempt (parameters and LBFGS state were put back)", rbs[0].Left)
	require.Equal(t, pb.Float32s(), pa.Float32s())
	require.Equal(t, b.lbfgs.funcEvals, a.lbfgs.funcEvals)
	require.Equal(t, b.lbfgs.d.Float32s(), a.lbfgs.d.Float32s())
	a.StepClosure(ca)
	b.StepClosure(cb)
	require.Equal(t, pb.Float32s(), pa.Float32s())
}
