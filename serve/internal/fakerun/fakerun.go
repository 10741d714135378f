// Package fakerun writes a run directory the way a training process with hotcb's kernel does —
// hotcb.metrics.jsonl, hotcb.status.json, hotcb.applied.jsonl, timing/timing.jsonl,
// system/system_stats.jsonl and featviz PNGs — without training anything, for the tests and
// the screenshot of hotcb serve. It also plays the kernel: Apply reads the new lines of
// hotcb.commands.jsonl, applies what it can to its pretend state (a callback's enabled flag and
// params, the optimizer's lr, which bends the loss curve) and records each in the ledger.
package fakerun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
)

// Run is a pretend training run in Dir.
type Run struct {
	Dir  string
	Step int64
	// Total is the planned number of steps (status extra total_steps).
	Total int64
	// FrameEvery, TimingEvery and SystemEvery are how often feature maps, timing and system
	// records are written (0: never).
	FrameEvery, TimingEvery, SystemEvery int64

	rng       *rand.Rand
	loss, lr  float64
	seq       int64
	cmdOff    int64
	callbacks []rundir.CallbackStatus
	start     time.Time
	metrics   *os.File
	buf       bytes.Buffer
}

// New starts a run in dir (created if needed) with the callbacks timing, sys and fv loaded.
func New(dir string, seed int64) (*Run, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "hotcb.metrics.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	r := &Run{Dir: dir, Total: 200_000, FrameEvery: 500, TimingEvery: 50, SystemEvery: 100,
		rng: rand.New(rand.NewSource(seed)), loss: 2.4, lr: 0.1, start: time.Now(), metrics: f, seq: -1}
	r.callbacks = []rundir.CallbackStatus{
		{ID: "timing", Enabled: true, Loaded: true, Target: &ops.CallbackTarget{Kind: ops.KindModule, Path: "hotcb.modules.cb.callbacks.timing", Symbol: "TimingCallback"},
			Params: map[string]any{"every": 50}},
		{ID: "sys", Enabled: true, Loaded: true, Target: &ops.CallbackTarget{Kind: ops.KindModule, Path: "github.com/hotcb/hotcb/callbacks/system", Symbol: "SystemStats"},
			Params: map[string]any{"every": 100}},
		{ID: "fv", Enabled: true, Loaded: true, Target: &ops.CallbackTarget{Kind: ops.KindModule, Path: "github.com/hotcb/hotcb/callbacks/featviz", Symbol: "FeatureViz"},
			Params: map[string]any{"every": 500, "layers": []any{"features.0", "features.3", "fc1"}}},
	}
	return r, nil
}

// Close closes the metrics file.
func (r *Run) Close() error { return r.metrics.Close() }

// Advance writes n steps: a metrics line each, timing, system and feature-map records when due,
// then the status.
func (r *Run) Advance(n int) error {
	r.buf.Reset()
	for i := 0; i < n; i++ {
		r.Step++
		s := r.Step
		// The loss falls toward a floor at a pace set by lr, with noise; acc follows.
		floor := 0.08
		r.loss -= r.lr * 0.004 * (r.loss - floor)
		loss := r.loss * (1 + 0.08*r.rng.NormFloat64())
		acc := math.Max(0, math.Min(1, 1-r.loss/2.6+0.01*r.rng.NormFloat64()))
		grad := 0.5 + 2*r.loss*(1+0.2*r.rng.NormFloat64())
		fmt.Fprintf(&r.buf, `{"step":%d,"epoch":%.4f,"metrics":{"loss":%.6g,"lr":%.6g,"acc":%.5g,"grad_norm":%.5g},"wall_time":%.3f}`+"\n",
			s, float64(s)/1000, loss, r.lr, acc, grad, float64(time.Now().UnixMilli())/1000)
		if r.TimingEvery > 0 && s%r.TimingEvery == 0 && r.enabled("timing") {
			if err := r.timing(s); err != nil {
				return err
			}
		}
		if r.SystemEvery > 0 && s%r.SystemEvery == 0 && r.enabled("sys") {
			if err := r.system(s); err != nil {
				return err
			}
		}
		if r.FrameEvery > 0 && s%r.FrameEvery == 0 && r.enabled("fv") {
			if err := r.frames(s); err != nil {
				return err
			}
		}
		for j := range r.callbacks {
			if c := &r.callbacks[j]; c.Enabled {
				c.Calls++
				c.MeanMicros = 12 + 3*float64(j) + r.rng.Float64()
				c.MaxMicros = math.Max(c.MaxMicros, c.MeanMicros*3)
			}
		}
		if r.buf.Len() > 1<<20 {
			if _, err := r.metrics.Write(r.buf.Bytes()); err != nil {
				return err
			}
			r.buf.Reset()
		}
	}
	if _, err := r.metrics.Write(r.buf.Bytes()); err != nil {
		return err
	}
	return r.WriteStatus()
}

