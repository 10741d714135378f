package plane

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bench/workload"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/callback"
	_ "github.com/hotcb/hotcb/callbacks/all" // the built-ins, in callback.Default
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// builtin is a built-in callback loaded by its Go path with init values.
type builtin struct {
	id, path, symbol string
	init             map[string]any
}

const cbPkg = "github.com/hotcb/hotcb/callbacks/"

// builtins are every callback callbacks/all registers, with their defaults except feature
// viz's interval (featvizEvery): timing, feature maps, gradient and tensor statistics, the
// JSON-lines logger, system stats, the anomaly guard and the heartbeat.
func builtins(featvizEvery int) []builtin {
	return []builtin{
		{id: "timing", path: cbPkg + "timing", symbol: "Timing"},
		{id: "feat_viz", path: cbPkg + "featviz", symbol: "FeatureViz", init: map[string]any{"every": featvizEvery}},
		{id: "grad_stats", path: cbPkg + "stats", symbol: "GradStats"},
		{id: "tensor_stats", path: cbPkg + "stats", symbol: "TensorStats"},
		{id: "jsonl", path: cbPkg + "jsonl", symbol: "JSONLLogger"},
		{id: "system", path: cbPkg + "system", symbol: "SystemStats"},
		{id: "guard", path: cbPkg + "guard", symbol: "AnomalyGuard"},
		{id: "heartbeat", path: cbPkg + "heartbeat", symbol: "Heartbeat"},
	}
}

func ids(bs []builtin) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.id
	}
	return out
}

// GoalTimingFeatvizPct is the overhead goal of timing + feature viz, percent of a step.
const GoalTimingFeatvizPct = 3

// OverheadOptions size MeasureOverhead.
type OverheadOptions struct {
	Rounds        int // measured rounds per configuration (default 9)
	StepsPerRound int // default 50
	FeatvizEvery  int // feature maps every N steps (default 50)
	Dir           string
}

// trainee is a model trained the way trainer/ runs a step (bridge.Scope, plain SGD with the
// gradients set to none), with the kernel's safe points where trainer/ has them.
type trainee struct {
	model  nn.Module
	x, y   *bridge.Tensor
	params []*bridge.Tensor
	lr     float64
	k      *plane // nil: no instrumentation at all
	env    *torchenv.Env
	step   int64
}

// sgd is plain SGD with the gradients set to none, as trainer.Step's optimizer: the update of
// workload.CNN's step.
type sgd struct {
	params []*bridge.Tensor
	lr     float64
}

func (o sgd) ZeroGrad() {} // AddGradsInPlace already dropped the gradients
func (o sgd) Step()     { bridge.AddGradsInPlace(o.params, -o.lr) }

// Step is trainer.Step with workload.CNN's update (p -= lr*grad, gradient set to none): the
// step in a bridge.Scope, trainer/'s safe points run unscoped, env filled as trainer/ fills it.
func (t *trainee) Step() {
	t.env.Step, t.env.Inputs, t.env.Targets = t.step, t.x, t.y
	var a trainer.Applier // nil: no instrumentation at all
	if t.k != nil {
		a = t.k
	}
	trainer.Step(a, t.env, t.model, sgd{t.params, t.lr})
	t.step++
}

// newCNNTrainee builds a fresh workload.CNN (models.NewSmallCNN(1, 6), same seed, same batch)
// and instruments it.
func newCNNTrainee(dir string, cbs []builtin) (*trainee, error) {
	cnn, err := workload.NewCNN(workload.CNNSmall)
	if err != nil {
		return nil, err
	}
	return instrument(&trainee{model: cnn.Model, x: cnn.X, y: cnn.Y, params: cnn.Params, lr: cnn.LR}, dir, cbs)
}

// instrument gives t an env as trainer/'s and, unless cbs is nil, a kernel over dir with those
// callbacks loaded and checked enabled.
func instrument(t *trainee, dir string, cbs []builtin) (*trainee, error) {
	t.env = &torchenv.Env{Framework: "hotcb-go", Model: t.model, Device: bridge.CPU, RunDir: dir, Phase: "train",
		Log: func(string) {}} // the callbacks' log lines (timing reports) would clutter the tables
	if cbs == nil {
		return t, nil
	}
	var err error
	if t.k, err = open(Kernel, dir, callback.Default, false, false); err != nil {
		return nil, err
	}
	for _, b := range cbs {
		if err := t.k.load(b.id, ops.CallbackTarget{Kind: ops.KindModule, Path: b.path, Symbol: b.symbol}, b.init); err != nil {
			t.k.Close()
			return nil, err
		}
	}
	t.k.Apply(t.env, torchenv.FitStart) // applies the loads, as trainer/'s fit_start does
	if err := t.k.enabled(len(cbs)); err != nil {
		t.k.Close()
		return nil, err
	}
	return t, nil
}

