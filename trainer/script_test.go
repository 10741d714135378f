package trainer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/internal/torchpy"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/trainer"
)

// scriptModels is a Python script that writes the TorchScript models (and other files) named in
// argv[2:] into the directory argv[1]. Net is a small residual CNN with BatchNorm whose
// submodules have PyTorch's usual names (layer1.0.conv1); the others are ways to get it wrong.
const scriptModels = `import sys, torch, torch.nn as nn
from typing import Tuple

class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x)

class Net(nn.Module):
    def __init__(self, cin: int = 1, classes: int = 6):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(cin, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.layer1 = nn.Sequential(Block(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)
    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer1(self.stem(x))), 1))

class Pair(Net):
    def forward(self, x) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.fc(torch.flatten(self.pool(self.layer1(self.stem(x))), 1)), x

class Fixed(nn.Module):  # fits batches of 2 only
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 6)
    def forward(self, x):
        return self.fc(x.reshape(2, 784))

class Small(Fixed):  # batches of up to 16
    def forward(self, x):
        assert x.size(0) <= 16, "at most 16 images"
        return self.fc(torch.flatten(x, 1))

torch.manual_seed(0)
files = {
    "cnn.pt": lambda p: torch.jit.save(torch.jit.script(Net()), p),
    "eval.pt": lambda p: torch.jit.save(torch.jit.script(Net().eval()), p),
    "rgb.pt": lambda p: torch.jit.save(torch.jit.script(Net(cin=3)), p),
    "ten.pt": lambda p: torch.jit.save(torch.jit.script(Net(classes=10)), p),
    "pair.pt": lambda p: torch.jit.save(torch.jit.script(Pair()), p),
    "fixed.pt": lambda p: torch.jit.save(torch.jit.script(Fixed()), p),
    "small.pt": lambda p: torch.jit.save(torch.jit.script(Small()), p),
    "statedict.pt": lambda p: torch.save(Net().state_dict(), p),
    "notes.txt": lambda p: open(p, "w").write("not a model\n"),
}
for name in sys.argv[2:]:
    files[name](sys.argv[1] + "/" + name)
`

// writeModels writes the named files of scriptModels into dir and returns dir. The script runs
// from a file: torch.jit.script reads the classes' source.
func writeModels(t *testing.T, dir string, names ...string) string {
	t.Helper()
	py := filepath.Join(dir, "models.py")
	require.NoError(t, os.WriteFile(py, []byte(scriptModels), 0o600))
	torchpy.Run(t, "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
		append([]string{py, dir}, names...)...)
	return dir
}

// scriptConfig is the run directory's hotcb.yaml for TestScriptModel: feature maps of one named
// submodule at every step, timing, gradient statistics and a metrics log.
const scriptConfig = `version: 1
callbacks:
  timing:
    enabled: true
    target: {kind: module, path: hotcb.modules.cb.callbacks.timing, symbol: TimingCallback}
    init: {every: 2}
  feat_viz:
    enabled: true
    target: {kind: module, path: github.com/hotcb/hotcb/callbacks/featviz, symbol: FeatureViz}
    init: {every: 1, layers: ["layer1.0.conv1"], samples: 1, channels: 4}
  grad_stats:
    enabled: true
    target: {kind: module, path: hotcb.modules.cb.callbacks.grad_stats, symbol: GradStatsCallback}
    init: {every: 1, log: false}
  metrics:
    enabled: true
    target: {kind: module, path: hotcb.modules.cb.callbacks.jsonl_logger, symbol: JSONLLoggerCallback}
    init: {every: 1, paths: [loss]}
`

