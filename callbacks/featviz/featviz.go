package featviz

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

func init() { callbacks.Provide(spec.FeatureViz, New) }

// Params are FeatureViz's parameters (spec.FeatureVizParams).
type Params = spec.FeatureVizParams

// DefaultParams are the parameters of a new FeatureViz, before its init is applied.
func DefaultParams() Params { return spec.FeatureViz.Defaults() }

// scaleValue parses p.Scale: 0 for auto.
func scaleValue(p *Params) (int, error) {
	if p.Scale == "" || strings.EqualFold(p.Scale, "auto") {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(p.Scale))
	if err != nil || n < 1 || n > maxScale {
		return 0, &params.Error{Key: "scale", Value: p.Scale, Want: fmt.Sprintf(`"auto" or an integer from 1 to %d`, maxScale)}
	}
	return n, nil
}

// check checks what the tags of Params cannot.
func check(p *Params) error {
	var errs []error
	if _, err := scaleValue(p); err != nil {
		errs = append(errs, err)
	}
	for i, pat := range p.Layers {
		if err := checkPattern(pat); err != nil {
			errs = append(errs, &params.Error{Key: fmt.Sprintf("layers.%d", i), Value: pat, Want: "a module name or glob pattern (" + err.Error() + ")"})
		}
	}
	return errors.Join(errs...)
}

func checkPattern(pat string) error {
	if strings.TrimSpace(pat) == "" {
		return errors.New("empty")
	}
	if _, err := path.Match(strings.ReplaceAll(strings.TrimSuffix(pat, ".**"), ".", "/"), ""); err != nil {
		return err
	}
	return nil
}

// Stats counts what FeatureViz did.
type Stats struct {
	Captured    int64         // frames copied off the device and queued
	Written     int64         // frames whose files are written
	Dropped     int64         // frames dropped because the queue was full
	Failed      int64         // frames (or galleries) that could not be drawn or written
	Queued      int           // frames waiting for the writer now
	CaptureTime time.Duration // time spent in the hooks on capture steps (the training cost)
	WriteTime   time.Duration // time the writer spent drawing, encoding and writing (off the loop)
	LastError   string
}

// hookConfig is what the forward hook reads, swapped as a whole on every change.
type hookConfig struct {
	every    int64
	samples  int64
	channels int64
	scale    int
	npy      bool
	dir      string
	keep     int
}

// FeatureViz captures module outputs through forward hooks and draws them (see the package
// doc). Its methods run on the training goroutine, as the controller calls them; Stats may be
// called from anywhere.
//
// Which step a forward belongs to: the hook cannot see the env, so FeatureViz keeps the number
// of the next forward's step, from the events it handles. After fit_start and train_step_start
// (the forward of env.Step is still to come) it is env.Step; after optimizer_step_end,
// train_step_end and train_batch_end (the forward of env.Step is done) it is env.Step+1; so it is
// after forward_end and backward_end, unless the loop dispatches train_step_start: then they
// leave it, since a step that accumulates gradients over micro-batches (trainer.StepWith) runs
// several forwards, each followed by forward_end and backward_end, and all of them belong to
// env.Step (the first one is captured). Other events leave it. A loop that dispatches only
// train_step_end gets the right number from the first step on; OnAttach starts from env.Step (under a controller, the
// event the load arrived with is dispatched right after and corrects it). The first forward in training mode (nn.Train) of each
// hooked layer after that is captured when the number is a multiple of every; evaluation
// forwards (nn.Eval) are never captured, and neither is a second forward of a layer in the same
// step. While the callback is disabled (loaded off included) its hooks stay but capture nothing
// (OnPause, callback.Pauser).
type FeatureViz struct {
	callbacks.Base[Params]

	mu      sync.Mutex // params, hooks, model, dir; taken by SetParams, OnAttach, Close
	p       Params
	model   nn.Module
	runDir  string
	dir     string
	hooks   *nn.HookHandle
	targets []nn.NamedModule
	closed  bool

	cfg    atomic.Pointer[hookConfig] // nil: capture nothing
	next   atomic.Int64               // the step of the next forward
	starts bool                       // the loop dispatches train_step_start (Handle's goroutine only)
	paused atomic.Bool                // disabled: the hooks capture nothing

	capMu sync.Mutex
	last  map[string]int64 // layer → last step captured

	w                             *writer
	captured, captureNs           atomic.Int64
	captureErr                    atomic.Pointer[error]
	reportedDrops, reportedFailed int64
	closeTimeout                  time.Duration
}

