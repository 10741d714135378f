package guard_test

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callbacks/guard"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

func newEnv(t testing.TB) (*torchenv.Env, *[]string) {
	var lines []string
	return &torchenv.Env{RunDir: t.TempDir(), Log: func(s string) { lines = append(lines, s) }}, &lines
}

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		out = append(out, m)
	}
	return out
}

// run dispatches train_step_end for steps from..to-1 with the loss given by lossAt.
func run(t *testing.T, g *guard.AnomalyGuard, env *torchenv.Env, from, to int64, lossAt func(int64) float64) {
	for s := from; s < to; s++ {
		env.Step = s
		env.Loss = bridge.Scalar(lossAt(s))
		require.NoError(t, g.Handle(torchenv.TrainStepEnd, env))
	}
}

func nanAt(bad ...int64) func(int64) float64 {
	return func(s int64) float64 {
		for _, b := range bad {
			if s == b {
				return math.NaN()
			}
		}
		return 0.5
	}
}

func TestStopOnNaNLoss(t *testing.T) {
	env, logs := newEnv(t)
	g, err := guard.New("ag", map[string]any{"action": "stop"})
	require.NoError(t, err)
	run(t, g, env, 0, 3, nanAt())
	stop, _ := env.StopRequested()
	require.False(t, stop)
	require.Empty(t, *logs)
	run(t, g, env, 3, 5, nanAt(3))
	stop, why := env.StopRequested()
	require.True(t, stop)
	require.Equal(t, "anomaly_guard ag: loss is NaN at step 3", why)
	c := g.Counters()
	require.EqualValues(t, 5, c.Checks)
	require.EqualValues(t, 1, c.Anomalies)
	require.EqualValues(t, 3, c.FirstStep)
	require.Equal(t, map[string]int64{"loss": 1}, c.ByPath)
	require.Len(t, *logs, 1)
	require.Equal(t, "anomaly_guard ag: loss is NaN at step 3 (train_step_end; anomaly 1, first at step 3; action=stop; stop requested)", (*logs)[0])
	recs := readJSONL(t, filepath.Join(env.RunDir, "guard", "anomalies.jsonl"))
	require.Len(t, recs, 1)
	require.Equal(t, 3.0, recs[0]["first_step"])
	require.Equal(t, "stop", recs[0]["action"])
	require.Equal(t, map[string]any{"loss": map[string]any{"numel": 1.0, "nan": 1.0, "inf": 0.0}}, recs[0]["findings"])
}

func TestLogModeCountsAndCapsReports(t *testing.T) {
	env, logs := newEnv(t)
	g, err := guard.New("ag", map[string]any{"max_reports": 2})
	require.NoError(t, err)
	require.Equal(t, guard.ActionLog, g.Params().Action, "log is the default")
	run(t, g, env, 0, 10, nanAt(2, 4, 5, 7, 9))
	stop, _ := env.StopRequested()
	require.False(t, stop, "log mode never stops")
	c := g.Counters()
	require.EqualValues(t, 5, c.Anomalies)
	require.EqualValues(t, 2, c.FirstStep)
	require.EqualValues(t, 9, c.LastStep)
	require.False(t, c.Tripped)
	require.Len(t, *logs, 3, "two reports, then one line saying the rest are counted")
	require.Contains(t, (*logs)[1], "anomaly 2, first at step 2; action=log)")
	require.Equal(t, "anomaly_guard ag: 2 anomalies reported; further ones are counted, not reported", (*logs)[2])
	require.Len(t, readJSONL(t, filepath.Join(env.RunDir, "guard", "anomalies.jsonl")), 2)
}

func TestDisableModeDisarmsUntilSetParams(t *testing.T) {
	env, logs := newEnv(t)
	g, err := guard.New("ag", map[string]any{"action": "disable"})
	require.NoError(t, err)
	run(t, g, env, 0, 6, nanAt(1, 2, 3))
	c := g.Counters()
	require.True(t, c.Tripped)
	require.EqualValues(t, 1, c.Anomalies, "disarmed after the first")
	require.EqualValues(t, 2, c.Checks, "later events are ignored")
	require.Contains(t, (*logs)[0], "guard disarmed (set_params re-arms it)")
	stop, _ := env.StopRequested()
	require.False(t, stop)

	require.Error(t, g.SetParams(map[string]any{"action": "explode"}))
	require.True(t, g.Counters().Tripped, "a refused set_params changes nothing")
	require.NoError(t, g.SetParams(map[string]any{"action": "disable"}))
	require.False(t, g.Counters().Tripped)
	run(t, g, env, 6, 8, nanAt(7))
	require.EqualValues(t, 2, g.Counters().Anomalies)
	require.EqualValues(t, 1, g.Counters().FirstStep, "the first anomaly is remembered")
	require.True(t, g.Counters().Tripped)
}

