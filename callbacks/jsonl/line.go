package jsonl

import (
	"strconv"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks/stats/summary"
	"github.com/hotcb/hotcb/internal/pyjson"
	"github.com/hotcb/hotcb/torchenv"
)

// Line builds one JSON object, keys in the order they are added, into a buffer it reuses: a
// reporting step allocates nothing once the buffer has grown. Non-finite floats, which JSON
// cannot hold, are written as the strings "NaN", "Infinity" and "-Infinity" (what Python's
// float() and Go's strconv.ParseFloat read back); invalid UTF-8 in strings becomes U+FFFD.
//
//	var l jsonl.Line
//	l.Begin()
//	l.Int("step", 10)
//	l.Float("loss", 0.25)
//	w.Write(env, l.End()) // {"step":10,"loss":0.25}\n
type Line struct {
	b    []byte
	more bool // a value was written at this level: the next key needs a comma
}

// Begin starts a new object, discarding the previous line.
func (l *Line) Begin() {
	l.b = append(l.b[:0], '{')
	l.more = false
}

// End closes the object and returns the line with its newline; the bytes are valid until the
// next Begin.
func (l *Line) End() []byte {
	l.b = append(l.b, '}', '\n')
	return l.b
}

func (l *Line) key(k string) {
	if l.more {
		l.b = append(l.b, ',')
	}
	l.b = pyjson.AppendString(l.b, k)
	l.b = append(l.b, ':')
	l.more = true
}

// Object opens a nested object under k; close it with Close.
func (l *Line) Object(k string) {
	l.key(k)
	l.b = append(l.b, '{')
	l.more = false
}

// Close ends the object Object opened.
func (l *Line) Close() {
	l.b = append(l.b, '}')
	l.more = true
}

// Str adds a string.
func (l *Line) Str(k, v string) {
	l.key(k)
	l.b = pyjson.AppendString(l.b, v)
}

// Int adds an integer.
func (l *Line) Int(k string, v int64) {
	l.key(k)
	l.b = strconv.AppendInt(l.b, v, 10)
}

// Float adds a number (non-finite values as strings, see Line).
func (l *Line) Float(k string, v float64) {
	l.key(k)
	l.b = pyjson.AppendFloat(l.b, v)
}

// Bool adds a bool.
func (l *Line) Bool(k string, v bool) {
	l.key(k)
	l.b = strconv.AppendBool(l.b, v)
}

// Null adds null.
func (l *Line) Null(k string) {
	l.key(k)
	l.b = append(l.b, "null"...)
}

// Ints adds a list of integers (a shape).
func (l *Line) Ints(k string, v []int64) {
	l.key(k)
	l.b = append(l.b, '[')
	for i, x := range v {
		if i > 0 {
			l.b = append(l.b, ',')
		}
		l.b = strconv.AppendInt(l.b, x, 10)
	}
	l.b = append(l.b, ']')
}

// Strs adds a list of strings.
func (l *Line) Strs(k string, v []string) {
	l.key(k)
	l.b = append(l.b, '[')
	for i, x := range v {
		if i > 0 {
			l.b = append(l.b, ',')
		}
		l.b = pyjson.AppendString(l.b, x)
	}
	l.b = append(l.b, ']')
}

// Header adds what every hotcb record starts with: the wall-clock time (Unix seconds), the
// callback id, the event, and the env's step, epoch and phase.
func (l *Line) Header(id, event string, env *torchenv.Env) {
	l.Float("time", float64(time.Now().UnixMicro())/1e6)
	l.Str("id", id)
	l.Str("event", event)
	l.Int("step", env.Step)
	l.Float("epoch", env.Epoch)
	if env.Phase != "" {
		l.Str("phase", env.Phase)
	}
}

// Summary adds a tensor summary as an object: shape, dtype, numel, then mean, std (floats),
// min, max (non-empty tensors) and nan, inf counts.
func (l *Line) Summary(k string, s summary.Summary) {
	l.Object(k)
	l.Ints("shape", s.Shape)
	l.Str("dtype", s.DType.String())
	if s.Device != bridge.CPU {
		l.Str("device", s.Device.String())
	}
	l.Int("numel", s.Numel)
	if s.HasMoments {
		l.Float("mean", s.Mean)
		l.Float("std", s.Std)
	}
	if s.HasRange {
		l.Float("min", s.Min)
		l.Float("max", s.Max)
	}
	l.Int("nan", s.NaN)
	l.Int("inf", s.Inf)
	l.Close()
}
