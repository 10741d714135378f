package jsonl

import (
	"fmt"
	"sort"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/callbacks/stats/summary"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

func init() { callbacks.Provide(spec.JSONLLogger, New) }

// Params are JSONLLogger's parameters (spec.JSONLLoggerParams).
type Params = spec.JSONLLoggerParams

// DefaultParams are the values a logger starts from before its init is applied.
func DefaultParams() Params { return spec.JSONLLogger.Defaults() }

// JSONLLogger writes a line of values every N steps. Make one with New; the controller calls
// it on the training goroutine only.
//
// A line looks like
//
//	{"time":1764391158.5,"id":"m","event":"train_step_end","step":100,"epoch":1,"phase":"train","loss":0.31}
//
// (non-finite numbers as "NaN", "Infinity", "-Infinity"). The file is opened at the first line
// and closed by Close; write errors are counted and logged, never returned (see Writer).
type JSONLLogger struct {
	callbacks.Base[Params]
	p      Params
	every  int64
	paths  []string // Paths without duplicates and header keys
	warned map[string]bool
	w      *Writer
	line   Line
}

// New returns a logger with DefaultParams updated by init.
func New(id string, init map[string]any) (*JSONLLogger, error) {
	c := &JSONLLogger{}
	c.w = NewWriter("jsonl_logger "+id, "")
	if err := c.Init(id, &c.p, spec.JSONLLogger, init, c.apply); err != nil {
		return nil, err
	}
	return c, nil
}

// Writer returns the logger's file writer (counts of lines written and lost).
func (c *JSONLLogger) Writer() *Writer { return c.w }

// apply checks and puts new params to use.
func (c *JSONLLogger) apply(_ Params, m map[string]any) error {
	if len(c.p.Events) == 0 {
		return &params.Error{Key: "events", Value: m["events"], Want: "at least one event"}
	}
	c.every = int64(c.p.Every)
	c.paths = c.paths[:0:0]
	seen := map[string]bool{"step": true, "epoch": true, "phase": true}
	for _, p := range c.p.Paths {
		if !seen[p] {
			seen[p] = true
			c.paths = append(c.paths, p)
		}
	}
	c.warned = map[string]bool{}
	c.w.SetPath(c.p.OutPath)
	return nil
}

// Handle writes a line when the event is one of Events and the step a multiple of Every.
func (c *JSONLLogger) Handle(event string, env *torchenv.Env) error {
	if env == nil || env.Step%c.every != 0 || !contains(c.p.Events, event) {
		return nil
	}
	l := &c.line
	l.Begin()
	l.Header(c.ID(), event, env)
	for _, p := range c.paths {
		v, err := env.Lookup(p)
		if err != nil {
			if !c.warned[p] {
				c.warned[p] = true
				env.Logf("jsonl_logger %s: skipping %s: %v (logged once)", c.ID(), p, err)
			}
			continue
		}
		if err := Value(l, p, v, c.p.TensorStats); err != nil && !c.warned[p] {
			c.warned[p] = true
			env.Logf("jsonl_logger %s: %s: %v (logged once)", c.ID(), p, err)
		}
	}
	c.w.Write(env, l.End())
	return nil
}

// Close closes the file.
func (c *JSONLLogger) Close() error { return c.w.Close() }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Value adds v under key k: tensors with one element as numbers, other tensors as a summary
// (stats) or their shape, dtype and numel, Go numbers, strings and bools as themselves, maps
// with string keys as objects (sorted keys, three levels deep). A value it cannot write (a
// module, an optimizer) is written as null and returned as an error.
func Value(l *Line, k string, v any, stats bool) error {
	return value(l, k, v, stats, 0)
}

// object writes a map as a nested object, keys sorted, at most three levels deep; it returns the
// first value that could not be logged.
func object[V any](l *Line, k string, m map[string]V, stats bool, depth int) error {
	if depth >= 3 {
		l.Null(k)
		return fmt.Errorf("nested too deep")
	}
	var first error
	l.Object(k)
	for _, key := range sortedKeys(m) {
		if err := value(l, key, m[key], stats, depth+1); err != nil && first == nil {
			first = err
		}
	}
	l.Close()
	return first
}

func value(l *Line, k string, v any, stats bool, depth int) error {
	switch x := v.(type) {
	case nil:
		l.Null(k)
	case *bridge.Tensor:
		return tensor(l, k, x, stats)
	case string:
		l.Str(k, x)
	case bool:
		l.Bool(k, x)
	case int:
		l.Int(k, int64(x))
	case int64:
		l.Int(k, x)
	case int32:
		l.Int(k, int64(x))
	case bridge.Device:
		l.Str(k, x.String())
	case map[string]float64:
		l.Object(k)
		for _, key := range sortedKeys(x) {
			l.Float(key, x[key])
		}
		l.Close()
	case map[string]*bridge.Tensor:
		return object(l, k, x, stats, depth)
	case map[string]any:
		return object(l, k, x, stats, depth)
	default:
		f, ok := summary.Number(v)
		if !ok {
			l.Null(k)
			return fmt.Errorf("a %T is not a value that can be logged", v)
		}
		l.Float(k, f)
	}
	return nil
}

func tensor(l *Line, k string, t *bridge.Tensor, stats bool) error {
	if t == nil {
		l.Null(k)
		return nil
	}
	var shape bridge.Shape
	var dt bridge.DType
	var item float64
	one := false
	err := bridge.Try(func() {
		shape, dt = t.Shape(), t.DType()
		if shape.Numel() == 1 {
			item, one = t.Item(), true
		}
	})
	switch {
	case err != nil:
		l.Null(k)
		return err
	case one:
		l.Float(k, item)
		return nil
	case stats:
		s, err := summary.Of(t)
		if err != nil {
			l.Null(k)
			return err
		}
		l.Summary(k, s)
		return nil
	}
	l.Object(k)
	l.Ints("shape", shape)
	l.Str("dtype", dt.String())
	l.Int("numel", shape.Numel())
	l.Close()
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
