package callbacks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/examples/callbacks"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

// loop is a SmallCNN training on random 16×16 images, dispatching the phase events as
// trainer.Run does.
type loop struct {
	model *models.SmallCNN
	opt   *optim.Optimizer
	env   *torchenv.Env
	logs  []string
}

func newLoop(t *testing.T, dir string) *loop {
	t.Helper()
	bridge.ManualSeed(7)
	l := &loop{model: models.NewSmallCNN(1, 4)}
	var err error
	l.opt, err = optim.NewAdam(optim.Params(nn.Parameters(l.model)...), optim.DefaultAdam())
	require.NoError(t, err)
	l.env = &torchenv.Env{Framework: "hotcb-go", Model: l.model, Optimizer: l.opt, RunDir: dir, Phase: "train",
		Log: func(s string) { l.logs = append(l.logs, s) }}
	return l
}

// run trains steps steps; apply is the safe point (a controller's Apply, or direct Handle calls).
func (l *loop) run(steps int, apply func(env *torchenv.Env, events ...string)) {
	for i := 0; i < steps; i++ {
		x, y := bridge.Randn(bridge.Shape{8, 1, 16, 16}), bridge.RandInt(0, 4, bridge.Shape{8})
		l.env.Inputs, l.env.Targets = x, y
		apply(l.env, torchenv.TrainStepStart)
		l.env.Outputs = l.model.Forward(x)
		l.env.Loss = bridge.CrossEntropy(l.env.Outputs, y)
		apply(l.env, torchenv.ForwardEnd)
		l.opt.ZeroGrad()
		l.env.Loss.Backward()
		apply(l.env, torchenv.BackwardEnd)
		l.opt.Step()
		apply(l.env, torchenv.OptimizerStepEnd, torchenv.TrainStepEnd)
		l.env.Step++
	}
}

