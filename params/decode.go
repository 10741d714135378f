package params

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Option changes how Decode treats its input.
type Option func(*options)

type options struct {
	allowUnknown     bool
	scalarsAsStrings bool
}

// AllowUnknown makes Decode ignore keys no field answers to, at every level, instead of
// reporting them.
func AllowUnknown() Option { return func(o *options) { o.allowUnknown = true } }

// ScalarsAsStrings lets a string field take a number or a bool, written as text: 3 → "3",
// 1e6 → "1000000", 0.5 → "0.5", true → "true", json.Number as its literal text. Use it for
// fields that hold names which may look like numbers (the layer "0" of a Sequential, given on the
// command line as layer=0). Without it such input is an error: a number where a string is
// wanted is more often a mistake than a name.
func ScalarsAsStrings() Option { return func(o *options) { o.scalarsAsStrings = true } }

// Decode sets the fields of the struct dst points to from src, and reports every key it could
// not take. It is all or nothing: dst changes only when no key fails (the work happens on a
// copy), so a bad set_params keeps a callback's old values.
//
// Keys. A field answers to its `hotcb:"name"` tag, else to its name in snake_case (EveryN →
// every_n). Matching ignores case, '_' and '-': every_n, everyN, EVERY-N and everyn all find
// EveryN. `hotcb:"-"` hides a field; unexported fields are ignored; an embedded struct without a
// tag has its fields promoted. A key with a dot that matches no field whole addresses a nested
// struct or map: "thresholds.loss" is {"thresholds": {"loss": …}} (for the CLI, which has no
// nested syntax). A key no field answers to is an error listing the valid keys (a *Error whose
// Unwrap is ErrUnknownKey), unless AllowUnknown is given. Two keys for one field are an error.
//
// Partial update. Only the fields of keys present in src change, so fields keep the values dst
// had (the callback's defaults on load, the current values on set_params). Nested structs and
// maps merge the same way: a map entry given replaces that entry only, and a null entry removes
// it. Lists replace the whole list. A null value sets a pointer, list, map or any field to nil;
// it is an error for the other kinds.
//
// Conversions (the value's source can be JSON, JSON with UseNumber, YAML, Go values or CLI text):
//   - bool: true/false; "true", "false", "1", "0", "t", "f", "yes", "no", "on", "off" in any
//     case; the numbers 0 and 1.
//   - ints, uints: any Go number, json.Number or decimal text ("10", "1e3") that is integral and
//     in range for the field: 2.5, 300 for an int8 and -1 for a uint are errors.
//   - float32, float64: numbers and their text ("3e-4", "inf"); NaN is refused, and so is a
//     finite value too large for a float32.
//   - string: strings only, unless ScalarsAsStrings is given.
//   - time.Duration: a time.Duration, text time.ParseDuration reads ("250ms", "1m30s"), or a
//     number of seconds, as a number or text (1.5 and "1.5" are 1.5s).
//   - slices: a list ([]any or any Go slice), or text split at commas, spaces trimmed
//     ("a,b,c" or "[1,2,3]"; "" is an empty list); a single number or bool is a one-element list. Arrays take a list of
//     exactly their length.
//   - maps with string keys: a map with string keys, merged as above.
//   - structs: a map, merged field by field; pointers: nil for null, else a new value (starting
//     as a copy of the old pointee, never written through the old pointer).
//   - any: the value as given, not copied or converted.
//
// Rules. A tag may add checks after the name: `hotcb:"every,min=1"`, `hotcb:",max=0.5"` (the
// default name), `hotcb:"mode,oneof=sum|mean"`. min and max bound a number or a duration
// ("min=10ms" or "min=0.01") by value and a string by its length in characters; oneof lists the
// values allowed, read like input to the field (so "oneof=1|2|4" works on an int). On a list,
// array or map, rules check every element. Rules check what src sets, not the values dst had.
//
// Problems in dst's type (not a pointer to a struct, a field of a type listed nowhere above, a
// bad rule, two fields with one key) are returned as a plain error before any key is looked at.
// Otherwise each problem is an *Error; several are joined (errors.Join), and Errors lists them.
func Decode(src map[string]any, dst any, opts ...Option) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("params: Decode needs a non-nil pointer to a struct, got %T", dst)
	}
	t := rv.Elem().Type()
	if _, err := structInfoOf(t); err != nil {
		return err
	}
	d := &decoder{}
	for _, o := range opts {
		o(&d.o)
	}
	cp := reflect.New(t).Elem()
	cp.Set(rv.Elem())
	d.structure("", src, cp)
	switch len(d.errs) {
	case 0:
		rv.Elem().Set(cp)
		return nil
	case 1:
		return d.errs[0]
	}
	return errors.Join(d.errs...)
}

