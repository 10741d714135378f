package stats

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
	"github.com/hotcb/hotcb/torchenv"
)

// GradStatsParams are GradStats' parameters (spec.GradStatsParams).
type GradStatsParams = spec.GradStatsParams

// DefaultGradStatsParams are the values before init is applied.
func DefaultGradStatsParams() GradStatsParams { return spec.GradStats.Defaults() }

// GradReport is one GradStats report.
type GradReport struct {
	Step     int64
	NormType float64
	// Norm is the total NormType-norm of all gradients (the norm of their concatenation, as
	// clip_grad_norm_ returns it); NaN or Inf if a gradient holds one.
	Norm float64
	// MaxAbs is the largest gradient magnitude.
	MaxAbs float64
	// Params counts the parameters, WithGrad those with a gradient.
	Params, WithGrad int
	// NaN and Inf name the parameters whose gradient holds a NaN or an Inf.
	NaN, Inf []string
	// Layers is the norm per layer when PerLayer is on, in model order.
	Layers []LayerNorm
}

// LayerNorm is the gradient norm of one layer's parameters.
type LayerNorm struct {
	Layer string
	Norm  float64
}

// GradStats summarises the gradients of env.Model (or, without a model, of env.Optimizer's
// parameters, named "param.<i>") every N steps (hotcb's grad_stats). Its records look like
//
//	{"time":…,"id":"gs","event":"backward_end","step":100,"epoch":1,"norm_type":2,
//	 "grad_norm":1.7,"max_abs":0.4,"params":4,"params_with_grad":4,"nan_params":[],
//	 "inf_params":[],"layers":{"1":1.5,"3":0.8}}
//
// Cost of a report: four libtorch calls per parameter (its grad, |g|, its max, its 2-norm) and
// a few more for one copy of all the norms to the host, where the total is summed in float64.
type GradStats struct {
	callbacks.Base[GradStatsParams]
	p      GradStatsParams
	every  int64
	warned bool
	w      *jsonl.Writer
	line   jsonl.Line
	last   GradReport
	sb     strings.Builder

	// reused between reports
	names []string
	grads []*bridge.Tensor
}

// NewGradStats returns a GradStats with DefaultGradStatsParams updated by init.
func NewGradStats(id string, init map[string]any) (*GradStats, error) {
	c := &GradStats{}
	c.w = jsonl.NewWriter("grad_stats "+id, "")
	if err := c.Init(id, &c.p, spec.GradStats, init, c.apply); err != nil {
		return nil, err
	}
	return c, nil
}

// Writer returns the record file's writer (lines written and lost).
func (c *GradStats) Writer() *jsonl.Writer { return c.w }

// Last returns the most recent report (the zero report before the first); its slices are
// reused by the next report.
func (c *GradStats) Last() GradReport { return c.last }

// apply puts new params to use.
func (c *GradStats) apply(GradStatsParams, map[string]any) error {
	c.every = int64(c.p.Every)
	c.warned = false
	c.w.SetPath(c.p.OutPath)
	return nil
}

// Handle reports at Event on the steps that are a multiple of Every.
func (c *GradStats) Handle(event string, env *torchenv.Env) error {
	if env == nil || event != c.p.Event || env.Step%c.every != 0 {
		return nil
	}
	var all []bridge.Named
	switch {
	case env.Model != nil:
		all = nn.NamedParameters(env.Model)
	case env.Optimizer != nil:
		for i, p := range env.Optimizer.Params() {
			all = append(all, bridge.Named{Name: "param." + strconv.Itoa(i), Tensor: p})
		}
	default:
		if !c.warned {
			c.warned = true
			env.Logf("grad_stats %s: warning: the env has no model and no optimizer: no gradients to look at (reported once)", c.ID())
		}
		return nil
	}
	if err := bridge.Try(func() { c.compute(env, all) }); err != nil {
		// Not fatal for the run, and the next report may work (a parameter moved devices, say):
		// the error goes to the log, and the controller is not asked to disable the callback.
		env.Logf("grad_stats %s: step %d: %v", c.ID(), env.Step, err)
		return nil
	}
	c.record(event, env)
	env.Report(MetricGradNorm, c.last.Norm) // to the metrics stream
	env.Report(MetricGradMaxAbs, c.last.MaxAbs)
	return nil
}

// Names under which grad_stats reports each report's total norm (of NormType) and largest
// gradient magnitude to the run's metrics stream (env.Report).
const (
	MetricGradNorm   = "grad_norm"
	MetricGradMaxAbs = "grad_max_abs"
)

