package stats_test

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
	"github.com/hotcb/hotcb/callbacks/stats"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// newEnv is an env over a temp run dir whose log lines are collected.
func newEnv(t testing.TB) (*torchenv.Env, *[]string) {
	var lines []string
	env := &torchenv.Env{RunDir: t.TempDir(), Phase: "train", Log: func(s string) { lines = append(lines, s) }}
	return env, &lines
}

// readJSONL parses every line of a run-dir file.
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
	require.NoError(t, sc.Err())
	return out
}

func meanStd(xs []float64) (mean, std, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		mean += x
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)-1)), lo, hi
}

// step trains an MLP one step the way hotcb's loop does (ZeroGrad, forward, Backward) and puts
// loss and outputs into env.
func step(env *torchenv.Env, model nn.Module, x, y *bridge.Tensor) {
	nn.ZeroGrad(model)
	out := model.Forward(x)
	loss := bridge.CrossEntropy(out, y)
	loss.Backward()
	env.Model, env.Loss, env.Outputs, env.Inputs, env.Targets = model, loss, out, x, y
}

func tinyBatch() (x, y *bridge.Tensor) {
	bridge.ManualSeed(7)
	return bridge.Randn(bridge.Shape{16, 4}), bridge.RandInt(0, 3, bridge.Shape{16})
}

func TestTensorStatsEqualGo(t *testing.T) {
	env, logs := newEnv(t)
	model := models.MLP(4, 8, 3)
	x, y := tinyBatch()
	step(env, model, x, y)
	env.Step = 10
	ts, err := stats.NewTensorStats("ts", map[string]any{"every": 5, "paths": "loss,outputs,targets,epoch"})
	require.NoError(t, err)
	require.NoError(t, ts.Handle(torchenv.TrainStepEnd, env))
	got, missing := ts.Last()
	require.Empty(t, missing)
	require.Len(t, got, 4)

	loss := got[0].Summary
	require.Equal(t, "loss", got[0].Path)
	require.Equal(t, bridge.Shape{}, loss.Shape)
	require.Equal(t, bridge.Float32, loss.DType)
	require.InDelta(t, env.Loss.Item(), loss.Mean, 1e-7)
	require.Zero(t, loss.Std, "a single element has std 0, not NaN")

	out := got[1].Summary
	vals := env.Outputs.Detach().Float64s()
	mean, std, lo, hi := meanStd(vals)
	require.Equal(t, bridge.Shape{16, 3}, out.Shape)
	require.EqualValues(t, 48, out.Numel)
	require.InDelta(t, mean, out.Mean, 1e-6)
	require.InDelta(t, std, out.Std, 1e-6)
	require.Equal(t, lo, out.Min)
	require.Equal(t, hi, out.Max)
	require.Zero(t, out.NaN)
	require.Zero(t, out.Inf)

	tg := got[2].Summary
	require.Equal(t, bridge.Int64, tg.DType)
	require.False(t, tg.HasMoments, "no mean of an integer tensor")
	require.True(t, tg.HasRange)
	ys := y.Int64s()
	ylo, yhi := ys[0], ys[0]
	for _, v := range ys {
		ylo, yhi = min(ylo, v), max(yhi, v)
	}
	require.Equal(t, float64(ylo), tg.Min)
	require.Equal(t, float64(yhi), tg.Max)
	require.False(t, got[3].Tensor)
	require.Equal(t, 0.0, got[3].Value)

	recs := readJSONL(t, filepath.Join(env.RunDir, "stats", "tensor_stats.jsonl"))
	require.Len(t, recs, 1)
	r := recs[0]
	require.Equal(t, "ts", r["id"])
	require.Equal(t, 10.0, r["step"])
	require.Equal(t, "train", r["phase"])
	o := r["stats"].(map[string]any)["outputs"].(map[string]any)
	require.Equal(t, []any{16.0, 3.0}, o["shape"])
	require.Equal(t, "float32", o["dtype"])
	require.InDelta(t, mean, o["mean"], 1e-6)
	require.InDelta(t, std, o["std"], 1e-6)
	require.Equal(t, []any{}, r["missing"])
	require.Len(t, *logs, 1)
	require.Contains(t, (*logs)[0], "tensor_stats ts step 10: loss [] float32 mean=")

	// Steps that are not a multiple of every, and other events, do nothing.
	for s := int64(11); s < 15; s++ {
		env.Step = s
		require.NoError(t, ts.Handle(torchenv.TrainStepEnd, env))
	}
	env.Step = 15
	require.NoError(t, ts.Handle(torchenv.BackwardEnd, env))
	require.EqualValues(t, 1, ts.Writer().Written())
}

