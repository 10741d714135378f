// This file is a go_file callback: feature visualisation in one page of Go that a running
// training loads (and reloads when the file changes) without a restart. It is the small cousin
// of the compiled callbacks/featviz (hotcb's FeatureVizCallback), which draws whole feature maps
// in the background; this one draws one strip of per-channel mean activations on the training
// goroutine, which is plenty for a few channels every N steps.
//
// Load it into a running `hotcb train` (or `go run ./examples/kernel`) with the hotcb CLI:
//
//	hotcb cb load feat_viz --file examples/callbacks/feat_viz.go --symbol FeatureVizCallback --init every=50
//
// (add `--dir runs/demo` for a run directory other than the CLI's default), or by hand:
//
//	echo '{"op":"load","id":"feat_viz","target":{"kind":"go_file","path":"examples/callbacks/feat_viz.go","symbol":"FeatureVizCallback"},"init":{"every":50}}' >> runs/demo/hotcb.commands.jsonl
//
// Every `every` steps it writes <run dir>/featviz_go/step00000050_features.0.png — one grey tile
// per channel of the first Conv2d layer (or of `layer`), brighter for a larger mean activation
// over the batch and the spatial positions — and logs the values' range. Params: every (≥1,
// default 50), layer (a module name such as "features.3"; default the first Conv2d), out (the
// folder under the run directory, default featviz_go). set_params changes any of them live.
//
// Rules for go_file sources (checked by the loader): name every function parameter, import only
// the standard library (not os/exec, net, syscall, unsafe, plugin) and hotcb's public packages.
package callbacks

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// FeatureVizCallback draws the per-channel mean activation of one layer every N steps.
//
// The forward hook cannot see the env, so the callback keeps the number of the step whose
// forward comes next from the events it handles: env.Step after fit_start and train_step_start,
// env.Step+1 after the events that follow a forward (forward_end ... train_batch_end). The hook
// computes the means of the first training-mode forward of a step that is a multiple of every
// (evaluation forwards are skipped); forward_end or train_step_end of that step writes the PNG.
type FeatureVizCallback struct {
	Name  string `hotcb:"id"`
	Every int    `hotcb:"every,min=1"`
	Layer string `hotcb:"layer"`
	Out   string `hotcb:"out"`

	// The state below is tagged hotcb:"-" because the interpreter shows unexported fields to
	// reflection (as exported ones), and params.Decode would otherwise look at them.
	model  nn.Module      `hotcb:"-"`
	runDir string         `hotcb:"-"`
	hook   *nn.HookHandle `hotcb:"-"`
	hooked string         `hotcb:"-"` // the layer the hook is on

	next      int64     `hotcb:"-"` // the step of the next training forward
	meansStep int64     `hotcb:"-"` // the step means belong to (-1: none pending)
	means     []float32 `hotcb:"-"` // per-channel means captured by the hook, not yet written
	written   int64     `hotcb:"-"` // the last step written (-1: none)
	files     []string  `hotcb:"-"` // files written, for tests and curious readers
	hookErr   error     `hotcb:"-"` // the last error inside the hook (reported by Handle)
}

// ID is the callback's id.
func (f *FeatureVizCallback) ID() string { return f.Name }

func (f *FeatureVizCallback) every() int64 {
	if f.Every < 1 {
		return 50
	}
	return int64(f.Every)
}

func (f *FeatureVizCallback) outDir() string {
	out := f.Out
	if strings.TrimSpace(out) == "" {
		out = "featviz_go"
	}
	return filepath.Join(f.runDir, out)
}

// OnAttach hooks the layer: the callback is loaded while the model exists.
func (f *FeatureVizCallback) OnAttach(env *torchenv.Env) error {
	if env.Model == nil {
		return errors.New("feat_viz: the env has no model to hook")
	}
	f.model = env.Model
	f.runDir = env.RunDir
	f.next = env.Step
	f.meansStep = -1
	f.written = -1
	return f.rehook()
}

// rehook (re)places the forward hook on the chosen layer.
func (f *FeatureVizCallback) rehook() error {
	name := f.Layer
	if name == "" {
		for _, nm := range nn.NamedModules(f.model) {
			if nn.Kind(nm.Module) == "Conv2d" {
				name = nm.Name
				break
			}
		}
		if name == "" {
			return errors.New("feat_viz: the model has no Conv2d layer; set layer to a module name")
		}
	}
	if f.hook != nil && name == f.hooked {
		return nil
	}
	h, err := nn.RegisterForwardHook(f.model, name, func(layer string, m nn.Module, in, out *bridge.Tensor) {
		f.capture(layer, m, out)
	})
	if err != nil {
		return fmt.Errorf("feat_viz: layer %q: %w", name, err)
	}
	if f.hook != nil {
		f.hook.Remove()
	}
	f.hook, f.hooked = h, name
	return nil
}