// New returns a FeatureViz with DefaultParams changed by init.
func New(id string, init map[string]any) (*FeatureViz, error) {
	return newFeatureViz(id, init, nil)
}

func newFeatureViz(id string, init map[string]any, write func(string, []byte) error) (*FeatureViz, error) {
	f := &FeatureViz{last: map[string]int64{}, closeTimeout: 30 * time.Second}
	if err := f.Init(id, &f.p, spec.FeatureViz, init, f.apply); err != nil {
		return nil, err
	}
	f.w = newWriter(id, f.p.Queue, write)
	return f, nil
}

// Params returns the current parameters.
func (f *FeatureViz) Params() Params {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Base.Params()
}

// Layers lists the modules hooked now.
func (f *FeatureViz) Layers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, t := range f.targets {
		out = append(out, t.Name)
	}
	return out
}

// Dir is the absolute output directory ("" before OnAttach).
func (f *FeatureViz) Dir() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dir
}

// Stats returns the counters.
func (f *FeatureViz) Stats() Stats {
	s := Stats{
		Captured:    f.captured.Load(),
		CaptureTime: time.Duration(f.captureNs.Load()),
	}
	if f.w != nil {
		s.Written, s.Dropped, s.Failed, s.Queued = f.w.written.Load(), f.w.dropped.Load(), f.w.failed.Load(), f.w.queued()
		s.WriteTime = time.Duration(f.w.busyNs.Load())
		if e := f.w.lastErr.Load(); e != nil {
			s.LastError = *e
		}
	}
	return s
}

// SetParams validates and applies params; on any error nothing changes (hooks included). When
// attached, a change of layers moves the hooks (a pattern that matches no module is an error
// naming it), and a change of out starts a new output directory with its own gallery.
func (f *FeatureViz) SetParams(m map[string]any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Base.SetParams(m)
}

// apply checks new params and puts them to use (f.mu held, or f not shared yet).
func (f *FeatureViz) apply(old Params, _ map[string]any) error {
	p := &f.p
	if err := check(p); err != nil {
		return err
	}
	var mods []nn.NamedModule
	dir := f.dir
	if f.model != nil && !f.closed {
		var err error
		if !slices.Equal(p.Layers, old.Layers) {
			if mods, err = resolveLayers(f.model, p.Layers); err != nil {
				return err
			}
		}
		if p.Out != old.Out {
			if dir, err = outDir(f.runDir, p.Out); err != nil {
				return err
			}
		}
	}
	if f.w != nil {
		f.w.setLimit(p.Queue)
	}
	if mods != nil {
		f.attach(mods)
	}
	if dir != f.dir {
		f.dir = dir
		f.w.touch(dir)
	}
	f.publish()
	return nil
}

// OnAttach hooks the layers of env.Model and creates the output directory.
func (f *FeatureViz) OnAttach(env *torchenv.Env) error {
	if env == nil || env.Model == nil {
		return errors.New("featviz: the env has no model to hook (set env.Model)")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("featviz: attach after Close")
	}
	mods, err := resolveLayers(env.Model, f.p.Layers)
	if err != nil {
		return err
	}
	dir, err := outDir(env.RunDir, f.p.Out)
	if err != nil {
		return err
	}
	f.model, f.runDir, f.dir = env.Model, env.RunDir, dir
	f.next.Store(env.Step)
	f.attach(mods)
	f.w.touch(dir)
	f.publish()
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name + " (" + nn.Kind(m.Module) + ")"
	}
	env.Logf("featviz %s: hooks on %s; every %d steps into %s", f.ID(), strings.Join(names, ", "), f.p.Every, dir)
	return nil
}