func TestTensorStatsNaNInfAndOddTensors(t *testing.T) {
	env, _ := newEnv(t)
	nan, inf := math.NaN(), math.Inf(1)
	env.Outputs = bridge.FromSlice([]float32{1, float32(nan), 3, float32(inf), float32(nan), -2}, 2, 3)
	env.Extra = map[string]any{
		"empty": bridge.Zeros(bridge.Shape{0, 4}),
		"mask":  bridge.FromSlice([]bool{true, false, true}, 3),
		"half":  bridge.FromSlice([]float32{1, 2, 3, 4}, 4).To(bridge.Float16),
	}
	ts, err := stats.NewTensorStats("ts", map[string]any{"every": 1, "paths": []any{"outputs", "extra.empty", "extra.mask", "extra.half"}})
	require.NoError(t, err)
	require.NoError(t, ts.Handle(torchenv.TrainStepEnd, env))
	got, _ := ts.Last()
	require.Len(t, got, 4)
	o := got[0].Summary
	require.EqualValues(t, 2, o.NaN)
	require.EqualValues(t, 1, o.Inf)
	require.True(t, math.IsNaN(o.Mean))
	require.False(t, o.Finite())

	e := got[1].Summary
	require.Equal(t, bridge.Shape{0, 4}, e.Shape)
	require.False(t, e.HasMoments || e.HasRange, "an empty tensor has shape and dtype only")
	m := got[2].Summary
	require.Equal(t, bridge.Bool, m.DType)
	require.Equal(t, 0.0, m.Min)
	require.Equal(t, 1.0, m.Max)
	h := got[3].Summary
	require.Equal(t, bridge.Float16, h.DType)
	require.InDelta(t, 2.5, h.Mean, 1e-3)
	require.InDelta(t, math.Sqrt(5.0/3), h.Std, 2e-3)

	recs := readJSONL(t, filepath.Join(env.RunDir, "stats", "tensor_stats.jsonl"))
	out := recs[0]["stats"].(map[string]any)["outputs"].(map[string]any)
	require.Equal(t, "NaN", out["mean"], "non-finite numbers are strings, so the line is JSON")
	require.Equal(t, "NaN", out["max"])
	require.Equal(t, 2.0, out["nan"])
	require.Equal(t, 1.0, out["inf"])
}

func TestTensorStatsMissingPathWarnsOnce(t *testing.T) {
	env, logs := newEnv(t)
	env.Loss = bridge.Scalar(0.5)
	ts, err := stats.NewTensorStats("ts", map[string]any{"every": 1, "log": false})
	require.NoError(t, err)
	for s := int64(0); s < 3; s++ {
		env.Step = s
		require.NoError(t, ts.Handle(torchenv.TrainStepEnd, env), "a missing path is not an error")
	}
	require.Len(t, *logs, 1, "one warning for outputs, no report lines (log=false)")
	require.Contains(t, (*logs)[0], `tensor_stats ts: warning: outputs skipped: env path "outputs": not set at this safe point`)
	recs := readJSONL(t, filepath.Join(env.RunDir, "stats", "tensor_stats.jsonl"))
	require.Len(t, recs, 3)
	for _, r := range recs {
		require.Equal(t, []any{"outputs"}, r["missing"])
		require.Contains(t, r["stats"], "loss")
	}
	// New params start a new warning set.
	require.NoError(t, ts.SetParams(map[string]any{"paths": "loss,extra.nope"}))
	require.NoError(t, ts.Handle(torchenv.TrainStepEnd, env))
	require.Len(t, *logs, 2)
	require.Contains(t, (*logs)[1], "extra.nope skipped")
}

