package featviz_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	_ "github.com/hotcb/hotcb/callbacks/featviz"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
)

// A training loop driven by a HotController, loading FeatureViz by hotcb's Python names from the
// commands file: the captured step numbers are the steps the forwards belong to.
func TestUnderTheController(t *testing.T) {
	dir := t.TempDir()
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	appendLine := func(s string) {
		fh, err := os.OpenFile(cmds, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		require.NoError(t, err)
		_, err = fh.WriteString(s + "\n")
		require.NoError(t, err)
		require.NoError(t, fh.Close())
	}
	appendLine(`{"op":"load","id":"fv","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.feat_viz","symbol":"FeatureVizCallback"},"init":{"every":2,"npy":true}}`)
	var logs []string
	ctl, err := controller.New(controller.Options{CommandsPath: cmds, PollEveryStep: true,
		LogPath: filepath.Join(dir, "hotcb.log"), Log: func(s string) { logs = append(logs, s) }})
	require.NoError(t, err)
	defer ctl.Close()

	bridge.ManualSeed(3)
	model := models.NewSmallCNN(1, 6)
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), optim.DefaultAdam())
	require.NoError(t, err)
	env := &torchenv.Env{Model: model, RunDir: dir, Phase: "train"}
	ref := map[int64][]float32{} // features.0's first sample, by the step the loop was in
	h, err := nn.RegisterForwardHook(model, "features.0", func(_ string, _ nn.Module, _, out *bridge.Tensor) {
		ref[env.Step] = out.Narrow(0, 0, 1).Float32s()
	})
	require.NoError(t, err)
	defer h.Remove()

	for step := int64(0); step < 7; step++ {
		if step == 3 {
			appendLine(`{"op":"set_params","id":"fv","params":{"layers":["classifier.1"]}}`)
		}
		x, y := bridge.Randn(bridge.Shape{8, 1, 28, 28}), bridge.RandInt(0, 6, bridge.Shape{8})
		env.Step = step
		env.Outputs = model.Forward(x)
		env.Loss = bridge.CrossEntropy(env.Outputs, y)
		ctl.Apply(env, torchenv.ForwardEnd) // the load lands here at step 0, after its forward
		opt.ZeroGrad()
		env.Loss.Backward()
		opt.Step()
		ctl.Apply(env, torchenv.TrainStepEnd)
	}
	appendLine(`{"op":"unload","id":"fv"}`)
	ctl.Apply(env, torchenv.FitEnd)
	require.NotContains(t, strings.Join(logs, "\n"), "failed")

	out := filepath.Join(dir, "featviz")
	var pngs []string
	des, err := os.ReadDir(out)
	require.NoError(t, err)
	for _, d := range des {
		if strings.HasSuffix(d.Name(), ".png") {
			pngs = append(pngs, d.Name())
		}
	}
	sort.Strings(pngs)
	require.Equal(t, []string{
		"step00000002_features.0.png", "step00000002_features.4.png", "step00000002_features.8.png",
		"step00000004_classifier.1.png", "step00000006_classifier.1.png",
	}, pngs)
	require.FileExists(t, filepath.Join(out, "index.html"))

	b, err := os.ReadFile(filepath.Join(out, "step00000002_features.0.npy"))
	require.NoError(t, err)
	raw := b[10+int(binary.LittleEndian.Uint16(b[8:10])):]
	got := make([]float32, len(raw)/4)
	for i := range got {
		got[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	require.Equal(t, ref[2], got, "the frame of step 2 holds step 2's forward")
	require.NotEqual(t, ref[1], got)
}