func (r *Run) enabled(id string) bool {
	for _, c := range r.callbacks {
		if c.ID == id {
			return c.Enabled
		}
	}
	return false
}

func (r *Run) timing(s int64) error {
	j := func(v float64) float64 { return v * (1 + 0.05*r.rng.NormFloat64()) }
	fwd, bwd, opt, data := j(4.1), j(8.3), j(1.2), j(0.9)
	step := fwd + bwd + opt + data
	rec := map[string]any{
		"time": time.Now().UTC().Format(time.RFC3339Nano), "id": "timing", "step": s, "steps": s, "window": 50,
		"device": "cpu", "device_timing": false, "note": "host only: device timing unavailable on cpu", "sync": false,
		"step_ms":     map[string]float64{"n": 50, "mean": step, "p50": step * 0.97, "p95": step * 1.25, "max": step * 1.6},
		"steps_per_s": 1000 / step, "samples_per_s": 64 * 1000 / step, "batch_size": 64,
		"intervals": map[string]any{
			"data/other": map[string]any{"host_ms": map[string]float64{"n": 50, "mean": data, "p50": data, "p95": data * 1.3, "max": data * 2}},
			"forward":    map[string]any{"host_ms": map[string]float64{"n": 50, "mean": fwd, "p50": fwd, "p95": fwd * 1.2, "max": fwd * 1.5}},
			"backward":   map[string]any{"host_ms": map[string]float64{"n": 50, "mean": bwd, "p50": bwd, "p95": bwd * 1.2, "max": bwd * 1.5}},
			"optimizer":  map[string]any{"host_ms": map[string]float64{"n": 50, "mean": opt, "p50": opt, "p95": opt * 1.2, "max": opt * 1.5}},
		},
		"order": []string{"data/other", "forward", "backward", "optimizer"},
	}
	return rundir.AppendJSON(filepath.Join(r.Dir, "timing", "timing.jsonl"), rec)
}

func (r *Run) system(s int64) error {
	rss := 180e6 + 20e6*math.Sin(float64(s)/5000) + 1e6*r.rng.Float64()
	rec := map[string]any{
		"time": time.Now().UTC().Format(time.RFC3339Nano), "id": "sys", "event": "train_step_end", "step": s, "epoch": float64(s) / 1000,
		"rss_bytes": int64(rss), "rss_peak_bytes": int64(210e6), "threads": 9, "go_heap_bytes": int64(12e6 + 2e6*r.rng.Float64()),
		"go_heap_goal_bytes": int64(24e6), "gc_cycles": s / 40, "gc_pause_total_s": float64(s) * 2e-6, "goroutines": 7,
		"cpu_percent": 97 + 3*r.rng.Float64(), "torch_live_bytes": int64(48e6 + 4e6*r.rng.Float64()),
	}
	return rundir.AppendJSON(filepath.Join(r.Dir, "system", "system_stats.jsonl"), rec)
}