// decoder collects the problems of one Decode call.
type decoder struct {
	o    options
	errs []error
}

func (d *decoder) fail(path string, v any, want, rule string) {
	d.errs = append(d.errs, &Error{Key: path, Value: v, Want: want, Rule: rule})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// value converts in into out (addressable), which it only sets when the conversion of in,
// including every element, succeeds. Values already in out are never modified in place: maps,
// slices and pointees out shares with dst are replaced by new ones.
func (d *decoder) value(path string, in any, out reflect.Value) bool {
	t := out.Type()
	if isScalar(t) {
		v, want := scalar(in, t, d.o.scalarsAsStrings)
		if want != "" {
			d.fail(path, in, want, "")
			return false
		}
		out.Set(v)
		return true
	}
	switch t.Kind() {
	case reflect.Interface:
		if in == nil {
			out.SetZero()
			return true
		}
		v := reflect.ValueOf(in)
		if !v.Type().AssignableTo(t) {
			d.fail(path, in, fmt.Sprintf("a %v", t), "")
			return false
		}
		out.Set(v)
		return true
	case reflect.Pointer:
		if in == nil {
			out.SetZero()
			return true
		}
		p := reflect.New(t.Elem())
		if !out.IsNil() {
			p.Elem().Set(out.Elem())
		}
		if !d.value(path, in, p.Elem()) {
			return false
		}
		out.Set(p)
		return true
	case reflect.Struct:
		m, ok := asMap(in)
		if !ok {
			d.fail(path, in, "a map", "")
			return false
		}
		return d.structure(path, m, out)
	case reflect.Map:
		return d.mapping(path, in, out)
	case reflect.Slice, reflect.Array:
		return d.list(path, in, out)
	}
	d.fail(path, in, fmt.Sprintf("a supported type (params cannot decode %v)", t), "")
	return false
}

// structure sets out's fields from m (see Decode for the key rules).
func (d *decoder) structure(path string, m map[string]any, out reflect.Value) bool {
	info, err := structInfoOf(out.Type())
	if err != nil {
		d.errs = append(d.errs, err)
		return false
	}
	n := len(d.errs)
	type given struct {
		key string
		val any
	}
	direct := map[int]given{}
	nested := map[int]map[string]any{}
	nestedKey := map[int]string{} // the first dotted key of a field, for messages
	for _, k := range sortedKeys(m) {
		v := m[k]
		if i, ok := info.lookup(k); ok {
			if prev, dup := direct[i]; dup {
				d.fail(join(path, k), v, fmt.Sprintf("a single value (%q is given too)", prev.key), "")
				continue
			}
			direct[i] = given{k, v}
			continue
		}
		if head, rest, ok := strings.Cut(k, "."); ok {
			if i, ok := info.lookup(head); ok {
				if nested[i] == nil {
					nested[i], nestedKey[i] = map[string]any{}, k
				}
				nested[i][rest] = v
				continue
			}
		}
		if !d.o.allowUnknown {
			d.errs = append(d.errs, &Error{Key: join(path, k), Value: v, Valid: info.names()})
		}
	}
	for i, f := range info.fields {
		g, isDirect := direct[i]
		sub, isNested := nested[i]
		if !isDirect && !isNested {
			continue
		}
		p, in := join(path, g.key), any(g.val)
		if isNested {
			if isDirect {
				d.fail(join(path, nestedKey[i]), m[nestedKey[i]],
					fmt.Sprintf("either %q or %q, not both", g.key, nestedKey[i]), "")
				continue
			}
			head, _, _ := strings.Cut(nestedKey[i], ".")
			p, in = join(path, head), sub
		}
		fv := out.FieldByIndex(f.index)
		if d.value(p, in, fv) {
			d.checkRules(p, fv, f.rules)
		}
	}
	return len(d.errs) == n
}

// mapping merges in (a map with string keys, or null) into the map out.
func (d *decoder) mapping(path string, in any, out reflect.Value) bool {
	if in == nil {
		out.SetZero()
		return true
	}
	m, ok := asMap(in)
	if !ok {
		d.fail(path, in, "a map with string keys", "")
		return false
	}
	t := out.Type()
	nm := reflect.MakeMapWithSize(t, out.Len()+len(m))
	iter := out.MapRange()
	for iter.Next() {
		nm.SetMapIndex(iter.Key(), iter.Value())
	}
	good := true
	for _, k := range sortedKeys(m) {
		kv := reflect.ValueOf(k).Convert(t.Key())
		if m[k] == nil {
			nm.SetMapIndex(kv, reflect.Value{}) // null removes the entry
			continue
		}
		ev := reflect.New(t.Elem()).Elem()
		if old := nm.MapIndex(kv); old.IsValid() {
			ev.Set(old)
		}
		if d.value(join(path, k), m[k], ev) {
			nm.SetMapIndex(kv, ev)
		} else {
			good = false
		}
	}
	if good {
		out.Set(nm)
	}
	return good
}

// list replaces the slice or array out with the elements of in.
func (d *decoder) list(path string, in any, out reflect.Value) bool {
	t := out.Type()
	if in == nil && t.Kind() == reflect.Slice {
		out.SetZero()
		return true
	}
	items, ok := asList(in)
	if !ok {
		d.fail(path, in, "a list", "")
		return false
	}
	var nv reflect.Value
	if t.Kind() == reflect.Array {
		if len(items) != t.Len() {
			d.fail(path, in, fmt.Sprintf("a list of %d elements", t.Len()), "")
			return false
		}
		nv = reflect.New(t).Elem()
	} else {
		nv = reflect.MakeSlice(t, len(items), len(items))
	}
	good := true
	for i, it := range items {
		if !d.value(join(path, strconv.Itoa(i)), it, nv.Index(i)) {
			good = false
		}
	}
	if good {
		out.Set(nv)
	}
	return good
}

// asMap reads a map with string keys: map[string]any as is (never modified), any other map
// whose keys are strings (map[string]int, YAML's map[any]any) copied.
func asMap(in any) (map[string]any, bool) {
	if m, ok := in.(map[string]any); ok {
		return m, true
	}
	rv := reflect.ValueOf(in)
	if rv.Kind() != reflect.Map {
		return nil, false
	}
	out := make(map[string]any, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		k := iter.Key()
		if k.Kind() == reflect.Interface {
			k = k.Elem()
		}
		if !k.IsValid() || k.Kind() != reflect.String {
			return nil, false
		}
		out[k.String()] = iter.Value().Interface()
	}
	return out, true
}

// asList reads a list: a Go slice or array, text split at commas (in optional brackets), or a
// single number or bool as a list of one. Maps and null are not lists.
func asList(in any) ([]any, bool) {
	switch x := in.(type) {
	case nil:
		return nil, false
	case []any:
		return x, true
	case json.Number, bool:
		return []any{x}, true
	}
	rv := reflect.ValueOf(in)
	switch rv.Kind() {
	case reflect.String:
		s := strings.TrimSpace(rv.String())
		if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
			s = strings.TrimSpace(s[1 : len(s)-1])
		}
		if s == "" {
			return []any{}, true
		}
		parts := strings.Split(s, ",")
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = strings.TrimSpace(p)
		}
		return out, true
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out, true
	case reflect.Map, reflect.Struct, reflect.Pointer, reflect.Interface, reflect.Func, reflect.Chan:
		return nil, false
	}
	if _, ok := toNum(in); ok {
		return []any{in}, true
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedMapKeys(m reflect.Value) []reflect.Value {
	keys := m.MapKeys()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}
