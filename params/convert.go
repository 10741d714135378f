package params

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// num is a number from any source, kept in the form it came in so that integers beyond 2^53
// (uint64 seeds, json.Number) convert exactly.
type num struct {
	kind byte // 'i' int64, 'u' uint64 (above MaxInt64 only), 'f' float64
	i    int64
	u    uint64
	f    float64
}

// toNum reads a number from a Go number of any kind, a json.Number, or the text of a number
// ("10", " 3e-4 ", "-1"). Bools and nil are not numbers.
func toNum(in any) (num, bool) {
	switch x := in.(type) {
	case nil, bool:
		return num{}, false
	case float64:
		return num{kind: 'f', f: x}, true
	case int:
		return num{kind: 'i', i: int64(x)}, true
	case int64:
		return num{kind: 'i', i: x}, true
	case json.Number:
		return parseNum(string(x))
	case string:
		return parseNum(x)
	}
	rv := reflect.ValueOf(in)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return num{kind: 'i', i: rv.Int()}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u > math.MaxInt64 {
			return num{kind: 'u', u: u}, true
		}
		return num{kind: 'i', i: int64(rv.Uint())}, true
	case reflect.Float32, reflect.Float64:
		return num{kind: 'f', f: rv.Float()}, true
	case reflect.String:
		return parseNum(rv.String())
	}
	return num{}, false
}

// parseNum reads decimal integers exactly and anything else strconv.ParseFloat takes ("1e3",
// "0.5", "inf"). Out-of-range floats ("1e400") are rejected rather than rounded to ±Inf or 0.
func parseNum(s string) (num, bool) {
	s = strings.TrimSpace(s)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return num{kind: 'i', i: i}, true
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return num{kind: 'u', u: u}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return num{}, false
	}
	return num{kind: 'f', f: f}, true
}

const (
	twoTo63 = 9223372036854775808.0  // 2^63, the first float64 beyond int64
	twoTo64 = 18446744073709551616.0 // 2^64, the first float64 beyond uint64
)

// scalar converts in to a new value of the scalar type t (see isScalar). On failure it returns
// what t wants, for the error message. loose lets a string take numbers and bools.
func scalar(in any, t reflect.Type, loose bool) (reflect.Value, string) {
	out := reflect.New(t).Elem()
	if t == durationType {
		d, ok := toDuration(in)
		if !ok {
			return out, wantDuration
		}
		out.SetInt(int64(d))
		return out, ""
	}
	switch k := t.Kind(); k {
	case reflect.Bool:
		b, ok := toBool(in)
		if !ok {
			return out, "a bool"
		}
		out.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := toNum(in)
		if !ok || !n.integral() {
			return out, "an integer"
		}
		bits := t.Bits()
		lo, hi := int64(-1)<<(bits-1), int64(1)<<(bits-1)-1
		i, ok := n.toInt64()
		if !ok || i < lo || i > hi {
			return out, fmt.Sprintf("an integer from %d to %d (%v)", lo, hi, k)
		}
		out.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := toNum(in)
		if !ok || !n.integral() {
			return out, "a non-negative integer"
		}
		if n.negative() {
			return out, fmt.Sprintf("a non-negative integer (%v)", k)
		}
		hi := uint64(math.MaxUint64) >> (64 - t.Bits())
		u, ok := n.toUint64()
		if !ok || u > hi {
			return out, fmt.Sprintf("an integer from 0 to %d (%v)", hi, k)
		}
		out.SetUint(u)
	case reflect.Float32, reflect.Float64:
		n, ok := toNum(in)
		if !ok {
			return out, "a number"
		}
		f := n.float()
		if math.IsNaN(f) {
			return out, "a number"
		}
		if k == reflect.Float32 && !math.IsInf(f, 0) && math.IsInf(float64(float32(f)), 0) {
			return out, fmt.Sprintf("a number within float32 range (±%g)", math.MaxFloat32)
		}
		out.SetFloat(f)
	case reflect.String:
		s, ok := toString(in, loose)
		if !ok {
			return out, "a string"
		}
		out.SetString(s)
	default:
		return out, fmt.Sprintf("a supported type (params cannot decode %v)", t)
	}
	return out, ""
}

