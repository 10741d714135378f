package kernel_test

import (
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

// TestSetParamsOnEveryKind: `opt set_params` reaches the optimizers beyond SGD and Adam with
// their own keys (numbers as the command file gives them, LBFGS's integer counts and
// line_search_fn), and refuses their out-of-range values with the reason in the ledger.
func TestSetParamsOnEveryKind(t *testing.T) {
	kinds := []struct {
		name      string
		make      func(ps []*bridge.Tensor) (*optim.Optimizer, error)
		good      string // params of an applied set_params
		want      map[string]any
		bad, why  string // params of a refused one, and the reason
		closureOK bool   // LBFGS: steps with StepClosure
	}{
		{"rmsprop", func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			return optim.NewRMSprop(optim.Params(ps...), optim.DefaultRMSprop())
		}, `{"alpha":0.9,"momentum":0.5,"centered":true}`, map[string]any{"alpha": 0.9, "momentum": 0.5, "centered": true},
			`{"alpha":-1}`, `"alpha": must be >= 0, got -1`, false},
		{"adagrad", func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			return optim.NewAdagrad(optim.Params(ps...), optim.DefaultAdagrad())
		}, `{"lr_decay":0.01,"eps":1e-6}`, map[string]any{"lr_decay": 0.01, "eps": 1e-6},
			`{"initial_accumulator_value":0.1}`, `"initial_accumulator_value": cannot be changed`, false},
		{"adadelta", func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			return optim.NewAdadelta(optim.Params(ps...), optim.DefaultAdadelta())
		}, `{"rho":0.5,"lr":0.3}`, map[string]any{"rho": 0.5, "lr": 0.3},
			`{"rho":1.5}`, `"rho": must be in [0, 1], got 1.5`, false},
		{"adamax", func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			return optim.NewAdamax(optim.Params(ps...), optim.DefaultAdamax())
		}, `{"betas":[0.8,0.9]}`, map[string]any{"betas": [2]float64{0.8, 0.9}},
			`{"amsgrad":true}`, `adamax has no such hyper-parameter`, false},
		{"nadam", func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			return optim.NewNAdam(optim.Params(ps...), optim.DefaultNAdam())
		}, `{"momentum_decay":0.01,"beta1":0.85}`, map[string]any{"momentum_decay": 0.01, "beta1": 0.85},
			`{"maximize":true}`, `nadam has no such hyper-parameter`, false},
		{"radam", func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			return optim.NewRAdam(optim.Params(ps...), optim.DefaultRAdam())
		}, `{"weight_decay":0.1}`, map[string]any{"weight_decay": 0.1},
			`{"lr":1e39}`, `lr=1e+39 overflows float32`, false},
		{"lbfgs", func(ps []*bridge.Tensor) (*optim.Optimizer, error) {
			o := optim.DefaultLBFGS()
			o.MaxIter = 3
			return optim.NewLBFGS(ps, o)
		}, `{"max_iter":5,"history_size":4,"line_search_fn":"strong_wolfe","lr":0.5}`,
			map[string]any{"max_iter": 5, "history_size": 4, "line_search_fn": "strong_wolfe", "lr": 0.5},
			`{"max_iter":2.5}`, `"max_iter": want an integer, got 2.5`, true},
	}
	for _, kd := range kinds {
		t.Run(kd.name, func(t *testing.T) {
			dir := t.TempDir()
			k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{PollEveryStep: true, AllowAnyOwner: true}})
			require.NoError(t, err)
			defer k.Close()
			w := bridge.FromSlice([]float32{1, -2, 0.5}).SetRequiresGrad(true)
			opt, err := kd.make([]*bridge.Tensor{w})
			require.NoError(t, err)
			k.RegisterOptimizer("main", opt)
			env := &torchenv.Env{}
			closure := func() *bridge.Tensor {
				opt.ZeroGrad()
				l := w.Square().Sum().Add(w.Sum())
				l.Backward()
				return l
			}
			step := func() {
				if kd.closureOK {
					opt.StepClosure(closure)
				} else {
					closure()
					opt.Step()
				}
				k.Apply(env, torchenv.TrainStepEnd)
				env.Step++
			}
			step()
			cmds := filepath.Join(dir, rundir.Commands)
			require.NoError(t, rundir.AppendLine(cmds, []byte(`{"module":"opt","op":"set_params","id":"main","params":`+kd.good+`}`)))
			step()
			require.NoError(t, rundir.AppendLine(cmds, []byte(`{"module":"opt","op":"set_params","id":"main","params":`+kd.bad+`}`)))
			step()
			step()
			for key, v := range kd.want {
				got, err := opt.Get(0, key)
				require.NoError(t, err)
				require.Equal(t, v, got, key)
			}
			require.Empty(t, opt.TakeRollbacks())
			for _, x := range w.Float32s() {
				require.False(t, x != x, "finite parameters")
			}
			es, _, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
			require.NoError(t, err)
			s := summary(es)
			require.Len(t, s, 2)
			require.Equal(t, "1 opt.set_params(main) external applied", s[0])
			require.Contains(t, s[1], "2 opt.set_params(main) external failed: ")
			require.Contains(t, s[1], kd.why)
		})
	}
}

// An RMSprop change that libtorch refuses at the next Step's trial (the parameter moved to
// float16, where the trial update on float16 scratch tensors fails: on the CPU, libtorch has no
// float16 addcmul_) is rolled back and recorded, as SGD's and Adam's are; the step then runs with
// the previous values on the state, still float32.
func TestRMSpropRollbackIsRecorded(t *testing.T) {
	dir := t.TempDir()
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{PollEveryStep: true, AllowAnyOwner: true}})
	require.NoError(t, err)
	w := bridge.Ones(bridge.Shape{3}).SetRequiresGrad(true)
	o := optim.DefaultRMSprop()
	o.Momentum = 0.9
	opt, err := optim.NewRMSprop(optim.Params(w), o)
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
	step()
	require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands),
		[]byte(`{"module":"opt","op":"set_params","id":"main","params":{"lr":100000}}`)))
	step()
	w.SetData(w.To(bridge.Float16))
	step()
	step()
	require.NoError(t, k.Close())
	require.Equal(t, 1e-2, opt.LR(0))
	es, _, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Equal(t, []string{"1 opt.set_params(main) external applied", "2 opt.set_params(main) rollback applied"}, summary(es))
	require.Equal(t, map[string]any{"lr": 1e-2}, es[1].Payload["params"])
	require.Contains(t, *es[1].Notes, "rolled back the set_params applied at step 1: torch: addcmul_:")
}