// OnPause stops the captures while the callback is disabled (callback.Pauser).
func (f *FeatureViz) OnPause() { f.paused.Store(true) }

// OnResume starts them again; the step number is set again by the next event handled.
func (f *FeatureViz) OnResume() { f.paused.Store(false) }

// Handle follows the step number (see FeatureViz) and reports, through env.Log, frames dropped
// or failed since the last report. A capture that failed inside a hook is returned here.
func (f *FeatureViz) Handle(event string, env *torchenv.Env) error {
	if env == nil {
		return nil
	}
	switch event {
	case torchenv.FitStart:
		f.next.Store(env.Step)
	case torchenv.TrainStepStart:
		f.starts = true
		f.next.Store(env.Step)
	case torchenv.ForwardEnd, torchenv.BackwardEnd:
		if !f.starts { // else train_step_start says when the next step begins
			f.next.Store(env.Step + 1)
		}
	case torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd:
		f.next.Store(env.Step + 1)
	}
	if d := f.w.dropped.Load(); d > f.reportedDrops {
		env.Logf("featviz %s: writer queue full (%d slots): dropped %d frame(s), %d in total; raise queue or every",
			f.ID(), f.Params().Queue, d-f.reportedDrops, d)
		f.reportedDrops = d
	}
	if n := f.w.failed.Load(); n > f.reportedFailed {
		msg := ""
		if e := f.w.lastErr.Load(); e != nil {
			msg = *e
		}
		env.Logf("featviz %s: %d frame(s) not written, %d in total; last error: %s", f.ID(), n-f.reportedFailed, n, msg)
		f.reportedFailed = n
	}
	if e := f.captureErr.Swap(nil); e != nil {
		return *e
	}
	return nil
}

// Close removes the hooks, waits for the queued frames to be written (up to a timeout) and
// writes the final gallery. A second Close does nothing.
func (f *FeatureViz) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	if f.hooks != nil {
		f.hooks.Remove()
		f.hooks = nil
	}
	f.targets = nil
	f.cfg.Store(nil)
	f.mu.Unlock()
	return f.w.close(f.closeTimeout)
}

// attach replaces the hooks by hooks on mods (f.mu held).
func (f *FeatureViz) attach(mods []nn.NamedModule) {
	if f.hooks != nil {
		f.hooks.Remove()
	}
	f.hooks = nn.RegisterForwardHookOn(mods, f.hook)
	f.targets = mods
}

// publish hands the hook a new configuration (f.mu held).
func (f *FeatureViz) publish() {
	if f.closed || f.hooks == nil {
		f.cfg.Store(nil)
		return
	}
	scale, _ := scaleValue(&f.p)
	f.cfg.Store(&hookConfig{every: int64(f.p.Every), samples: int64(f.p.Samples), channels: int64(f.p.Channels),
		scale: scale, npy: f.p.Npy, dir: f.dir, keep: f.p.Keep})
}

// hook runs inside the forward pass. On steps that are not captured it costs two atomic loads.
func (f *FeatureViz) hook(name string, m nn.Module, _, out *bridge.Tensor) {
	cfg := f.cfg.Load()
	if cfg == nil || out == nil || f.paused.Load() {
		return
	}
	step := f.next.Load()
	if step%cfg.every != 0 {
		return
	}
	if t, ok := m.(interface{ Training() bool }); ok && !t.Training() {
		return
	}
	f.capMu.Lock()
	if last, ok := f.last[name]; ok && last == step {
		f.capMu.Unlock()
		return
	}
	f.last[name] = step
	f.capMu.Unlock()
	t0 := time.Now()
	fr, err := capture(name, nn.Kind(m), out, step, cfg)
	f.captureNs.Add(int64(time.Since(t0)))
	if err != nil {
		f.captureErr.Store(&err)
		return
	}
	if f.w.push(fr) {
		f.captured.Add(1)
	}
}

