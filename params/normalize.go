package params

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Normalize returns v in the one form in which parameter values reach callbacks, whatever their
// source (a JSON command line, the CLI's key=value, hotcb.yaml, a recipe, the ledger at a
// restart, Go values given to Submit):
//
//   - an integer is an int64 (any Go integer kind, a json.Number without a fraction or an
//     exponent, YAML's int); only an integer above math.MaxInt64 and up to math.MaxUint64 (a
//     64-bit seed) is a uint64, so that it stays exact;
//   - every other number is a float64 (a float32 becomes the float64 of its shortest decimal
//     text, 0.1 and not 0.10000000149011612, as JSON writes it);
//   - strings, bools and nil are kept (a named string type becomes a plain string); a string
//     stays a string even when it spells a number ("1e-3": converting it is the consumer's job,
//     see Float, Int and Decode);
//   - a time.Duration becomes its text ("250ms"), which Decode reads back as a duration;
//   - maps become map[string]any (keys that are numbers or bools become their text) and lists
//     and arrays []any, with every element normalized;
//   - any other value (a struct, a time.Time) becomes what its JSON encoding decodes to.
//
// It never returns a json.Number. NaN, the infinities and a json.Number beyond float64's range
// (1e999) are errors: JSON, in which the ledger records every op, cannot carry them. Normalize
// never modifies v; the maps and lists it returns are new.
func Normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool, string, int64:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v cannot be recorded: JSON has no NaN or infinity", x)
		}
		return x, nil
	case float32:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v cannot be recorded: JSON has no NaN or infinity", f)
		}
		f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
		return f, nil
	case json.Number:
		return normalizeNumber(string(x))
	case time.Duration:
		return x.String(), nil
	case map[string]any:
		return NormalizeMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := Normalize(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u > math.MaxInt64 {
			return u, nil
		}
		return int64(rv.Uint()), nil
	case reflect.Float32:
		return Normalize(float32(rv.Float()))
	case reflect.Float64:
		return Normalize(rv.Float())
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		if _, ok := v.(json.Marshaler); !ok {
			return Normalize(rv.Elem().Interface())
		}
	case reflect.Map:
		if _, ok := v.(json.Marshaler); ok {
			break
		}
		if rv.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			k, ok := keyText(iter.Key())
			if !ok {
				return nil, fmt.Errorf("map key %v (%s): a key must be a string", iter.Key(), iter.Key().Type())
			}
			n, err := Normalize(iter.Value().Interface())
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
			out[k] = n
		}
		return out, nil
	case reflect.Slice, reflect.Array:
		if _, ok := v.(json.Marshaler); ok {
			break
		}
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			n, err := Normalize(rv.Index(i).Interface())
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return nil, fmt.Errorf("a %T cannot be a parameter value (want a bool, number, string, list or map)", v)
	}
	// A struct or a type with its own JSON form: what the ledger would record.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("a %T cannot be a parameter value: %v", v, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("a %T cannot be a parameter value: %v", v, err)
	}
	return Normalize(x)
}

// NormalizeMap is Normalize for a map of parameters (a load's init, a set_params' params); nil
// stays nil. An error names the key: `"thresholds": "loss": NaN cannot be recorded…`.
func NormalizeMap(m map[string]any) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for _, k := range sortedKeys(m) { // sorted: the first bad key is always the same one
		n, err := Normalize(m[k])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		out[k] = n
	}
	return out, nil
}

// normalizeNumber reads a JSON number's text: an integer literal as int64 (uint64 above
// MaxInt64), anything else as float64.
func normalizeNumber(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return nil, fmt.Errorf("%s is out of range for a 64-bit float (max ±1.8e308)", s)
		}
		return nil, fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%s cannot be recorded: JSON has no NaN or infinity", s)
	}
	return f, nil
}

