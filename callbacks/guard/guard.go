// Package guard is the AnomalyGuard callback (hotcb's anomaly_guard): at every step (or every N)
// it checks the tensors at chosen env paths — the loss by default — and optionally every
// gradient for NaN and Inf, at the cost of one reduction and one host copy per path, counts what
// it finds, and logs it, disarms itself, or asks the training loop to stop in an orderly way
// (torchenv.Env.RequestStop), as its action says.
package guard

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/callbacks/jsonl"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/callbacks/stats/summary"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

func init() { callbacks.Provide(spec.AnomalyGuard, New) }

// Actions.
const (
	// ActionLog logs each anomaly (up to MaxReports) and keeps checking.
	ActionLog = "log"
	// ActionDisable logs the first anomaly and disarms the guard: later events are ignored
	// until a set_params (any successful one) re-arms it. The guard does not return an error
	// to have the controller disable it: that would count as a callback failure, read as a bug
	// in the guard, and not happen at all with KeepEnabledOnError.
	ActionDisable = "disable"
	// ActionStop logs and calls env.RequestStop with the reason: the loop stops at its next
	// check of StopRequested, saving what it saves on a normal end. Nothing panics.
	ActionStop = "stop"
)

// Params are AnomalyGuard's parameters (spec.AnomalyGuardParams).
type Params = spec.AnomalyGuardParams

// DefaultParams are the values before init is applied.
func DefaultParams() Params { return spec.AnomalyGuard.Defaults() }

// Finding is one bad tensor at one check.
type Finding struct {
	Path     string // the env path, or "grad:<parameter>"
	NaN, Inf int64  // counts of non-finite elements
	Numel    int64
}

// Counters are the guard's running totals.
type Counters struct {
	Checks    int64 // checks made (steps at Event, multiple of Every, while armed)
	Anomalies int64 // checks that found something
	FirstStep int64 // step of the first anomaly (-1: none yet)
	LastStep  int64 // step of the latest anomaly (-1: none yet)
	Tripped   bool  // disarmed by action "disable"
	ByPath    map[string]int64
}

// pathState remembers what a path held last time, so that a healthy check is one reduction:
// 0 not known, 1 one-element float tensor (Item), 2 larger float tensor (sum, then Item).
type pathState struct {
	kind int
}

// AnomalyGuard checks for NaN and Inf (hotcb's anomaly_guard). Its records look like
//
//	{"time":…,"id":"ag","event":"train_step_end","step":12,"epoch":0,"anomaly":1,"first_step":12,
//	 "action":"stop","findings":{"loss":{"numel":1,"nan":1,"inf":0}}}
type AnomalyGuard struct {
	callbacks.Base[Params]
	p     Params
	every int64
	state []pathState
	cnt   Counters
	quiet bool // MaxReports reached and said so

	skipped  map[string]bool
	findings []Finding
	w        *jsonl.Writer
	line     jsonl.Line
	parts    []*bridge.Tensor
	names    []string
}

// New returns a guard with DefaultParams updated by init.
func New(id string, init map[string]any) (*AnomalyGuard, error) {
	c := &AnomalyGuard{}
	c.cnt.FirstStep, c.cnt.LastStep = -1, -1
	c.cnt.ByPath = map[string]int64{}
	c.w = jsonl.NewWriter("anomaly_guard "+id, "")
	if err := c.Init(id, &c.p, spec.AnomalyGuard, init, c.apply); err != nil {
		return nil, err
	}
	return c, nil
}

// Writer returns the record file's writer.
func (c *AnomalyGuard) Writer() *jsonl.Writer { return c.w }

// Counters returns the running totals (ByPath is the guard's own map: read it, do not keep it).
func (c *AnomalyGuard) Counters() Counters { return c.cnt }

// Findings returns what the latest check found (reused by the next check).
func (c *AnomalyGuard) Findings() []Finding { return c.findings }

// apply checks and puts new params to use. A successful SetParams re-arms a guard that action
// "disable" disarmed.
func (c *AnomalyGuard) apply(_ Params, m map[string]any) error {
	if len(c.p.Paths) == 0 && !c.p.Grads {
		return &params.Error{Key: "paths", Value: m["paths"], Want: "at least one path (or grads=true)"}
	}
	c.cnt.Tripped = false
	c.every = int64(c.p.Every)
	c.state = make([]pathState, len(c.p.Paths))
	c.skipped = map[string]bool{}
	c.quiet = false
	c.w.SetPath(c.p.OutPath)
	return nil
}