func TestTensorPathsAndGrads(t *testing.T) {
	env, logs := newEnv(t)
	g, err := guard.New("ag", map[string]any{"paths": "loss,outputs,targets,extra.big,extra.val,extra.nope", "grads": true})
	require.NoError(t, err)
	model := models.MLP(4, 8, 3)
	x, y := bridge.Randn(bridge.Shape{8, 4}), bridge.RandInt(0, 3, bridge.Shape{8})
	nn.ZeroGrad(model)
	env.Outputs = model.Forward(x)
	env.Loss = bridge.CrossEntropy(env.Outputs, y)
	env.Loss.Backward()
	env.Model, env.Targets = model, y
	env.Extra = map[string]any{
		"big": bridge.FromSlice([]float32{3e38, 3e38, -1}, 3), // the sum overflows; nothing is wrong
		"val": 0.7,
	}
	require.NoError(t, g.Handle(torchenv.TrainStepEnd, env))
	require.Empty(t, g.Findings(), "healthy: %v", g.Findings())
	require.Len(t, *logs, 1)
	require.Contains(t, (*logs)[0], `extra.nope not checked: env path "extra.nope": no key "nope" (reported once)`)

	bridge.NoGrad(func() {
		o := env.Outputs.Detach()
		o.Narrow(0, 0, 1).FillInPlace(math.NaN())
		o.Narrow(0, 1, 1).Narrow(1, 0, 1).FillInPlace(math.Inf(1))
		nn.NamedParameters(model)[2].Tensor.Grad().Narrow(0, 0, 2).FillInPlace(math.Inf(-1)) // 3.weight
	})
	env.Extra["val"] = math.NaN()
	env.Step = 1
	require.NoError(t, g.Handle(torchenv.TrainStepEnd, env))
	got := g.Findings()
	require.Equal(t, []guard.Finding{
		{Path: "outputs", NaN: 3, Inf: 1, Numel: 24},
		{Path: "extra.val", NaN: 1, Numel: 1},
		{Path: "grad:3.weight", Inf: 16, Numel: 24},
	}, got)
	require.Contains(t, (*logs)[1], "outputs has 3 NaN and 1 Inf of 24 elements, extra.val is NaN, grad:3.weight has 0 NaN and 16 Inf of 24 elements at step 1")
}

func TestBadParams(t *testing.T) {
	g, err := guard.New("ag", map[string]any{"every": 2})
	require.NoError(t, err)
	before := g.Params()
	for _, c := range []struct {
		in  map[string]any
		key string
	}{
		{map[string]any{"action": "halt"}, "action"},
		{map[string]any{"every": 0, "action": "stop"}, "every"},
		{map[string]any{"max_reports": -1}, "max_reports"},
		{map[string]any{"grads": "sometimes"}, "grads"},
		{map[string]any{"event": "step_end"}, "event"},
	} {
		err := g.SetParams(c.in)
		var pe *params.Error
		require.ErrorAs(t, err, &pe, "%v", c.in)
		require.Equal(t, c.key, pe.Key)
		require.Contains(t, err.Error(), `param "`+c.key+`"`)
		require.Equal(t, before, g.Params())
	}
	require.ErrorContains(t, g.SetParams(map[string]any{"action": "halt"}), "want one of log, disable, stop")
}

