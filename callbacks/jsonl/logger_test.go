package jsonl_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callbacks/jsonl"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

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

func TestLoggerWritesValues(t *testing.T) {
	var logs []string
	dir := t.TempDir()
	env := &torchenv.Env{RunDir: dir, Phase: "train", Epoch: 1.5, Log: func(s string) { logs = append(logs, s) },
		Loss:    bridge.Scalar(0.25),
		Outputs: bridge.FromSlice([]float32{1, 2, 3, 4}, 2, 2),
		Extra: map[string]any{
			"metrics": map[string]float64{"val_acc": 0.9, "val_loss": 0.3},
			"lr":      3e-4,
			"name":    "run-1",
			"count":   int64(7),
			"t":       map[string]*bridge.Tensor{"one": bridge.FromSlice([]int64{5}, 1)},
		}}
	m, err := jsonl.New("m", map[string]any{"every": 2,
		"paths": "loss,epoch,step,outputs,extra.metrics,extra.lr,extra.name,extra.count,extra.t,extra.missing,loss"})
	require.NoError(t, err)
	for s := int64(0); s < 5; s++ {
		env.Step = s
		require.NoError(t, m.Handle(torchenv.TrainStepEnd, env))
		require.NoError(t, m.Handle(torchenv.BackwardEnd, env), "not one of events")
	}
	require.NoError(t, m.Close())
	recs := readJSONL(t, filepath.Join(dir, "logs", "metrics.jsonl"))
	require.Len(t, recs, 3, "steps 0, 2, 4")
	r := recs[1]
	require.Equal(t, 2.0, r["step"])
	require.Equal(t, 1.5, r["epoch"])
	require.Equal(t, "train", r["phase"])
	require.Equal(t, "train_step_end", r["event"])
	require.Equal(t, "m", r["id"])
	require.Equal(t, 0.25, r["loss"])
	require.Equal(t, map[string]any{"val_acc": 0.9, "val_loss": 0.3}, r["extra.metrics"])
	require.Equal(t, 3e-4, r["extra.lr"])
	require.Equal(t, "run-1", r["extra.name"])
	require.Equal(t, 7.0, r["extra.count"])
	require.Equal(t, map[string]any{"one": 5.0}, r["extra.t"])
	o := r["outputs"].(map[string]any)
	require.Equal(t, 2.5, o["mean"])
	require.Equal(t, 4.0, o["max"])
	require.NotContains(t, r, "extra.missing")
	// Keys appear once, in the order given after the header.
	b, err := os.ReadFile(filepath.Join(dir, "logs", "metrics.jsonl"))
	require.NoError(t, err)
	first := strings.SplitN(string(b), "\n", 2)[0]
	require.Equal(t, 1, strings.Count(first, `"loss":`))
	require.Less(t, strings.Index(first, `"phase"`), strings.Index(first, `"loss"`))
	require.Len(t, logs, 1, "the missing path is logged once")
	require.Contains(t, logs[0], `jsonl_logger m: skipping extra.missing: env path "extra.missing": no key "missing" (logged once)`)

	// tensor_stats=false: shape only, no device work.
	require.NoError(t, m.SetParams(map[string]any{"tensor_stats": false, "paths": []any{"outputs"}, "events": "epoch_end"}))
	env.Step = 6
	require.NoError(t, m.Handle(torchenv.EpochEnd, env))
	recs = readJSONL(t, filepath.Join(dir, "logs", "metrics.jsonl"))
	require.Equal(t, map[string]any{"shape": []any{2.0, 2.0}, "dtype": "float32", "numel": 4.0}, recs[3]["outputs"])
	require.Equal(t, "epoch_end", recs[3]["event"])
}

func TestLoggerParams(t *testing.T) {
	m, err := jsonl.New("m", nil)
	require.NoError(t, err)
	require.Equal(t, jsonl.DefaultParams(), m.Params())
	before := m.Params()
	for _, c := range []struct {
		in  map[string]any
		key string
	}{
		{map[string]any{"every": 0}, "every"},
		{map[string]any{"events": []any{"train_step_end", "train_stepend"}}, "events.1"},
		{map[string]any{"out_path": "", "every": 3}, "out_path"},
		{map[string]any{"tensor_stats": "maybe"}, "tensor_stats"},
		{map[string]any{"path": "x.jsonl"}, "path"},
		{map[string]any{"events": []any{}}, "events"},
	} {
		err := m.SetParams(c.in)
		var pe *params.Error
		require.ErrorAs(t, err, &pe, "%v", c.in)
		require.Equal(t, c.key, pe.Key)
		require.Contains(t, err.Error(), `param "`+c.key+`"`)
		require.Equal(t, before, m.Params())
	}
	_, err = jsonl.New("m", map[string]any{"every": "ten"})
	require.ErrorContains(t, err, `param "every": want an integer`)

	// A new out_path takes effect at the next line; the old file is closed.
	dir := t.TempDir()
	env := &torchenv.Env{RunDir: dir, Loss: bridge.Scalar(1)}
	require.NoError(t, m.Handle(torchenv.TrainStepEnd, env))
	require.NoError(t, m.SetParams(map[string]any{"out_path": "other/m.jsonl"}))
	require.NoError(t, m.Handle(torchenv.TrainStepEnd, env))
	require.Len(t, readJSONL(t, filepath.Join(dir, "logs", "metrics.jsonl")), 1)
	require.Len(t, readJSONL(t, filepath.Join(dir, "other", "m.jsonl")), 1)
	require.NoError(t, m.SetParams(map[string]any{"out_path": "../../etc/x.jsonl"}), "validated when opened")
	var logs []string
	env.Log = func(s string) { logs = append(logs, s) }
	require.NoError(t, m.Handle(torchenv.TrainStepEnd, env), "a path outside the run dir is a write error, not a failure")
	require.EqualValues(t, 1, m.Writer().Dropped())
	require.Contains(t, logs[0], "output path is outside the run directory")
}