// compute fills c.last from the gradients of params.
func (c *GradStats) compute(env *torchenv.Env, all []bridge.Named) {
	r := &c.last
	*r = GradReport{Step: env.Step, NormType: c.p.NormType, Params: len(all), NaN: r.NaN[:0], Inf: r.Inf[:0], Layers: r.Layers[:0]}
	c.names, c.grads = c.names[:0], c.grads[:0]
	defer func() {
		for i, g := range c.grads {
			_ = g.Free() // our handle only: the parameter keeps its gradient
			c.grads[i] = nil
		}
	}()
	for _, p := range all {
		if g := p.Tensor.Grad(); g != nil {
			c.names, c.grads = append(c.names, p.Name), append(c.grads, g)
		}
	}
	n := len(c.grads)
	r.WithGrad = n
	if n == 0 {
		return
	}
	l2, linf := c.norms(env)
	var sumsq float64
	r.MaxAbs = 0
	for i := 0; i < n; i++ {
		sumsq += l2[i] * l2[i]
		r.MaxAbs = maxNaN(r.MaxAbs, linf[i])
		switch {
		case math.IsNaN(linf[i]): // max propagates NaN; look for an Inf beside it
			r.NaN = append(r.NaN, c.names[i])
			var hasInf bool
			bridge.NoGrad(func() {
				a := c.grads[i].IsInf().Any()
				hasInf = a.Item() != 0
				_ = a.Free()
			})
			if hasInf {
				r.Inf = append(r.Inf, c.names[i])
			}
		case math.IsInf(linf[i], 0):
			r.Inf = append(r.Inf, c.names[i])
		}
	}
	if math.IsInf(c.p.NormType, 1) {
		r.Norm = r.MaxAbs
	} else {
		r.Norm = math.Sqrt(sumsq)
	}
	if c.p.PerLayer {
		for i := 0; i < n; {
			layer := layerOf(c.names[i])
			acc := 0.0
			j := i
			for ; j < n && layerOf(c.names[j]) == layer; j++ {
				if math.IsInf(c.p.NormType, 1) {
					acc = maxNaN(acc, linf[j])
				} else {
					acc += l2[j] * l2[j]
				}
			}
			if !math.IsInf(c.p.NormType, 1) {
				acc = math.Sqrt(acc)
			}
			r.Layers = append(r.Layers, LayerNorm{Layer: layer, Norm: acc})
			i = j
		}
	}
}

// norms returns each gradient's 2-norm (nil for norm_type inf) and inf-norm, computed on the
// gradients' device and copied to the host at once.
func (c *GradStats) norms(env *torchenv.Env) (l2, linf []float64) {
	n := len(c.grads)
	want2 := !math.IsInf(c.p.NormType, 1)
	parts := make([]*bridge.Tensor, 0, 2*n)
	bridge.NoGrad(func() {
		for _, g := range c.grads {
			// |g|.max() rather than the inf-norm: libtorch 1.13's CPU inf-norm is ≈10x slower.
			a := g.Abs()
			parts = append(parts, a.Max())
			_ = a.Free()
		}
		if want2 {
			for _, g := range c.grads {
				parts = append(parts, g.Norm(2))
			}
		}
		var vals []float64
		err := bridge.Try(func() {
			st := bridge.Stack(parts, 0) // one device, any float dtypes (promoted)
			vals = st.Float64s()
			_ = st.Free()
		})
		if err != nil { // gradients on several devices: one copy each
			vals = make([]float64, len(parts))
			for i, p := range parts {
				vals[i] = p.Item()
			}
		}
		for _, p := range parts {
			_ = p.Free()
		}
		linf = vals[:n]
		if want2 {
			l2 = vals[n:]
		} else {
			l2 = make([]float64, n)
		}
	})
	return l2, linf
}

// layerOf is the module a parameter belongs to: its name without the last part.
func layerOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

func maxNaN(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Max(a, b)
}

func (c *GradStats) record(event string, env *torchenv.Env) {
	r := &c.last
	l := &c.line
	l.Begin()
	l.Header(c.ID(), event, env)
	l.Float("norm_type", r.NormType)
	l.Float("grad_norm", r.Norm)
	l.Float("max_abs", r.MaxAbs)
	l.Int("params", int64(r.Params))
	l.Int("params_with_grad", int64(r.WithGrad))
	l.Strs("nan_params", r.NaN)
	l.Strs("inf_params", r.Inf)
	if c.p.PerLayer {
		l.Object("layers")
		for _, ln := range r.Layers {
			l.Float(ln.Layer, ln.Norm)
		}
		l.Close()
	}
	c.w.Write(env, l.End())
	if !c.p.Log || env.Log == nil {
		return
	}
	b := &c.sb
	b.Reset()
	norm := "L2"
	if math.IsInf(r.NormType, 1) {
		norm = "Linf"
	}
	fmt.Fprintf(b, "grad_stats %s step %d: grad_norm=%s (%s) max|g|=%s, %d/%d params with grad",
		c.ID(), env.Step, g(r.Norm), norm, g(r.MaxAbs), r.WithGrad, r.Params)
	if len(r.NaN) > 0 {
		b.WriteString("; NaN in " + strings.Join(r.NaN, ", "))
	}
	if len(r.Inf) > 0 {
		b.WriteString("; Inf in " + strings.Join(r.Inf, ", "))
	}
	if c.p.PerLayer && len(r.Layers) > 0 {
		b.WriteString("; layers:")
		for _, ln := range r.Layers {
			b.WriteString(" " + ln.Layer + "=" + g(ln.Norm))
		}
	}
	env.Log(b.String())
}

// Close closes the record file.
func (c *GradStats) Close() error { return c.w.Close() }