func (n num) integral() bool {
	return n.kind != 'f' || (!math.IsInf(n.f, 0) && n.f == math.Trunc(n.f))
}

func (n num) negative() bool {
	return (n.kind == 'i' && n.i < 0) || (n.kind == 'f' && n.f < 0)
}

// toInt64 converts an integral number; false when it is beyond int64.
func (n num) toInt64() (int64, bool) {
	switch n.kind {
	case 'i':
		return n.i, true
	case 'u':
		return 0, false // only set above MaxInt64
	}
	if n.f < -twoTo63 || n.f >= twoTo63 {
		return 0, false
	}
	return int64(n.f), true
}

// toUint64 converts an integral, non-negative number; false when it is beyond uint64.
func (n num) toUint64() (uint64, bool) {
	switch n.kind {
	case 'i':
		return uint64(n.i), n.i >= 0
	case 'u':
		return n.u, true
	}
	if n.f < 0 || n.f >= twoTo64 {
		return 0, false
	}
	return uint64(n.f), true
}

func (n num) float() float64 {
	switch n.kind {
	case 'i':
		return float64(n.i)
	case 'u':
		return float64(n.u)
	}
	return n.f
}

// toBool takes a bool, the numbers 0 and 1, and the words strconv.ParseBool knows plus YAML's
// yes/no/on/off in any case.
func toBool(in any) (bool, bool) {
	switch x := in.(type) {
	case bool:
		return x, true
	case string:
		s := strings.ToLower(strings.TrimSpace(x))
		switch s {
		case "yes", "on":
			return true, true
		case "no", "off":
			return false, true
		}
		b, err := strconv.ParseBool(s)
		return b, err == nil
	}
	if n, ok := toNum(in); ok {
		switch n.float() {
		case 0:
			return false, true
		case 1:
			return true, true
		}
	}
	return false, false
}

// toString takes strings; with loose, also numbers and bools, written the way they would be
// typed (1e6 as "1000000", json.Number as its text).
func toString(in any, loose bool) (string, bool) {
	switch x := in.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), loose
	case bool:
		return strconv.FormatBool(x), loose
	case nil:
		return "", false
	}
	rv := reflect.ValueOf(in)
	if rv.Kind() == reflect.String {
		return rv.String(), true
	}
	if !loose {
		return "", false
	}
	n, ok := toNum(in)
	if !ok {
		return "", false
	}
	switch n.kind {
	case 'i':
		return strconv.FormatInt(n.i, 10), true
	case 'u':
		return strconv.FormatUint(n.u, 10), true
	}
	bits := 64
	if rv.Kind() == reflect.Float32 {
		bits = 32
	}
	if n.f == math.Trunc(n.f) && math.Abs(n.f) < 1e21 {
		return strconv.FormatFloat(n.f, 'f', -1, bits), true
	}
	return strconv.FormatFloat(n.f, 'g', -1, bits), true
}

const wantDuration = `a duration ("250ms", "1m30s", or seconds as a number)`

// toDuration takes a time.Duration, a string time.ParseDuration reads, or a number of seconds
// (as a number or as text: 1.5 and "1.5" are 1.5s).
func toDuration(in any) (time.Duration, bool) {
	switch x := in.(type) {
	case time.Duration:
		return x, true
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(x)); err == nil {
			return d, true
		}
	}
	n, ok := toNum(in)
	if !ok {
		return 0, false
	}
	const perSecond = int64(time.Second)
	switch n.kind {
	case 'i':
		if n.i > math.MaxInt64/perSecond || n.i < math.MinInt64/perSecond {
			return 0, false
		}
		return time.Duration(n.i * perSecond), true
	case 'u':
		return 0, false
	}
	ns := math.Round(n.f * float64(perSecond))
	if math.IsNaN(ns) || ns < -twoTo63 || ns >= twoTo63 {
		return 0, false
	}
	return time.Duration(ns), true
}