func TestGradStatsEqualGo(t *testing.T) {
	for _, normType := range []any{2, "inf"} {
		env, logs := newEnv(t)
		model := models.MLP(4, 8, 3)
		x, y := tinyBatch()
		step(env, model, x, y)
		gs, err := stats.NewGradStats("gs", map[string]any{"every": 1, "per_layer": true, "norm_type": normType})
		require.NoError(t, err)
		require.NoError(t, gs.Handle(torchenv.BackwardEnd, env))
		r := gs.Last()

		var sumsq, maxAbs float64
		layers := map[string]float64{}
		for _, p := range nn.NamedParameters(model) {
			layer := p.Name[:strings.LastIndexByte(p.Name, '.')]
			for _, g := range p.Tensor.Grad().Float64s() {
				sumsq += g * g
				maxAbs = math.Max(maxAbs, math.Abs(g))
				if normType == 2 {
					layers[layer] += g * g
				} else {
					layers[layer] = math.Max(layers[layer], math.Abs(g))
				}
			}
		}
		want := math.Sqrt(sumsq)
		if normType == "inf" {
			want = maxAbs
		}
		require.InEpsilon(t, want, r.Norm, 1e-6, "norm_type %v", normType)
		require.Equal(t, maxAbs, r.MaxAbs)
		require.Equal(t, 4, r.Params)
		require.Equal(t, 4, r.WithGrad)
		require.Empty(t, r.NaN)
		require.Empty(t, r.Inf)
		require.Len(t, r.Layers, 2)
		require.Equal(t, "1", r.Layers[0].Layer)
		require.Equal(t, "3", r.Layers[1].Layer)
		for _, ln := range r.Layers {
			w := layers[ln.Layer]
			if normType == 2 {
				w = math.Sqrt(w)
			}
			require.InEpsilon(t, w, ln.Norm, 1e-6)
		}
		// The total agrees with optim.ClipGradNorm's (torch.nn.utils.clip_grad_norm_).
		recs := readJSONL(t, filepath.Join(env.RunDir, "stats", "grad_stats.jsonl"))
		require.Len(t, recs, 1)
		require.InEpsilon(t, want, recs[0]["grad_norm"], 1e-6)
		require.Equal(t, 4.0, recs[0]["params_with_grad"])
		require.Contains(t, recs[0]["layers"], "3")
		require.Len(t, *logs, 1)
		require.Contains(t, (*logs)[0], "grad_stats gs step 0: grad_norm=")
	}
}

func TestGradStatsNaNInfAndMissingGrads(t *testing.T) {
	env, logs := newEnv(t)
	model := models.MLP(4, 8, 3)
	gs, err := stats.NewGradStats("gs", map[string]any{"every": 1, "event": "train_step_end"})
	require.NoError(t, err)
	env.Model = model
	require.NoError(t, gs.Handle(torchenv.TrainStepEnd, env))
	require.Equal(t, 0, gs.Last().WithGrad, "no backward yet: no gradients")
	require.Equal(t, 4, gs.Last().Params)

	x, y := tinyBatch()
	step(env, model, x, y)
	ps := nn.NamedParameters(model)
	bridge.NoGrad(func() {
		g := ps[0].Tensor.Grad() // 1.weight
		g.Narrow(0, 0, 1).FillInPlace(math.NaN())
		g.Narrow(0, 1, 1).FillInPlace(math.Inf(-1))
		ps[3].Tensor.Grad().Narrow(0, 2, 1).FillInPlace(math.Inf(1)) // 3.bias
	})
	env.Step = 1
	require.NoError(t, gs.Handle(torchenv.TrainStepEnd, env))
	r := gs.Last()
	require.True(t, math.IsNaN(r.Norm))
	require.True(t, math.IsNaN(r.MaxAbs))
	require.Equal(t, []string{"1.weight"}, r.NaN)
	require.Equal(t, []string{"1.weight", "3.bias"}, r.Inf)
	recs := readJSONL(t, filepath.Join(env.RunDir, "stats", "grad_stats.jsonl"))
	require.Equal(t, "NaN", recs[1]["grad_norm"])
	require.Equal(t, []any{"1.weight", "3.bias"}, recs[1]["inf_params"])
	require.Contains(t, (*logs)[len(*logs)-1], "NaN in 1.weight; Inf in 1.weight, 3.bias")

	// Without a model the optimizer's parameters are used, named by position.
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	env.Model, env.Optimizer = nil, opt
	require.NoError(t, gs.Handle(torchenv.TrainStepEnd, env))
	require.Equal(t, []string{"param.0", "param.3"}, gs.Last().Inf)
	// With neither, a warning, once.
	env.Optimizer = nil
	require.NoError(t, gs.Handle(torchenv.TrainStepEnd, env))
	require.NoError(t, gs.Handle(torchenv.TrainStepEnd, env))
	n := 0
	for _, l := range *logs {
		if strings.Contains(l, "no model and no optimizer") {
			n++
		}
	}
	require.Equal(t, 1, n)
}

