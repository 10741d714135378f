package kernel_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// TestSetParamsOverflowingTheDTypeFails: `opt set_params lr=1e308` on an Adam over float32
// parameters used to be applied, and the next Step panicked ("value cannot be converted to type
// float without overflow") and killed the run. It is refused now, with a reason, and the run goes
// on with the old learning rate.
func TestSetParamsOverflowingTheDTypeFails(t *testing.T) {
	dir := t.TempDir()
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{PollEveryStep: true, AllowAnyOwner: true}})
	require.NoError(t, err)
	defer k.Close()
	w := bridge.Ones(bridge.Shape{3}).SetRequiresGrad(true)
	opt, err := optim.NewAdam(optim.Params(w), optim.DefaultAdam())
	require.NoError(t, err)
	k.RegisterOptimizer("main", opt)
	env := &torchenv.Env{}
	step := func() {
		w.Sum().Backward()
		opt.Step()
		opt.ZeroGrad()
		k.Apply(env, torchenv.TrainStepEnd)
		env.Step++
	}
	// By step 10 Adam's bias correction is large enough for lr/(1-beta1^step) to be finite in
	// float64, so an accepted lr=1e308 reaches libtorch as an overflowing float32 scalar.
	for range 10 {
		step()
	}
	require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands),
		[]byte(`{"module":"opt","op":"set_params","id":"main","params":{"lr":1e308}}`)))
	for range 10 {
		step()
	}
	require.Equal(t, 1e-3, opt.LR(0), "lr unchanged")
	for _, v := range w.Float32s() {
		require.False(t, math.IsInf(float64(v), 0) || math.IsNaN(float64(v)))
		require.InDelta(t, 1-20*1e-3, v, 1e-4, "20 Adam steps of lr 1e-3 on a constant gradient")
	}
	es, _, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Equal(t, []string{
		`10 opt.set_params(main) external failed: opt set_params main: optim: hyper-parameter "lr": lr=1e+308 overflows float32 (max 3.4e+38)`,
	}, summary(es))
}

// TestStepFailureAfterAChangeIsRolledBack: a change the optimizer accepted fails in libtorch at
// the next Step (the parameter was moved to float16 in between, where lr=1e5 overflows). The
// step is completed with the previous lr, training goes on, and the next safe point records the
// rollback in the ledger — which a replay of the exported recipe reproduces.
func TestStepFailureAfterAChangeIsRolledBack(t *testing.T) {
	const set = `{"module":"opt","op":"set_params","id":"main","params":{"lr":100000}}`
	loop := func(r *run) (lrs []float64, ws [][]float32) {
		for i := range 6 {
			if i == 1 {
				r.cmd(set) // applied at step 1's safe point
			}
			if i == 2 {
				r.w.SetData(r.w.To(bridge.Float16))
			}
			r.step()
			lrs = append(lrs, r.opt.LR(0))
			ws = append(ws, r.w.Float32s())
		}
		return lrs, ws
	}
	dir := t.TempDir()
	r := newRun(t, dir)
	lrs, ws := loop(r)
	require.NoError(t, r.k.Close())
	require.Equal(t, []float64{0.1, 1e5, 0.1, 0.1, 0.1, 0.1}, lrs, "rolled back at step 2, then training goes on")
	// Steps of 0.1 with grad 1: 0.9, then (step 1 with lr 0.1, the change is seen by step 2) 0.8,
	// then in float16 0.7, 0.6, ...
	require.InDelta(t, 0.8, ws[1][0], 1e-6)
	require.InDelta(t, 0.7, ws[2][0], 1e-3, "step 2 ran with the restored lr")
	require.InDelta(t, 0.4, ws[5][0], 2e-3)

	es := r.ledger()
	require.Equal(t, []string{
		"1 opt.set_params(main) external applied",
		"2 opt.set_params(main) rollback applied",
	}, summary(es))
	rb := es[1]
	require.NotNil(t, rb.Notes)
	require.Equal(t, "rolled back the set_params applied at step 1: torch: add_: value cannot be converted to type at::Half without overflow", *rb.Notes)
	require.Equal(t, map[string]any{"lr": 0.1}, rb.Payload["params"])
	require.Nil(t, rb.Error)

	recipe, err := rundir.ExportRecipe(es)
	require.NoError(t, err)
	require.Len(t, recipe, 2)
	require.Equal(t, int64(2), recipe[1].At.Step)
	require.Equal(t, map[string]any{"lr": 0.1}, recipe[1].Params)

	// Replay: the same program with the recipe ends where the recorded run did.
	dir2 := t.TempDir()
	require.NoError(t, rundir.WriteRecipe(filepath.Join(dir2, rundir.Recipe), recipe))
	fz, _ := json.Marshal(rundir.FreezeState{Mode: "replay", Policy: "strict"})
	require.NoError(t, os.WriteFile(filepath.Join(dir2, rundir.Freeze), fz, 0o600))
	r2 := newRun(t, dir2)
	lrs2, ws2 := loop(r2)
	require.NoError(t, r2.k.Close())
	require.Equal(t, lrs, lrs2)
	require.Equal(t, ws, ws2)
}

// With several groups the rollback entry names the group; a change the program made itself
// (not through the control plane) is rolled back and recorded too.
func TestRollbackOfOneGroupAndOfAChangeMadeByTheProgram(t *testing.T) {
	dir := t.TempDir()
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{PollEveryStep: true, AllowAnyOwner: true}})
	require.NoError(t, err)
	a, b := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true), bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	opt, err := optim.NewSGD([]optim.Group{{Params: []*bridge.Tensor{a}}, {Params: []*bridge.Tensor{b}}}, optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	k.RegisterOptimizer("main", opt)
	env := &torchenv.Env{}
	step := func() {
		a.Sum().Backward()
		b.Sum().Backward()
		opt.Step()
		opt.ZeroGrad()
		k.Apply(env, torchenv.TrainStepEnd)
		env.Step++
	}
	step()
	require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands),
		[]byte(`{"module":"opt","op":"set_params","id":"main","params":{"lr":70000,"group":1}}`)))
	step()
	require.NoError(t, opt.SetParams(1, map[string]any{"momentum": 0.5})) // by the program
	b.SetData(b.To(bridge.Float16))
	step()
	step()
	require.NoError(t, k.Close())
	require.Equal(t, []float64{0.1, 0.1}, []float64{opt.LR(0), opt.LR(1)})
	es, _, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Equal(t, []string{"1 opt.set_params(main) external applied", "2 opt.set_params(main) rollback applied"}, summary(es))
	require.Equal(t, map[string]any{"lr": 0.1, "momentum": 0.0, "group": int64(1)}, es[1].Payload["params"])
	require.Equal(t, "rolled back the set_params applied at step 1 and 1 hyper-parameter change(s) made outside the control plane: "+
		"torch: add_: value cannot be converted to type at::Half without overflow", *es[1].Notes)
	require.InDeltaSlice(t, []float32{0.6, 0.6}, a.Float32s(), 1e-6, "group 0 took its 4 steps of lr 0.1")
}