// keyText is a map key as JSON writes it: a string, or the text of a number or bool.
func keyText(k reflect.Value) (string, bool) {
	if k.Kind() == reflect.Interface {
		if k.IsNil() {
			return "", false
		}
		k = k.Elem()
	}
	switch k.Kind() {
	case reflect.String:
		return k.String(), true
	case reflect.Bool:
		return strconv.FormatBool(k.Bool()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(k.Float(), 'g', -1, 64), true
	}
	return "", false
}

// Equal says whether two parameter values are the same value: numbers are compared by value
// whatever their Go type or form (int 50, int64 50, float64 50 and json.Number "50" are equal;
// 0.1 and float32 0.1 are not), maps key by key and lists element by element, anything else with
// reflect.DeepEqual. A string is never equal to a number ("50" is not 50). It is how a reload
// decides whether a load's init changed: the same YAML read again, or an init that went through
// the ledger's JSON, must not count as a change.
func Equal(a, b any) bool {
	if na, ok := exactNum(a); ok {
		nb, ok := exactNum(b)
		return ok && na != nil && nb != nil && na.Cmp(nb) == 0
	}
	if _, ok := exactNum(b); ok {
		return false
	}
	ra, rb := reflect.ValueOf(a), reflect.ValueOf(b)
	if ra.Kind() == reflect.Map && rb.Kind() == reflect.Map {
		ma, oka := asMap(a)
		mb, okb := asMap(b)
		if oka && okb {
			if len(ma) != len(mb) || ra.IsNil() != rb.IsNil() {
				return false
			}
			for k, va := range ma {
				vb, ok := mb[k]
				if !ok || !Equal(va, vb) {
					return false
				}
			}
			return true
		}
	}
	if isList(ra) && isList(rb) {
		if ra.Len() != rb.Len() || (ra.Kind() == reflect.Slice && rb.Kind() == reflect.Slice && ra.IsNil() != rb.IsNil()) {
			return false
		}
		for i := 0; i < ra.Len(); i++ {
			if !Equal(ra.Index(i).Interface(), rb.Index(i).Interface()) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func isList(v reflect.Value) bool {
	return v.Kind() == reflect.Slice || v.Kind() == reflect.Array
}

// exactNum reads a number of any Go kind or a json.Number exactly; ok is false for anything else
// (strings included). The *big.Float is nil for NaN and for a json.Number that is not a number,
// which equal nothing.
func exactNum(v any) (*big.Float, bool) {
	if n, ok := v.(json.Number); ok {
		f, _, err := big.ParseFloat(string(n), 10, 0, big.ToNearestEven)
		if err != nil {
			return nil, true
		}
		return f, true
	}
	if v == nil {
		return nil, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return new(big.Float).SetInt64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return new(big.Float).SetUint64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) {
			return nil, true
		}
		return new(big.Float).SetFloat64(f), true
	}
	return nil, false
}

// Float converts a loose value to a float64 the way Decode fills a float64 field: any Go number,
// a json.Number, or the text of a number ("1e-3", " 0.5 ", "inf"); NaN is refused. Use it (with
// Int and Bool) where a value is read by hand instead of decoded into a struct.
func Float(v any) (float64, error) {
	var f float64
	return f, convert(v, &f)
}

// Int converts a loose value to an int the way Decode fills an int field: an integral number of
// any Go type or form, or its text ("10", "1e3"); 2.5 and "abc" are errors.
func Int(v any) (int, error) {
	var n int
	return n, convert(v, &n)
}

// Bool converts a loose value to a bool the way Decode fills a bool field: a bool, the numbers 0
// and 1, or true/false, 1/0, t/f, yes/no, on/off as text in any case.
func Bool(v any) (bool, error) {
	var b bool
	return b, convert(v, &b)
}

// Floats converts a loose value to a list of float64 the way Decode fills a []float64 field: a
// list of numbers or of their text, or text separated by commas ("0.9,0.999").
func Floats(v any) ([]float64, error) {
	var fs []float64
	if v == nil {
		return nil, &Error{Value: v, Want: "a list"}
	}
	return fs, convert(v, &fs)
}

// convert decodes v into *dst; the error is an *Error without a key ("want a number, got
// "abc""), or several joined for a list.
func convert(v any, dst any) error {
	out := reflect.ValueOf(dst).Elem()
	d := &decoder{}
	if d.value("", v, out) {
		return nil
	}
	if len(d.errs) == 1 {
		return d.errs[0]
	}
	return errors.Join(d.errs...)
}

// ForJSON returns v ready for encoding/json so that the number kinds survive the text: a float64
// (or float32) with no fraction is written 2.0, not 2 as encoding/json writes it, so that it
// reads back as a float64 and not as an int64 (Python's json.dumps writes floats the same way).
// Maps with string keys and lists ([]any) are copied with their elements treated the same; every
// other value is returned as it is. Use it on params and init before writing them as JSON (the
// commands file, the ledger, a recipe).
func ForJSON(v any) any {
	switch x := v.(type) {
	case float64:
		return jsonFloat(x, 64)
	case float32:
		return jsonFloat(float64(x), 32)
	case map[string]any:
		if x == nil {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ForJSON(e)
		}
		return out
	case []any:
		if x == nil {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ForJSON(e)
		}
		return out
	}
	return v
}

// ForJSONMap is ForJSON for a map of parameters; nil stays nil.
func ForJSONMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return ForJSON(m).(map[string]any)
}

// jsonFloat is f as ForJSON writes it: unchanged when encoding/json already writes a fraction or
// an exponent, or cannot write it at all (NaN, ±Inf: its error is kept); else its digits and ".0".
func jsonFloat(f float64, bits int) any {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || math.Abs(f) >= 1e21 {
		if bits == 32 {
			return float32(f)
		}
		return f
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64) + ".0")
}
