// Package summary reduces a tensor to the few numbers a person reads in a log — shape, dtype,
// mean, std, min, max, NaN and Inf counts — computed where the tensor lives with one copy to
// the host, and converts the loose values an env path may hold (0-d tensors, Go numbers) to
// float64. The stats, guard and jsonl callbacks share it.
package summary

import (
	"encoding/json"
	"math"

	"github.com/hotcb/hotcb/bridge"
)

// Summary describes one tensor.
type Summary struct {
	Shape  bridge.Shape
	DType  bridge.DType
	Device bridge.Device
	Numel  int64
	// HasMoments: Mean and Std are set (floating-point tensors with elements).
	HasMoments bool
	Mean, Std  float64
	// HasRange: Min and Max are set (any dtype, at least one element).
	HasRange bool
	Min, Max float64
	// NaN and Inf count the non-finite elements (always 0 for integer and bool tensors).
	NaN, Inf int64
}

// Finite reports whether the tensor has no NaN or Inf element.
func (s Summary) Finite() bool { return s.NaN == 0 && s.Inf == 0 }

// Of summarises t without recording autograd history.
//
// Floating-point tensors: mean, std (unbiased, as torch.std; 0 for a single element, where
// torch would give NaN), min and max are computed on t's device and copied to the host in one
// transfer (≈9 libtorch calls). NaN and Inf are counted only when min or max is not finite
// (min and max propagate NaN, and an Inf is the min or the max), so a healthy tensor pays
// nothing for the counts. Integer and bool tensors get min and max only (torch has no mean of an
// integer tensor, and they cannot hold NaN); empty tensors get shape and dtype only.
//
// Errors from libtorch (a freed tensor, say) are returned, never panicked.
func Of(t *bridge.Tensor) (s Summary, err error) {
	if t == nil {
		return s, &bridge.Error{Op: "summary", Msg: "nil tensor"}
	}
	err = bridge.Try(func() {
		s.Shape, s.DType, s.Device = t.Shape(), t.DType(), t.Device()
		s.Numel = s.Shape.Numel()
		if s.Numel == 0 {
			return
		}
		bridge.NoGrad(func() { s.reduce(t) })
	})
	return s, err
}

func (s *Summary) reduce(t *bridge.Tensor) {
	if !s.DType.IsFloat() {
		mn, mx := t.Min(), t.Max()
		v := bridge.Stack([]*bridge.Tensor{mn, mx}, 0)
		vals := v.Float64s()
		freeAll(mn, mx, v)
		s.HasRange, s.Min, s.Max = true, vals[0], vals[1]
		return
	}
	mean, std, mn, mx := t.Mean(), t.Std(s.Numel > 1), t.Min(), t.Max()
	v := bridge.Stack([]*bridge.Tensor{mean, std, mn, mx}, 0)
	vals := v.Float64s() // one device-to-host copy
	freeAll(mean, std, mn, mx, v)
	s.HasMoments, s.HasRange = true, true
	s.Mean, s.Std, s.Min, s.Max = vals[0], vals[1], vals[2], vals[3]
	if isFinite(s.Min) && isFinite(s.Max) {
		return
	}
	isnan, isinf := t.IsNaN(), t.IsInf()
	nan, inf := isnan.Sum(), isinf.Sum()
	c := bridge.Stack([]*bridge.Tensor{nan, inf}, 0)
	counts := c.Int64s()
	freeAll(isnan, isinf, nan, inf, c)
	s.NaN, s.Inf = counts[0], counts[1]
}

// freeAll releases temporaries at once: a reporting step should not leave work to the collector.
func freeAll(ts ...*bridge.Tensor) {
	for _, t := range ts {
		_ = t.Free()
	}
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Number converts a Go number (any int, uint or float kind, json.Number) or a bool (0/1) to a
// float64.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