// frames writes a feature-map PNG per layer, named as callbacks/featviz names them.
func (r *Run) frames(s int64) error {
	for li, layer := range []string{"features.0", "features.3", "fc1"} {
		img := image.NewRGBA(image.Rect(0, 0, 64, 64))
		phase := float64(s)/2000 + float64(li)
		for y := 0; y < 64; y++ {
			for x := 0; x < 64; x++ {
				tile := (y/16)*4 + x/16
				v := 0.5 + 0.5*math.Sin(float64(x%16)/(2+float64(tile%5))+phase)*math.Cos(float64(y%16)/(3+float64(tile%3))-phase)
				img.Set(x, y, viridis(v))
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			return err
		}
		p := filepath.Join(r.Dir, "featviz", fmt.Sprintf("step%08d_%s.png", s, layer))
		if err := rundir.ReplaceFile(p, b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// viridis approximates the viridis colour map at v in [0, 1].
func viridis(v float64) color.RGBA {
	v = math.Max(0, math.Min(1, v))
	r := 0.267 + v*(-0.3+v*(1.0))
	g := 0.005 + v*(1.4+v*(-0.5))
	b := 0.33 + v*(0.9+v*(-1.1))
	c := func(x float64) uint8 { return uint8(math.Max(0, math.Min(1, x)) * 255) }
	return color.RGBA{c(r), c(g), c(b), 255}
}

// WriteStatus rewrites hotcb.status.json as the kernel does.
func (r *Run) WriteStatus() error {
	st := rundir.RunStatus{WrittenAt: time.Now(), PID: os.Getpid(), Step: r.Step, Epoch: float64(r.Step) / 1000, Phase: "train",
		Callbacks: r.callbacks, CommandsPath: filepath.Join(r.Dir, rundir.Commands), CommandsRead: r.cmdOff,
		Extra: map[string]any{"freeze_mode": r.freezeMode(), "ledger_seq": r.seq, "total_steps": r.Total,
			"optimizers": map[string]any{"main": []any{map[string]any{"lr": r.lr, "momentum": 0.9, "weight_decay": 0.0005}}}}}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return rundir.ReplaceFile(filepath.Join(r.Dir, rundir.Status), b)
}

func (r *Run) freezeMode() string {
	fz, err := rundir.ReadFreeze(filepath.Join(r.Dir, rundir.Freeze))
	if err != nil {
		return rundir.FreezeOff
	}
	return fz.Mode
}

// Ledger appends a ledger entry for op at the current step.
func (r *Run) Ledger(op ops.Op, decision, errText string) error {
	r.seq++
	e := rundir.LedgerEntry{Seq: r.seq, WallTime: float64(time.Now().UnixMilli()) / 1000, Step: r.Step, Event: "train_step_end",
		Module: op.ModuleName(), Op: op.Op, Source: rundir.SourceExternal, Decision: decision, Payload: rundir.Payload(op)}
	ep := float64(r.Step) / 1000
	e.Epoch = &ep
	if op.ID != "" {
		id := op.ID
		e.ID = &id
	}
	if errText != "" {
		e.Error = &errText
	}
	return rundir.AppendJSON(filepath.Join(r.Dir, rundir.Applied), e)
}

// Apply reads the commands appended since the last call, applies them to the pretend state and
// records each in the ledger, as the kernel does at a safe point. It returns the ops read.
func (r *Run) Apply() ([]ops.Op, error) {
	b, err := os.ReadFile(filepath.Join(r.Dir, rundir.Commands))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if int64(len(b)) < r.cmdOff {
		r.cmdOff = 0
	}
	rest := b[r.cmdOff:]
	end := bytes.LastIndexByte(rest, '\n')
	if end < 0 {
		return nil, nil
	}
	r.cmdOff += int64(end + 1)
	var done []ops.Op
	frozen := r.freezeMode() != rundir.FreezeOff
	for _, line := range strings.Split(string(rest[:end]), "\n") {
		op, err := ops.Parse([]byte(line))
		if err != nil {
			continue
		}
		done = append(done, op)
		if frozen {
			if err := r.Ledger(op, rundir.DecisionIgnoredFreeze, ""); err != nil {
				return done, err
			}
			continue
		}
		decision, msg := rundir.DecisionApplied, r.apply(op)
		if msg != "" {
			decision = rundir.DecisionFailed
		}
		if err := r.Ledger(op, decision, msg); err != nil {
			return done, err
		}
	}
	return done, r.WriteStatus()
}

// apply changes the pretend state; a non-empty result is why the op failed.
func (r *Run) apply(op ops.Op) string {
	switch op.ModuleName() {
	case "opt":
		if op.Op != ops.OpSetParams {
			return "an optimizer cannot be " + op.Op + "d: set lr=0 instead"
		}
		for k, v := range op.Params {
			if k != "lr" {
				return fmt.Sprintf("unknown optimizer hyper-parameter %q", k)
			}
			f, ok := toFloat(v)
			if !ok || f < 0 {
				return fmt.Sprintf("lr: want a number >= 0, got %v", v)
			}
			r.lr = f
		}
		return ""
	case "cb":
	default:
		return "no module " + op.ModuleName()
	}
	i := len(r.callbacks)
	for j, c := range r.callbacks {
		if c.ID == op.ID {
			i = j
		}
	}
	switch op.Op {
	case ops.OpLoad:
		if i < len(r.callbacks) {
			return "a callback " + op.ID + " is loaded already"
		}
		r.callbacks = append(r.callbacks, rundir.CallbackStatus{ID: op.ID, Enabled: op.IsEnabled(), Loaded: true, Target: op.Target, Init: op.Init})
		return ""
	}
	if i >= len(r.callbacks) {
		return "no callback " + op.ID
	}
	c := &r.callbacks[i]
	switch op.Op {
	case ops.OpEnable:
		c.Enabled = true
	case ops.OpDisable:
		c.Enabled = false
	case ops.OpSetParams:
		if c.Params == nil {
			c.Params = map[string]any{}
		}
		for k, v := range op.Params {
			if k == "every" {
				if f, ok := toFloat(v); !ok || f < 1 {
					c.Errors++
					c.LastError, c.LastErrorStep = fmt.Sprintf("every: want an integer >= 1, got %v", v), r.Step
					return c.LastError
				}
			}
			c.Params[k] = v
		}
	case ops.OpUnload:
		r.callbacks = append(r.callbacks[:i], r.callbacks[i+1:]...)
	}
	return ""
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}