func TestLoggerWriteErrorIsNotFatal(t *testing.T) {
	dir := t.TempDir()
	var logs []string
	env := &torchenv.Env{RunDir: dir, Loss: bridge.Scalar(1), Log: func(s string) { logs = append(logs, s) }}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "logs", "metrics.jsonl"), 0o700))
	m, err := jsonl.New("m", nil)
	require.NoError(t, err)
	for s := int64(0); s < 3; s++ {
		env.Step = s
		require.NoError(t, m.Handle(torchenv.TrainStepEnd, env))
	}
	require.EqualValues(t, 3, m.Writer().Dropped())
	require.Len(t, logs, 1)
	require.Contains(t, logs[0], "jsonl_logger m: cannot write logs/metrics.jsonl")
	require.Contains(t, logs[0], "is a directory")
}

func TestLoggerThroughController(t *testing.T) {
	dir := t.TempDir()
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	require.NoError(t, os.WriteFile(cmds, []byte(
		`{"module":"cb","op":"load","id":"jl","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.jsonl_logger","symbol":"JSONLLoggerCallback"},"init":{"every":1}}`+"\n"+
			`{"module":"cb","op":"load","id":"jl2","target":{"kind":"module","path":"hotcb.modules.cb.callbacks","symbol":"JSONLLoggerCallback"},"init":{"every":2,"out_path":"logs/b.jsonl","paths":["loss","extra.metrics.acc"]}}`+"\n"+
			`{"module":"cb","op":"set_params","id":"jl","params":{"paths":["loss","step"],"evry":2}}`+"\n"), 0o600))
	var logs []string
	c, err := controller.New(controller.Options{CommandsPath: cmds, PollEveryStep: true, Log: func(s string) { logs = append(logs, s) }})
	require.NoError(t, err)
	model := models.MLP(4, 8, 3)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	env := &torchenv.Env{RunDir: dir, Model: model, Optimizer: opt, Extra: map[string]any{"metrics": map[string]float64{"acc": 0.5}}}
	x, y := bridge.Randn(bridge.Shape{8, 4}), bridge.RandInt(0, 3, bridge.Shape{8})
	var losses []float64
	for s := int64(0); s < 4; s++ {
		env.Step = s
		opt.ZeroGrad()
		env.Loss = bridge.CrossEntropy(model.Forward(x), y)
		env.Loss.Backward()
		opt.Step()
		losses = append(losses, env.Loss.Item())
		c.Apply(env, torchenv.TrainStepEnd)
	}
	require.NoError(t, c.Close(), "closes the loggers' files")
	require.Contains(t, strings.Join(logs, "\n"), `param "evry": unknown key (did you mean "every"?)`)
	recs := readJSONL(t, filepath.Join(dir, "logs", "metrics.jsonl"))
	require.Len(t, recs, 4)
	for i, r := range recs {
		require.InDelta(t, losses[i], r["loss"], 1e-7)
		require.Equal(t, float64(i), r["step"])
	}
	b := readJSONL(t, filepath.Join(dir, "logs", "b.jsonl"))
	require.Len(t, b, 2)
	require.Equal(t, 0.5, b[1]["extra.metrics.acc"])
}

func BenchmarkLoggerIdle(b *testing.B) {
	m, _ := jsonl.New("m", map[string]any{"every": 1000})
	env := &torchenv.Env{RunDir: b.TempDir(), Step: 1, Loss: bridge.Scalar(0.5)}
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Handle(torchenv.TrainStepEnd, env)
	}
}

func BenchmarkLoggerReport(b *testing.B) {
	m, _ := jsonl.New("m", nil) // loss, epoch, step every step
	defer m.Close()
	env := &torchenv.Env{RunDir: b.TempDir(), Loss: bridge.Scalar(0.5)}
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Handle(torchenv.TrainStepEnd, env)
		env.Step++
	}
}