// Handle checks at Event on the steps that are a multiple of Every, while armed.
func (c *AnomalyGuard) Handle(event string, env *torchenv.Env) error {
	if env == nil || c.cnt.Tripped || event != c.p.Event || env.Step%c.every != 0 {
		return nil
	}
	c.cnt.Checks++
	c.findings = c.findings[:0]
	for i, path := range c.p.Paths {
		c.checkPath(env, path, &c.state[i])
	}
	if c.p.Grads {
		c.checkGrads(env)
	}
	if len(c.findings) > 0 {
		c.act(event, env)
	}
	return nil
}

func (c *AnomalyGuard) skip(env *torchenv.Env, path, why string) {
	if !c.skipped[path] {
		c.skipped[path] = true
		env.Logf("anomaly_guard %s: warning: %s not checked: %s (reported once)", c.ID(), path, why)
	}
}

// checkPath costs one Item for a one-element tensor, a sum and an Item for others: the sum is
// NaN or Inf whenever an element is. When it is not finite the elements are counted, which also
// tells a sum that merely overflowed (no finding) from a real one.
func (c *AnomalyGuard) checkPath(env *torchenv.Env, path string, st *pathState) {
	v, err := env.Lookup(path)
	if err != nil {
		c.skip(env, path, err.Error())
		return
	}
	t, ok := v.(*bridge.Tensor)
	if !ok {
		if f, isNum := summary.Number(v); isNum { // extra metrics
			if math.IsNaN(f) || math.IsInf(f, 0) {
				c.findings = append(c.findings, Finding{Path: path, NaN: b2i(math.IsNaN(f)), Inf: b2i(math.IsInf(f, 0)), Numel: 1})
			}
			return
		}
		c.skip(env, path, fmt.Sprintf("a %T is not a tensor", v))
		return
	}
	var x float64
	var numel int64 = 1
	err = bridge.Try(func() { x = c.probe(t, st) })
	if err != nil && st.kind != 0 { // the path changed shape or dtype: learn it again
		st.kind = 0
		err = bridge.Try(func() { x = c.probe(t, st) })
	}
	switch {
	case err != nil:
		c.skip(env, path, err.Error())
		return
	case st.kind == 0: // not a floating-point tensor (or empty): cannot hold NaN
		return
	case !math.IsNaN(x) && !math.IsInf(x, 0):
		return
	}
	f := Finding{Path: path, Numel: numel}
	if st.kind == 1 {
		f.NaN, f.Inf = b2i(math.IsNaN(x)), b2i(math.IsInf(x, 0))
	} else if err := bridge.Try(func() { f.NaN, f.Inf, f.Numel = count(t) }); err == nil && f.NaN == 0 && f.Inf == 0 {
		return // the sum overflowed; every element is finite
	}
	c.findings = append(c.findings, f)
}

// probe returns the value whose finiteness tells t's, learning st when unknown.
func (c *AnomalyGuard) probe(t *bridge.Tensor, st *pathState) float64 {
	if st.kind == 0 {
		if !t.DType().IsFloat() {
			return 0 // re-checked next time: the dtype call is cheap, and rare paths are ints
		}
		switch n := t.Numel(); {
		case n == 0:
			return 0
		case n == 1:
			st.kind = 1
		default:
			st.kind = 2
		}
	}
	if st.kind == 1 {
		return t.Item()
	}
	var x float64
	bridge.NoGrad(func() {
		m := t.Sum()
		x = m.Item()
		_ = m.Free()
	})
	return x
}

// count returns the NaN and Inf counts and the number of elements of t.
func count(t *bridge.Tensor) (nan, inf, numel int64) {
	bridge.NoGrad(func() {
		a, b := t.IsNaN(), t.IsInf()
		sa, sb := a.Sum(), b.Sum()
		st := bridge.Stack([]*bridge.Tensor{sa, sb}, 0)
		v := st.Int64s()
		nan, inf, numel = v[0], v[1], t.Numel()
		for _, x := range []*bridge.Tensor{a, b, sa, sb, st} {
			_ = x.Free()
		}
	})
	return nan, inf, numel
}

