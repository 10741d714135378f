package stats_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
)

// TestLoadedByHotcbNames drives both callbacks through a real controller with the load lines
// hotcb's Python CLI writes.
func TestLoadedByHotcbNames(t *testing.T) {
	dir := t.TempDir()
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	require.NoError(t, os.WriteFile(cmds, []byte(strings.Join([]string{
		`{"module":"cb","op":"load","id":"gs","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.grad_stats","symbol":"GradStatsCallback"},"init":{"every":1,"per_layer":true}}`,
		`{"module":"cb","op":"load","id":"ts","target":{"kind":"module","path":"hotcb.modules.cb.callbacks","symbol":"TensorStatsCallback"},"init":{"every":2}}`,
		`{"module":"cb","op":"load","id":"ts2","target":{"kind":"module","path":"github.com/hotcb/hotcb/callbacks/stats","symbol":"TensorStats"},"init":{"every":1,"paths":["loss"],"out_path":"stats/ts2.jsonl"}}`,
		`{"module":"cb","op":"set_params","id":"gs","params":{"norm_type":"inf"}}`,
		`{"module":"cb","op":"set_params","id":"ts","params":{"every":0}}`,
		""}, "\n")), 0o600))
	var logs []string
	c, err := controller.New(controller.Options{CommandsPath: cmds, PollEveryStep: true,
		Log: func(s string) { logs = append(logs, s) }})
	require.NoError(t, err)
	defer c.Close()

	model := models.MLP(4, 8, 3)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	env := &torchenv.Env{RunDir: dir, Model: model, Optimizer: opt, Phase: "train"}
	x, y := tinyBatch()
	for s := int64(0); s < 4; s++ {
		env.Step = s
		opt.ZeroGrad()
		env.Outputs = model.Forward(x)
		env.Loss = bridge.CrossEntropy(env.Outputs, y)
		c.Apply(env, torchenv.ForwardEnd)
		env.Loss.Backward()
		c.Apply(env, torchenv.BackwardEnd)
		opt.Step()
		c.Apply(env, torchenv.OptimizerStepEnd, torchenv.TrainStepEnd)
	}
	joined := strings.Join(logs, "\n")
	require.Contains(t, joined, `failed cb.set_params(ts)`)
	require.Contains(t, joined, `param "every": want >= 1`)
	require.NotContains(t, joined, "callback gs failed")
	require.NotContains(t, joined, "callback ts failed")

	gs := readJSONL(t, filepath.Join(dir, "stats", "grad_stats.jsonl"))
	require.Len(t, gs, 4)
	require.Equal(t, "Infinity", gs[0]["norm_type"], "set_params reached the instance")
	require.Equal(t, "backward_end", gs[0]["event"])
	ts := readJSONL(t, filepath.Join(dir, "stats", "tensor_stats.jsonl"))
	require.Len(t, ts, 2, "every=2 kept after the bad set_params: steps 0 and 2")
	require.Equal(t, 2.0, ts[1]["step"])
	require.Contains(t, ts[0]["stats"], "outputs")
	require.Len(t, readJSONL(t, filepath.Join(dir, "stats", "ts2.jsonl")), 4)
}