func (l *loop) matching(re string) []string {
	var out []string
	rx := regexp.MustCompile(re)
	for _, s := range l.logs {
		if rx.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

func direct(cbs ...callback.HotCallback) func(env *torchenv.Env, events ...string) {
	return func(env *torchenv.Env, events ...string) {
		for _, ev := range events {
			for _, cb := range cbs {
				if err := cb.Handle(ev, env); err != nil {
					panic(err)
				}
			}
		}
	}
}

func abs(t *testing.T, name string) string {
	p, err := filepath.Abs(name)
	require.NoError(t, err)
	return p
}

func pngs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.png"))
	require.NoError(t, err)
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// Both examples through gofile's loader, called directly; the interpreted FeatureVizCallback
// draws exactly what the same source compiled as Go draws from the same forwards.
func TestGoFileExamplesInterpreted(t *testing.T) {
	dir := t.TempDir()
	// CI checkouts may leave the sources group-writable, which the loader refuses by default.
	ld := gofile.NewLoader(gofile.Options{AllowAnyOwner: true, SourcesDir: filepath.Join(dir, "hotcb.sources")})
	gn, err := ld.Load(callback.Target{Kind: ops.KindGoFile, Path: abs(t, "grad_norm.go"), Symbol: "GradNorm"}, "gradnorm", map[string]any{"every": 3})
	require.NoError(t, err)
	fv, err := ld.Load(callback.Target{Kind: ops.KindGoFile, Path: abs(t, "feat_viz.go"), Symbol: "FeatureVizCallback"}, "feat_viz", map[string]any{"every": 4})
	require.NoError(t, err)
	require.Equal(t, "feat_viz", fv.ID())

	// the same source as ordinary Go, writing next to it
	compiled := &callbacks.FeatureVizCallback{Name: "compiled", Every: 4, Out: "compiled"}

	l := newLoop(t, dir)
	require.NoError(t, fv.(callback.Attacher).OnAttach(l.env))
	require.NoError(t, compiled.OnAttach(l.env))
	l.run(10, direct(gn, fv, compiled))

	require.Len(t, l.matching(`^\[gradnorm\] step (0|3|6|9) \|grad features\.0\.weight\|_2 = [0-9.]+$`), 4, "%q", l.logs)
	require.Len(t, l.matching(`gradnorm`), 4)
	want := []string{"step00000000_features.0.png", "step00000004_features.0.png", "step00000008_features.0.png"}
	require.Equal(t, want, pngs(t, filepath.Join(dir, "featviz_go")))
	require.Equal(t, want, pngs(t, filepath.Join(dir, "compiled")))
	for _, name := range want {
		a, err := os.ReadFile(filepath.Join(dir, "featviz_go", name))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(dir, "compiled", name))
		require.NoError(t, err)
		require.Equal(t, b, a, "interpreted and compiled %s differ", name)
		img, err := png.Decode(bytes.NewReader(a))
		require.NoError(t, err)
		require.Equal(t, 16*13-1, img.Bounds().Dx(), "16 tiles of 12 px with 1 px gaps")
		require.Equal(t, 12, img.Bounds().Dy())
	}
	require.Len(t, l.matching(`^\[feat_viz\] step (0|4|8) features\.0: 16 channels, mean activation -?[0-9.]+ \(ch \d+\) \.\. -?[0-9.]+ \(ch \d+\) -> .*\.png$`), 3, "%q", l.logs)

	// live params: every and the layer (the hook moves at once)
	require.NoError(t, fv.SetParams(map[string]any{"every": 2, "layer": "features.4"}))
	require.Error(t, fv.SetParams(map[string]any{"layer": "nope"}), "an unknown layer is refused")
	require.Error(t, fv.SetParams(map[string]any{"every": 0}))
	l.run(2, direct(fv)) // steps 10, 11
	require.Contains(t, pngs(t, filepath.Join(dir, "featviz_go")), "step00000010_features.4.png")

	// Close removes the hooks: no more files
	require.NoError(t, fv.(callback.Closer).Close())
	require.NoError(t, compiled.Close())
	before := len(pngs(t, filepath.Join(dir, "featviz_go"))) + len(pngs(t, filepath.Join(dir, "compiled")))
	l.run(5, direct(fv, compiled))
	require.Equal(t, before, len(pngs(t, filepath.Join(dir, "featviz_go")))+len(pngs(t, filepath.Join(dir, "compiled"))))
}

// Evaluation forwards (nn.Eval) between training steps are not drawn, compiled or interpreted.
func TestFeatVizSkipsEvaluationForwards(t *testing.T) {
	for _, mode := range []string{"compiled", "interpreted"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			l := newLoop(t, dir)
			var fv callback.HotCallback = &callbacks.FeatureVizCallback{Name: "fv", Every: 2}
			if mode == "interpreted" {
				var err error
				fv, err = gofile.NewLoader(gofile.Options{AllowAnyOwner: true}).Load(
					callback.Target{Kind: ops.KindGoFile, Path: abs(t, "feat_viz.go"), Symbol: "FeatureVizCallback"}, "fv", map[string]any{"every": 2})
				require.NoError(t, err)
			}
			require.NoError(t, fv.(callback.Attacher).OnAttach(l.env))
			defer fv.(callback.Closer).Close()
			// the reference: the range of the per-channel means of each forward of features.0
			var ranges []string
			ref, err := nn.RegisterForwardHook(l.model, "features.0", func(name string, m nn.Module, in, out *bridge.Tensor) {
				means := out.Detach().MeanDims([]int64{0, 2, 3}, false)
				ranges = append(ranges, fmt.Sprintf("%.4f (ch %d) .. %.4f (ch %d)",
					means.Min().Item(), means.Argmin(0, false).ItemInt(), means.Max().Item(), means.Argmax(0, false).ItemInt()))
			})
			require.NoError(t, err)
			defer ref.Remove()
			l.run(2, direct(fv)) // steps 0 (drawn) and 1; the next forward is step 2's
			nn.Eval(l.model)
			bridge.NoGrad(func() { l.model.Forward(bridge.Full(bridge.Shape{4, 1, 16, 16}, 5)) })
			nn.Train(l.model, true)
			require.NoError(t, fv.Handle(torchenv.EpochEnd, l.env))
			l.run(1, direct(fv))
			require.Equal(t, []string{"step00000000_features.0.png", "step00000002_features.0.png"}, pngs(t, filepath.Join(dir, "featviz_go")))
			require.Len(t, ranges, 4)
			require.NotEqual(t, ranges[2], ranges[3])
			// drawn from step 2's training forward, not from the evaluation forward before it
			drawn := l.matching(`^\[fv\] step (0|2) `)
			require.Len(t, drawn, 2)
			require.Contains(t, drawn[0], "mean activation "+ranges[0]+" ->")
			require.Contains(t, drawn[1], "mean activation "+ranges[3]+" ->")
		})
	}
}