func TestBadParamsKeepOldValues(t *testing.T) {
	ts, err := stats.NewTensorStats("ts", map[string]any{"every": 7, "paths": "loss"})
	require.NoError(t, err)
	before := ts.Params()
	for _, c := range []struct {
		in  map[string]any
		key string
	}{
		{map[string]any{"every": 0}, "every"},
		{map[string]any{"every": 2.5}, "every"},
		{map[string]any{"event": "backwards_end", "every": 3}, "event"},
		{map[string]any{"paths": []any{"loss", ""}}, "paths.1"},
		{map[string]any{"out_path": ""}, "out_path"},
		{map[string]any{"evry": 3}, "evry"},
	} {
		err := ts.SetParams(c.in)
		require.Error(t, err, "%v", c.in)
		var pe *params.Error
		require.ErrorAs(t, err, &pe)
		require.Equal(t, c.key, pe.Key)
		require.Contains(t, err.Error(), `"`+c.key+`"`)
		require.Equal(t, before, ts.Params(), "old values kept after %v", c.in)
	}
	_, err = stats.NewTensorStats("ts", map[string]any{"every": -1})
	require.ErrorContains(t, err, `param "every": want >= 1`)

	gs, err := stats.NewGradStats("gs", nil)
	require.NoError(t, err)
	err = gs.SetParams(map[string]any{"norm_type": 3, "per_layer": true})
	require.ErrorContains(t, err, `param "norm_type": want one of 2, +Inf`)
	require.False(t, gs.Params().PerLayer, "all or nothing")
	require.NoError(t, gs.SetParams(map[string]any{"norm_type": "inf"}))
	require.True(t, math.IsInf(gs.Params().NormType, 1))
	require.NoError(t, gs.SetParams(map[string]any{"norm_type": "inf"}), "idempotent")
}

func TestWriteErrorsAreCountedNotFatal(t *testing.T) {
	env, logs := newEnv(t)
	env.Loss = bridge.Scalar(1)
	// The record file's path is a directory: every open fails.
	require.NoError(t, os.MkdirAll(filepath.Join(env.RunDir, "stats", "tensor_stats.jsonl"), 0o700))
	ts, err := stats.NewTensorStats("ts", map[string]any{"every": 1, "paths": "loss", "log": false})
	require.NoError(t, err)
	for s := int64(0); s < 12; s++ {
		env.Step = s
		require.NoError(t, ts.Handle(torchenv.TrainStepEnd, env))
	}
	require.EqualValues(t, 12, ts.Writer().Dropped())
	require.EqualValues(t, 0, ts.Writer().Written())
	require.Len(t, *logs, 2, "logged at the 1st and 10th lost line")
	require.Contains(t, (*logs)[0], "is a directory")
	require.Contains(t, (*logs)[1], "10 lines lost so far")
	// Once the path is usable again, writing resumes by itself.
	require.NoError(t, os.Remove(filepath.Join(env.RunDir, "stats", "tensor_stats.jsonl")))
	require.NoError(t, ts.Handle(torchenv.TrainStepEnd, env))
	require.EqualValues(t, 1, ts.Writer().Written())
	require.Contains(t, (*logs)[2], "works again (12 lines lost)")
	require.NoError(t, ts.Close())
}