// checkGrads takes one sum per gradient and copies them to the host together; the gradients
// whose sum is not finite are then counted exactly.
func (c *AnomalyGuard) checkGrads(env *torchenv.Env) {
	var all []bridge.Named
	switch {
	case env.Model != nil:
		all = nn.NamedParameters(env.Model)
	case env.Optimizer != nil:
		for i, p := range env.Optimizer.Params() {
			all = append(all, bridge.Named{Name: "param." + strconv.Itoa(i), Tensor: p})
		}
	default:
		c.skip(env, "grads", "the env has no model and no optimizer")
		return
	}
	c.parts, c.names = c.parts[:0], c.names[:0]
	var grads []*bridge.Tensor
	err := bridge.Try(func() {
		bridge.NoGrad(func() {
			for _, p := range all {
				g := p.Tensor.Grad()
				if g == nil || !g.DType().IsFloat() {
					continue
				}
				grads = append(grads, g)
				c.names = append(c.names, p.Name)
				c.parts = append(c.parts, g.Sum())
			}
			if len(c.parts) == 0 {
				return
			}
			var vals []float64
			if err := bridge.Try(func() {
				st := bridge.Stack(c.parts, 0)
				vals = st.Float64s()
				_ = st.Free()
			}); err != nil { // several devices
				vals = make([]float64, len(c.parts))
				for i, p := range c.parts {
					vals[i] = p.Item()
				}
			}
			for i, x := range vals {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					f := Finding{Path: "grad:" + c.names[i]}
					f.NaN, f.Inf, f.Numel = count(grads[i])
					if f.NaN+f.Inf > 0 {
						c.findings = append(c.findings, f)
					}
				}
			}
		})
	})
	for _, t := range c.parts {
		_ = t.Free()
	}
	for _, g := range grads {
		_ = g.Free() // our handle; the parameter keeps its gradient
	}
	if err != nil {
		c.skip(env, "grads", err.Error())
	}
}

func (c *AnomalyGuard) act(event string, env *torchenv.Env) {
	c.cnt.Anomalies++
	if c.cnt.FirstStep < 0 {
		c.cnt.FirstStep = env.Step
	}
	c.cnt.LastStep = env.Step
	for _, f := range c.findings {
		c.cnt.ByPath[f.Path]++
	}
	what := c.describe()
	reason := fmt.Sprintf("anomaly_guard %s: %s at step %d", c.ID(), what, env.Step)
	var consequence string
	switch c.p.Action {
	case ActionStop:
		env.RequestStop(reason)
		consequence = "; stop requested"
	case ActionDisable:
		c.cnt.Tripped = true
		consequence = "; guard disarmed (set_params re-arms it)"
	}
	if c.p.MaxReports > 0 && c.cnt.Anomalies > int64(c.p.MaxReports) {
		if !c.quiet {
			c.quiet = true
			env.Logf("anomaly_guard %s: %d anomalies reported; further ones are counted, not reported", c.ID(), c.p.MaxReports)
		}
		return
	}
	env.Logf("%s (%s; anomaly %d, first at step %d; action=%s%s)", reason, event, c.cnt.Anomalies, c.cnt.FirstStep, c.p.Action, consequence)
	l := &c.line
	l.Begin()
	l.Header(c.ID(), event, env)
	l.Int("anomaly", c.cnt.Anomalies)
	l.Int("first_step", c.cnt.FirstStep)
	l.Str("action", c.p.Action)
	l.Object("findings")
	for _, f := range c.findings {
		l.Object(f.Path)
		l.Int("numel", f.Numel)
		l.Int("nan", f.NaN)
		l.Int("inf", f.Inf)
		l.Close()
	}
	l.Close()
	c.w.Write(env, l.End())
}

// describe says what was found: "loss is NaN", "outputs has 3 NaN and 1 Inf of 64 elements".
func (c *AnomalyGuard) describe() string {
	parts := make([]string, 0, len(c.findings))
	for _, f := range c.findings {
		switch {
		case f.Numel == 1 && f.NaN == 1:
			parts = append(parts, f.Path+" is NaN")
		case f.Numel == 1 && f.Inf == 1:
			parts = append(parts, f.Path+" is Inf")
		default:
			parts = append(parts, fmt.Sprintf("%s has %d NaN and %d Inf of %d elements", f.Path, f.NaN, f.Inf, f.Numel))
		}
	}
	return strings.Join(parts, ", ")
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Close closes the record file.
func (c *AnomalyGuard) Close() error { return c.w.Close() }