// The commands hotcb's CLI writes (`hotcb cb load feat_viz --file examples/callbacks/feat_viz.go
// --symbol FeatureVizCallback --init every=50`: kind python_file, an absolute path) drive both
// examples under a HotController; unload closes the hook.
func TestGoFileExamplesUnderController(t *testing.T) {
	dir := t.TempDir()
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	appendOp := func(op ops.Op) {
		b, err := json.Marshal(op)
		require.NoError(t, err)
		fh, err := os.OpenFile(cmds, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		require.NoError(t, err)
		_, err = fh.Write(append(b, '\n'))
		require.NoError(t, err)
		require.NoError(t, fh.Close())
	}
	appendOp(ops.Op{Op: "load", ID: "feat_viz", Target: &ops.CallbackTarget{Kind: ops.KindPythonFile, Path: abs(t, "feat_viz.go"), Symbol: "FeatureVizCallback"},
		Init: map[string]any{"every": int64(50)}})
	appendOp(ops.Op{Op: "load", ID: "gradnorm", Target: &ops.CallbackTarget{Kind: ops.KindPythonFile, Path: abs(t, "grad_norm.go"), Symbol: "GradNorm"},
		Init: map[string]any{"every": int64(25)}})
	ctl, err := controller.New(controller.Options{CommandsPath: cmds, PollEveryStep: true, AllowAnyOwner: true, RunDir: dir,
		SourcesDir: filepath.Join(dir, "hotcb.sources"), StatusPath: filepath.Join(dir, "hotcb.status.json"), Log: func(string) {}})
	require.NoError(t, err)
	defer ctl.Close()

	l := newLoop(t, dir)
	l.run(101, ctl.Apply)
	require.Equal(t, []string{"step00000000_features.0.png", "step00000050_features.0.png", "step00000100_features.0.png"},
		pngs(t, filepath.Join(dir, "featviz_go")))
	require.Len(t, l.matching(`^\[gradnorm\] step (0|25|50|75|100) `), 5, "%q", l.logs)
	for _, cb := range ctl.Status().Callbacks {
		require.Empty(t, cb.LastError, cb.ID)
		require.True(t, cb.Enabled, cb.ID)
	}
	captured, err := filepath.Glob(filepath.Join(dir, "hotcb.sources", "*.go"))
	require.NoError(t, err)
	require.Len(t, captured, 2, "both sources captured for replay")

	appendOp(ops.Op{Op: "unload", ID: "feat_viz"})
	l.run(51, ctl.Apply) // steps 101..151: step 150 would be drawn
	require.Len(t, pngs(t, filepath.Join(dir, "featviz_go")), 3, "the hook went with the unload")
}

// examples/cnn and examples/kernel compile (the test runs `go build` when a toolchain is there;
// `go vet ./examples/...` checks the same in CI).
func TestExamplesBuild(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	cmd := exec.Command(gobin, "build", "./examples/cnn", "./examples/kernel", "./examples/mlp")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)))
}