// TestScriptModel trains a scripted CNN (BatchNorm, a residual block named layer1.0) from its
// TorchScript file as `hotcb train --model FILE` does: the callbacks see it (feature maps of
// layer1.0.conv1, timing, gradient statistics, the loss), last.pt holds its state dict under
// PyTorch's names, RUN_DIR/model.pt is the trained module for torch.jit.load with the same
// values, a model that does not fit leaves the run directory as it was, and a resume loads
// last.pt into the TorchScript module.
func TestScriptModel(t *testing.T) {
	models := writeModels(t, t.TempDir(), "cnn.pt", "ten.pt", "eval.pt")
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hotcb.yaml"), []byte(scriptConfig), 0o600))
	opts := trainer.Options{Dir: dir, Model: filepath.Join(models, "cnn.pt"), Steps: 6, Batch: 16, TrainN: 64, TestN: 32}

	var out bytes.Buffer
	opts.Out = &out
	sum, err := trainer.Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	require.Equal(t, int64(6), sum.Steps)
	require.Empty(t, sum.Stopped)
	require.Equal(t, filepath.Join(dir, "model.pt"), sum.Script)
	require.Contains(t, out.String(), "torchscript "+sum.Script)
	require.Contains(t, out.String(), "epoch 2: test accuracy")

	// the callbacks
	lines := jsonLines(t, filepath.Join(dir, "logs", "metrics.jsonl"))
	require.Len(t, lines, 6)
	for _, l := range lines {
		loss, ok := l["loss"].(float64)
		require.True(t, ok, "%v", l)
		require.False(t, math.IsNaN(loss) || math.IsInf(loss, 0), "loss %v", loss)
		require.Positive(t, loss)
	}
	grads := jsonLines(t, filepath.Join(dir, "stats", "grad_stats.jsonl"))
	require.Len(t, grads, 6)
	require.NotEmpty(t, jsonLines(t, filepath.Join(dir, "timing", "timing.jsonl")))
	pngs, err := filepath.Glob(filepath.Join(dir, "featviz", "*.png"))
	require.NoError(t, err)
	require.Len(t, pngs, 6, "one per step")
	for _, p := range pngs {
		require.True(t, strings.HasSuffix(p, "_layer1.0.conv1.png"), p)
	}
	st, err := rundir.ReadStatus(filepath.Join(dir, rundir.Status))
	require.NoError(t, err)
	require.Len(t, st.Callbacks, 4)

	// Python: the checkpoint and the TorchScript module hold the same trained values; BatchNorm
	// counted the 6 training steps only (the fit check and the evaluation ran in eval mode).
	check := `import sys, torch
ck = torch.load(sys.argv[1])
m = torch.jit.load(sys.argv[2])
orig = torch.jit.load(sys.argv[3])
sd = m.state_dict()
assert sorted(sd) == sorted(ck["model"]), (sorted(sd), sorted(ck["model"]))
for k, v in sd.items():
    assert torch.equal(v, ck["model"][k]), k
assert not torch.equal(sd["layer1.0.conv1.weight"], orig.state_dict()["layer1.0.conv1.weight"]), "trained"
with torch.no_grad():
    y = m.eval()(torch.zeros(3, 1, 28, 28))
print(int(ck["step"]), int(sd["layer1.0.bn1.num_batches_tracked"]), list(y.shape), getattr(m.layer1, "0").conv1.original_name)`
	require.Equal(t, "6 6 [3, 6] Conv2d", strings.TrimSpace(torchpy.Run(t, check, sum.Checkpoint, sum.Script, opts.Model)))

	// A model that does not fit is refused before the run directory is touched: no lock left,
	// last.pt and model.pt as they were.
	before := map[string][]byte{}
	for _, f := range []string{"last.pt", "model.pt"} {
		before[f], err = os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
	}
	bad := opts
	bad.Model, bad.Resume = filepath.Join(models, "ten.pt"), true
	bad.Out = &bytes.Buffer{}
	_, err = trainer.Run(context.Background(), bad)
	require.ErrorContains(t, err, "needs [N, 6]: one logit per class")
	for f, b := range before {
		now, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, b, now, f)
	}
	lock, err := rundir.LockDir(rundir.Dir(dir))
	require.NoError(t, err, "the run directory is not left locked")
	require.NoError(t, lock.Close())

	// Resume loads last.pt into the TorchScript module and goes on.
	out.Reset()
	opts.Steps, opts.Resume = 8, true
	sum, err = trainer.Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "resumed from "+sum.Checkpoint+": epoch 1, step 6")
	require.Equal(t, int64(8), sum.Steps)
	require.Equal(t, "8 8 [3, 6] Conv2d", strings.TrimSpace(torchpy.Run(t, check, sum.Checkpoint, sum.Script, opts.Model)))

	// A stop writes the TorchScript module too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts = trainer.Options{Dir: filepath.Join(t.TempDir(), "run"), Model: filepath.Join(models, "cnn.pt"), Steps: 2, Batch: 16, TrainN: 32, TestN: 16, Out: &out}
	sum, err = trainer.Run(ctx, opts)
	require.NoError(t, err, out.String())
	require.Equal(t, "interrupted", sum.Stopped)
	require.FileExists(t, sum.Script)

	// A module saved in eval mode trains in training mode (BatchNorm counts the batches), as the
	// built-in models do, and is saved so.
	opts.Dir, opts.Model = filepath.Join(t.TempDir(), "run"), filepath.Join(models, "eval.pt")
	sum, err = trainer.Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	require.Equal(t, int64(2), sum.Steps)
	require.Equal(t, "2 True", strings.TrimSpace(torchpy.Run(t, `import sys, torch
m = torch.jit.load(sys.argv[1])
print(int(m.state_dict()["stem.1.num_batches_tracked"]), m.training)`, sum.Script)))
}