// capture copies the first samples (and, without npy, the first channels) of out to Go memory:
// a detached view, narrowed, then one copy to the host (Float32s moves to the CPU and converts
// to float32 in the same call). A libtorch error becomes an error, never a panic in the forward.
func capture(name, kind string, out *bridge.Tensor, step int64, cfg *hookConfig) (fr *frame, err error) {
	defer func() {
		if r := recover(); r != nil {
			fr, err = nil, fmt.Errorf("featviz: capture of %s at step %d: %v", name, step, r)
		}
	}()
	full := out.Shape()
	if len(full) == 0 {
		return nil, fmt.Errorf("featviz: %s returns a scalar; nothing to draw", name)
	}
	shape := slices.Clone([]int64(full))
	shape[0] = min(cfg.samples, full[0])
	x := out.Detach()
	defer x.Free()
	y := x.Narrow(0, 0, shape[0])
	defer y.Free()
	if len(full) == 4 && !cfg.npy && full[1] > cfg.channels {
		z := y.Narrow(1, 0, cfg.channels)
		defer z.Free()
		y, shape[1] = z, cfg.channels
	}
	if len(full) == 3 && !cfg.npy { // a sequence: the positions and channels that are drawn
		most := [...]int64{1: maxSeqRows, 2: maxSeqCols}
		if full[1] == full[2] { // maybe attention: a square of the first queries and keys
			most[2] = maxSeqRows
		}
		for d, most := range most {
			if d > 0 && full[d] > most {
				z := y.Narrow(int64(d), 0, most)
				defer z.Free()
				y, shape[d] = z, most
			}
		}
	}
	data := y.Float32s()
	return &frame{dir: cfg.dir, step: step, layer: name, kind: kind, full: slices.Clone([]int64(full)), shape: shape,
		data: data, channels: int(cfg.channels), scale: cfg.scale, npy: cfg.npy, keep: cfg.keep}, nil
}

// resolveLayers lists the modules the patterns name (every Conv2d for none), in model order.
func resolveLayers(model nn.Module, patterns []string) ([]nn.NamedModule, error) {
	all := nn.NamedModules(model)
	if len(patterns) == 0 {
		var convs []nn.NamedModule
		for _, m := range all {
			if m.Name != "" && nn.Kind(m.Module) == "Conv2d" {
				convs = append(convs, m)
			}
		}
		if len(convs) == 0 {
			return nil, &params.Error{Key: "layers", Value: []string{}, Want: "module names or patterns: the model has no Conv2d layer to default to (modules: " + moduleList(all) + ")"}
		}
		return convs, nil
	}
	pick := map[string]bool{}
	var errs []error
	for i, pat := range patterns {
		ms, err := nn.Match(model, pat)
		if err == nil && len(ms) == 0 {
			err = errors.New("it matches no module")
		}
		if err != nil {
			errs = append(errs, &params.Error{Key: fmt.Sprintf("layers.%d", i), Value: pat,
				Want: fmt.Sprintf("a module name or pattern of the model (%v; modules: %s)", err, moduleList(all))})
			continue
		}
		for _, m := range ms {
			pick[m.Name] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var out []nn.NamedModule
	for _, m := range all {
		if pick[m.Name] {
			out = append(out, m)
		}
	}
	return out, nil
}

func moduleList(all []nn.NamedModule) string {
	var names []string
	for _, m := range all {
		if m.Name != "" {
			names = append(names, m.Name)
		}
	}
	if len(names) > 24 {
		names = append(names[:24], "...")
	}
	return strings.Join(names, ", ")
}

// outDir resolves out under the run directory and creates it.
func outDir(runDir, out string) (string, error) {
	dir, err := callbacks.OutPath(&torchenv.Env{RunDir: runDir}, out, false)
	if err != nil {
		return "", &params.Error{Key: "out", Value: out, Want: "a directory inside the run directory (" + err.Error() + ")"}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("featviz: param out: %w", err)
	}
	return dir, nil
}