// round runs steps steps and returns ms per step, including the wait for the cleanups the
// round's garbage queued (as the training-step rows do).
func (t *trainee) round(steps int) (float64, error) {
	t0 := time.Now()
	err := bridge.Try(func() {
		for range steps {
			t.Step()
		}
	})
	harness.DrainCleanups(10 * time.Second)
	return float64(time.Since(t0)) / 1e6 / float64(steps), err
}

// MeasureOverhead trains four SmallCNNs (models.NewSmallCNN(1, 6), one data.Shapes batch of 64
// grey 28×28 images, bench/workload's CNN step) side by side on one pinned goroutine: with no
// instrumentation at all, and through a kernel with timing, timing + feature viz, and every
// built-in. After one warm-up round each, rounds of StepsPerRound steps alternate the
// configurations, the first one rotating from round to round.
func MeasureOverhead(o OverheadOptions) ([]harness.OverheadResult, error) {
	if o.Rounds <= 0 {
		o.Rounds = 9
	}
	if o.StepsPerRound <= 0 {
		o.StepsPerRound = 50
	}
	if o.FeatvizEvery <= 0 {
		o.FeatvizEvery = 50
	}
	runtime.LockOSThread() // as trainer/ does
	defer runtime.UnlockOSThread()
	all := builtins(o.FeatvizEvery)
	configs := []struct {
		name string
		cbs  []builtin
	}{
		{"none", nil},
		{"timing", all[:1]},
		{"timing + feature viz", all[:2]},
		{"all built-ins", all},
	}
	ts := make([]*trainee, len(configs))
	defer func() {
		for _, t := range ts {
			if t != nil && t.k != nil {
				t.k.Close()
			}
		}
	}()
	for i, c := range configs {
		t, err := newCNNTrainee(filepath.Join(o.Dir, fmt.Sprintf("overhead-%d", i)), c.cbs)
		if err != nil {
			return nil, fmt.Errorf("overhead %s: %w", c.name, err)
		}
		ts[i] = t
	}
	times := make([][]float64, len(configs))
	for round := -1; round < o.Rounds; round++ { // -1: warm-up
		for j := range configs {
			i := (j + max(round, 0)) % len(configs)
			ms, err := ts[i].round(o.StepsPerRound)
			if err != nil {
				return nil, fmt.Errorf("overhead %s: %w", configs[i].name, err)
			}
			if round >= 0 {
				times[i] = append(times[i], ms)
			}
		}
	}
	return overheadRows(times, func(i int) (string, []string) {
		if configs[i].cbs == nil {
			return configs[i].name, []string{}
		}
		return configs[i].name, ids(configs[i].cbs)
	}, o.StepsPerRound, o.FeatvizEvery), nil
}

// overheadRows summarises ms/step per configuration, the first being "none": overhead of the
// medians, and per round against the "none" round of the same index.
func overheadRows(times [][]float64, describe func(int) (string, []string), steps, featvizEvery int) []harness.OverheadResult {
	none := harness.Summarize(times[0])
	out := make([]harness.OverheadResult, len(times))
	for i, ts := range times {
		s := harness.Summarize(ts)
		name, cbs := describe(i)
		r := harness.OverheadResult{Name: name, Callbacks: cbs, Unit: "ms/step", Median: s.Median, Min: s.Min,
			Max: s.Max, Rounds: ts, StepsPerRound: steps}
		if none.Median > 0 {
			r.OverheadPct = 100 * (s.Median/none.Median - 1)
		}
		var paired []float64
		for k := range min(len(ts), len(times[0])) {
			if times[0][k] > 0 {
				paired = append(paired, 100*(ts[k]/times[0][k]-1))
			}
		}
		r.Paired = harness.Summarize(paired)
		if strings.Contains(name, "feature viz") && len(cbs) == 2 {
			r.Goal, r.GoalMaxPct = fmt.Sprintf("< %d%%", GoalTimingFeatvizPct), GoalTimingFeatvizPct
			met := r.OverheadPct < GoalTimingFeatvizPct
			r.Met = &met
		}
		if slices.Contains(cbs, "feat_viz") {
			r.Note = fmt.Sprintf("feature maps every %d steps", featvizEvery)
		}
		out[i] = r
	}
	return out
}