// training reports whether m is in training mode (nn.Train) rather than evaluation (nn.Eval).
// A type assertion to interface{ Training() bool } would read better, but under yaegi v0.16 it
// fails for compiled modules; reflection gives the same answer compiled and interpreted.
func training(m nn.Module) bool {
	mode := reflect.ValueOf(m).MethodByName("Training")
	if !mode.IsValid() {
		return true
	}
	out := mode.Call(nil)
	return len(out) != 1 || out[0].Kind() != reflect.Bool || out[0].Bool()
}

// capture runs inside the forward pass: one reduction on the device and a copy of C floats.
func (f *FeatureVizCallback) capture(layer string, m nn.Module, out *bridge.Tensor) {
	if f.next%f.every() != 0 || f.meansStep == f.next || f.written == f.next {
		return
	}
	if !training(m) {
		return // an evaluation forward
	}
	if out.Dim() < 2 {
		f.hookErr = fmt.Errorf("%s: output of shape %v has no channel dimension", layer, out.Shape())
		return
	}
	dims := []int64{0} // the batch and every spatial dimension: one mean per channel
	for d := 2; d < out.Dim(); d++ {
		dims = append(dims, int64(d))
	}
	err := bridge.Try(func() {
		f.means = out.Detach().MeanDims(dims, false).Float32s()
		f.meansStep = f.next
	})
	if err != nil {
		f.hookErr = fmt.Errorf("%s: %w", layer, err)
	}
}

// Handle tracks the step of the next forward and writes captured means.
func (f *FeatureVizCallback) Handle(event string, env *torchenv.Env) error {
	switch event {
	case torchenv.FitStart, torchenv.TrainStepStart:
		f.next = env.Step
	case torchenv.ForwardEnd, torchenv.BackwardEnd, torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd:
		f.next = env.Step + 1
		if f.meansStep == env.Step && f.written != env.Step {
			return f.write(env)
		}
	}
	if f.hookErr != nil {
		err := f.hookErr
		f.hookErr = nil
		return err
	}
	return nil
}

// write draws one tile per channel (grey level: the mean, scaled to the channels' range).
func (f *FeatureVizCallback) write(env *torchenv.Env) error {
	means, step := f.means, f.meansStep
	// one assignment a line: yaegi v0.16 panics on a nil in a multiple assignment to fields
	f.means = nil
	f.meansStep = -1
	f.written = step
	if len(means) == 0 {
		return nil
	}
	lo, hi, argLo, argHi := means[0], means[0], 0, 0
	for i, v := range means {
		if v < lo {
			lo, argLo = v, i
		}
		if v > hi {
			hi, argHi = v, i
		}
	}
	const tile, gap = 12, 1
	img := image.NewGray(image.Rect(0, 0, len(means)*(tile+gap)-gap, tile))
	for i, v := range means {
		g := uint8(128)
		if hi > lo {
			g = uint8(255 * (v - lo) / (hi - lo))
		}
		for y := 0; y < tile; y++ {
			for x := 0; x < tile; x++ {
				img.SetGray(i*(tile+gap)+x, y, color.Gray{Y: g})
			}
		}
	}
	dir := f.outDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, fmt.Sprintf("step%08d_%s.png", step, f.hooked))
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(file, img); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	f.files = append(f.files, path)
	env.Logf("[%s] step %d %s: %d channels, mean activation %.4f (ch %d) .. %.4f (ch %d) -> %s",
		f.Name, step, f.hooked, len(means), lo, argLo, hi, argHi, path)
	return nil
}

// SetParams accepts every, layer and out; a new layer moves the hook at once.
func (f *FeatureVizCallback) SetParams(p map[string]any) error {
	old := f.Layer
	if err := params.Decode(p, f); err != nil {
		return err
	}
	if f.model != nil && f.Layer != old {
		if err := f.rehook(); err != nil {
			f.Layer = old
			return err
		}
	}
	return nil
}

// Close removes the hook (unload, replacement by a reload, end of the run).
func (f *FeatureVizCallback) Close() error {
	if f.hook != nil {
		f.hook.Remove()
		f.hook = nil
	}
	return nil
}

// Files lists the PNGs written so far.
func (f *FeatureVizCallback) Files() []string { return f.files }
