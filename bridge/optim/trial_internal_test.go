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