// TestStopsARealLoop trains an MLP through a controller that loads the guard with hotcb's
// names; a NaN in the inputs at step 5 makes the loss NaN, and the loop stops at its check.
func TestStopsARealLoop(t *testing.T) {
	dir := t.TempDir()
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	require.NoError(t, os.WriteFile(cmds, []byte(
		`{"module":"cb","op":"load","id":"ag","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.anomaly_guard","symbol":"AnomalyGuardCallback"},"init":{"action":"stop","grads":true}}`+"\n"+
			`{"module":"cb","op":"load","id":"ag2","target":{"kind":"module","path":"hotcb.modules.cb.callbacks","symbol":"AnomalyGuardCallback"},"init":{"out_path":"guard/ag2.jsonl"}}`+"\n"), 0o600))
	var logs []string
	c, err := controller.New(controller.Options{CommandsPath: cmds, PollEveryStep: true, Log: func(s string) { logs = append(logs, s) }})
	require.NoError(t, err)
	defer c.Close()
	model := models.MLP(4, 8, 3)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	env := &torchenv.Env{RunDir: dir, Model: model, Optimizer: opt}
	y := bridge.RandInt(0, 3, bridge.Shape{8})
	var last int64 = -1
	for s := int64(0); s < 20; s++ {
		if stop, _ := env.StopRequested(); stop {
			break
		}
		env.Step = s
		x := bridge.Randn(bridge.Shape{8, 4})
		if s == 5 {
			bridge.NoGrad(func() { x.Narrow(0, 0, 1).FillInPlace(math.NaN()) })
		}
		opt.ZeroGrad()
		env.Loss = bridge.CrossEntropy(model.Forward(x), y)
		env.Loss.Backward()
		c.Apply(env, torchenv.TrainStepEnd)
		opt.Step()
		last = s
	}
	require.EqualValues(t, 5, last, "the loop stopped after the step that went bad")
	_, why := env.StopRequested()
	require.True(t, strings.HasPrefix(why, "anomaly_guard ag: loss is NaN, grad:1.weight has "), why)
	joined := strings.Join(logs, "\n")
	require.NotContains(t, joined, "callback ag failed")
	recs := readJSONL(t, filepath.Join(dir, "guard", "anomalies.jsonl"))
	require.Len(t, recs, 1)
	require.Equal(t, 5.0, recs[0]["step"])
	require.Len(t, readJSONL(t, filepath.Join(dir, "guard", "ag2.jsonl")), 1, "the second guard (log) saw it too")
}

func BenchmarkGuardIdle(b *testing.B) {
	env, _ := newEnv(b)
	env.Loss, env.Step = bridge.Scalar(0.5), 1
	g, _ := guard.New("ag", map[string]any{"every": 1000})
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Handle(torchenv.TrainStepEnd, env)
	}
}

// BenchmarkGuardLoss is the default guard's cost on every step: one Item of the loss.
func BenchmarkGuardLoss(b *testing.B) {
	env, _ := newEnv(b)
	env.Loss = bridge.Scalar(0.5)
	g, _ := guard.New("ag", nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Handle(torchenv.TrainStepEnd, env)
	}
}

// BenchmarkGuardOutputsAndGrads checks a [64,10] output and the 4 gradients of a 784-256-10 MLP.
func BenchmarkGuardOutputsAndGrads(b *testing.B) {
	env, _ := newEnv(b)
	model := models.MLP(784, 256, 10)
	x, y := bridge.Randn(bridge.Shape{64, 784}), bridge.RandInt(0, 10, bridge.Shape{64})
	env.Outputs = model.Forward(x)
	env.Loss = bridge.CrossEntropy(env.Outputs, y)
	env.Loss.Backward()
	env.Model = model
	g, _ := guard.New("ag", map[string]any{"paths": "loss,outputs", "grads": true})
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Handle(torchenv.TrainStepEnd, env)
	}
}

func TestNothingToCheckIsRefused(t *testing.T) {
	g, err := guard.New("ag", nil)
	require.NoError(t, err)
	err = g.SetParams(map[string]any{"paths": []any{}})
	require.ErrorContains(t, err, `param "paths": want at least one path (or grads=true), got []`)
	require.Equal(t, []string{"loss"}, g.Params().Paths)
	require.NoError(t, g.SetParams(map[string]any{"paths": []any{}, "grads": true}))
	env, _ := newEnv(t)
	env.Extra = map[string]any{"f32": float32(math.Inf(1))}
	require.NoError(t, g.SetParams(map[string]any{"paths": "extra.f32", "grads": false}))
	require.NoError(t, g.Handle(torchenv.TrainStepEnd, env))
	require.Equal(t, []guard.Finding{{Path: "extra.f32", Inf: 1, Numel: 1}}, g.Findings())
}

// TestActionParam: the action param that package spec describes has the Action constants.
func TestActionParam(t *testing.T) {
	for _, p := range spec.AnomalyGuard.Params() {
		if p.Key == "action" {
			require.Equal(t, "oneof="+guard.ActionLog+"|"+guard.ActionDisable+"|"+guard.ActionStop, p.Rules)
			require.Equal(t, guard.ActionLog, p.Default)
			return
		}
	}
	t.Fatal("no action param")
}