// TestScriptModelErrors: a --model file that is not a TorchScript classifier of the data is
// refused before training, with a message that names the problem and what was expected, and
// without creating the run directory.
func TestScriptModelErrors(t *testing.T) {
	models := writeModels(t, t.TempDir(), "rgb.pt", "ten.pt", "pair.pt", "statedict.pt", "notes.txt", "fixed.pt", "small.pt")
	for _, c := range []struct {
		file string
		want []string
	}{
		{"rgb.pt", []string{
			"rgb.pt: the model's forward failed on images of shape [2, 1, 28, 28] (N, C, H, W of the data); its first Conv2d, stem.0, expects 3 input channels: [N, 3, H, W]: ",
			"RuntimeError: Given groups=1, weight of size [8, 3, 3, 3], expected input[2, 1, 28, 28] to have 3 channels, but got 1 channels instead"}},
		{"ten.pt", []string{"ten.pt: the model's forward returned a tensor of shape [2, 10] for images of shape [2, 1, 28, 28]; hotcb train needs [N, 6]: one logit per class (the data has 6 classes)"}},
		{"pair.pt", []string{"pair.pt: the model's forward returned a tuple of 2 (a tensor of shape [2, 6], a tensor of shape [2, 1, 28, 28]) for images of shape [2, 1, 28, 28]; hotcb train needs one tensor of shape [N, 6]: one logit per class"}},
		{"statedict.pt", []string{"statedict.pt is a torch.save file holding a dict of 20 tensors and numbers (a state dict or checkpoint), not a TorchScript module", "torch.jit.save(torch.jit.script(model), path)"}},
		{"notes.txt", []string{"notes.txt is not a PyTorch file, not a TorchScript module", "torch.jit.save(torch.jit.script(model), path)"}},
		{"missing.pt", []string{"missing.pt: no such file or directory"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			var out bytes.Buffer
			_, err := trainer.Run(context.Background(), trainer.Options{Dir: dir, Model: filepath.Join(models, c.file), Steps: 2, TrainN: 16, TestN: 8, Out: &out})
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "Traceback", "the TorchScript traceback is left out")
			require.NoDirExists(t, dir)
		})
	}

	// A model that fails during training ends the run with an error, not a panic, and leaves
	// the run directory unlocked.
	dir := filepath.Join(t.TempDir(), "run")
	_, err := trainer.Run(context.Background(), trainer.Options{Dir: dir, Model: filepath.Join(models, "fixed.pt"), Steps: 2, Batch: 16, TrainN: 32, TestN: 8, Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, "training step 0 (epoch 1): torch: jit.Module("+filepath.Join(models, "fixed.pt")+").forward: ")
	require.ErrorContains(t, err, "shape '[2, 784]' is invalid for input of size 12544")
	require.NotContains(t, err.Error(), "Traceback")
	var be *bridge.Error
	require.ErrorAs(t, err, &be)
	require.Contains(t, be.Msg, "Traceback", "the whole error is wrapped")
	lock, err := rundir.LockDir(rundir.Dir(dir))
	require.NoError(t, err, "the run directory is not left locked")
	require.NoError(t, lock.Close())

	// ... or during the evaluation (of 32 images at once).
	_, err = trainer.Run(context.Background(), trainer.Options{Dir: dir, Model: filepath.Join(models, "small.pt"), Steps: 2, Batch: 16, TrainN: 32, TestN: 32, Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, "evaluation after epoch 1: torch: jit.Module(")
	require.ErrorContains(t, err, "at most 16 images")
	require.NotContains(t, err.Error(), "Traceback")
}

func jsonLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}
