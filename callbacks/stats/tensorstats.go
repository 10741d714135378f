package stats

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/callbacks/jsonl"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/callbacks/stats/summary"
	"github.com/hotcb/hotcb/torchenv"
)

func init() {
	callbacks.Provide(spec.TensorStats, NewTensorStats)
	callbacks.Provide(spec.GradStats, NewGradStats)
}

// TensorStatsParams are TensorStats' parameters (spec.TensorStatsParams).
type TensorStatsParams = spec.TensorStatsParams

// DefaultTensorStatsParams are the values before init is applied.
func DefaultTensorStatsParams() TensorStatsParams { return spec.TensorStats.Defaults() }

// PathStats is the report for one path.
type PathStats struct {
	Path    string
	Tensor  bool            // Summary is set; else Value is
	Summary summary.Summary // for tensors
	Value   float64         // for Go numbers
}

// TensorStats summarises tensors at env paths every N steps (hotcb's tensor_stats). Its
// records look like
//
//	{"time":…,"id":"ts","event":"train_step_end","step":100,"epoch":1,"phase":"train",
//	 "stats":{"loss":{"shape":[],"dtype":"float32","numel":1,"mean":0.31,"std":0,"min":0.31,"max":0.31,"nan":0,"inf":0},
//	          "outputs":{"shape":[64,10],…}},"missing":[]}
//
// Floating-point tensors get every field, integer and bool tensors shape, dtype, numel, min and
// max, empty tensors shape, dtype and numel (see summary.Of). A tensor libtorch cannot reduce is
// logged once and left out; nothing a path holds makes Handle fail.
type TensorStats struct {
	callbacks.Base[TensorStatsParams]
	p      TensorStatsParams
	every  int64
	warned map[string]bool
	w      *jsonl.Writer
	line   jsonl.Line
	last   []PathStats
	miss   []string
	sb     strings.Builder
}

// NewTensorStats returns a TensorStats with DefaultTensorStatsParams updated by init.
func NewTensorStats(id string, init map[string]any) (*TensorStats, error) {
	c := &TensorStats{}
	c.w = jsonl.NewWriter("tensor_stats "+id, "")
	if err := c.Init(id, &c.p, spec.TensorStats, init, c.apply); err != nil {
		return nil, err
	}
	return c, nil
}

// Writer returns the record file's writer (lines written and lost).
func (c *TensorStats) Writer() *jsonl.Writer { return c.w }

// Last returns the most recent report (nil before the first) and the paths missing from it;
// both are reused by the next report.
func (c *TensorStats) Last() ([]PathStats, []string) { return c.last, c.miss }

// apply puts new params to use.
func (c *TensorStats) apply(TensorStatsParams, map[string]any) error {
	c.every = int64(c.p.Every)
	c.warned = map[string]bool{}
	c.w.SetPath(c.p.OutPath)
	return nil
}

// Handle reports at Event on the steps that are a multiple of Every.
func (c *TensorStats) Handle(event string, env *torchenv.Env) error {
	if env == nil || event != c.p.Event || env.Step%c.every != 0 {
		return nil
	}
	c.last, c.miss = c.last[:0], c.miss[:0]
	for _, path := range c.p.Paths {
		v, err := env.Lookup(path)
		if err != nil {
			c.warn(env, path, err.Error())
			c.miss = append(c.miss, path)
			continue
		}
		switch x := v.(type) {
		case *bridge.Tensor:
			s, err := summary.Of(x)
			if err != nil {
				c.warn(env, path, err.Error())
				c.miss = append(c.miss, path)
				continue
			}
			c.last = append(c.last, PathStats{Path: path, Tensor: true, Summary: s})
		default:
			f, ok := summary.Number(v)
			if !ok {
				c.warn(env, path, fmt.Sprintf("a %T is neither a tensor nor a number", v))
				c.miss = append(c.miss, path)
				continue
			}
			c.last = append(c.last, PathStats{Path: path, Value: f})
		}
	}
	l := &c.line
	l.Begin()
	l.Header(c.ID(), event, env)
	l.Object("stats")
	for _, ps := range c.last {
		if ps.Tensor {
			l.Summary(ps.Path, ps.Summary)
		} else {
			l.Object(ps.Path)
			l.Float("value", ps.Value)
			l.Close()
		}
	}
	l.Close()
	l.Strs("missing", c.miss)
	c.w.Write(env, l.End())
	if c.p.Log && env.Log != nil {
		env.Log(c.logLine(env))
	}
	return nil
}

func (c *TensorStats) warn(env *torchenv.Env, path, why string) {
	if c.warned[path] {
		return
	}
	c.warned[path] = true
	env.Logf("tensor_stats %s: warning: %s skipped: %s (reported once per path; the other paths are still summarised)", c.ID(), path, why)
}

func (c *TensorStats) logLine(env *torchenv.Env) string {
	b := &c.sb
	b.Reset()
	fmt.Fprintf(b, "tensor_stats %s step %d:", c.ID(), env.Step)
	for i, ps := range c.last {
		if i > 0 {
			b.WriteString(" |")
		}
		b.WriteString(" " + ps.Path)
		if !ps.Tensor {
			b.WriteString("=" + g(ps.Value))
			continue
		}
		s := ps.Summary
		fmt.Fprintf(b, " %v %s", []int64(s.Shape), s.DType)
		if s.HasMoments {
			b.WriteString(" mean=" + g(s.Mean) + " std=" + g(s.Std))
		}
		if s.HasRange {
			b.WriteString(" min=" + g(s.Min) + " max=" + g(s.Max))
		}
		if !s.Finite() {
			fmt.Fprintf(b, " NaN=%d Inf=%d", s.NaN, s.Inf)
		}
	}
	if len(c.miss) > 0 {
		b.WriteString(" (missing: " + strings.Join(c.miss, ", ") + ")")
	}
	return b.String()
}

func g(f float64) string { return strconv.FormatFloat(f, 'g', 5, 64) }

// Close closes the record file.
func (c *TensorStats) Close() error { return c.w.Close() }
