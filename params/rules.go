package params

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// rule is one check from a tag (min=1, max=0.5, oneof=a|b). It applies to a scalar; on a list,
// an array or a map it applies to every element, through pointers.
type rule struct {
	text  string                       // as written in the tag, for messages
	check func(v reflect.Value) string // "" when v passes, else what was wanted
}

// compileRules parses a field's rules against the scalar type they will check.
func compileRules(texts []string, ft reflect.Type) ([]rule, error) {
	t := ft
	for !isScalar(t) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
			continue
		}
		return nil, fmt.Errorf("rules %q need numbers, strings or durations (or lists and maps of them), not %v",
			strings.Join(texts, ","), ft)
	}
	var rules []rule
	for _, text := range texts {
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		name, arg, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("rule %q: want min=, max= or oneof=", text)
		}
		var check func(reflect.Value) string
		var err error
		switch name {
		case "min", "max":
			check, err = boundRule(name == "min", arg, t)
		case "oneof":
			check, err = oneofRule(arg, t)
		default:
			err = fmt.Errorf("unknown rule (want min=, max= or oneof=)")
		}
		if err != nil {
			return nil, fmt.Errorf("rule %q: %w", text, err)
		}
		rules = append(rules, rule{text: text, check: check})
	}
	return rules, nil
}

// boundRule bounds a number or a duration by value, and a string by its length in characters.
func boundRule(isMin bool, arg string, t reflect.Type) (func(reflect.Value) string, error) {
	cmp, word := ">=", "at least"
	if !isMin {
		cmp, word = "<=", "at most"
	}
	if t.Kind() == reflect.String {
		n, err := strconv.Atoi(strings.TrimSpace(arg))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("a string's bound is a length, want a whole number >= 0")
		}
		want := fmt.Sprintf("%s %d characters", word, n)
		if n == 1 {
			want = fmt.Sprintf("%s 1 character", word)
		}
		return func(v reflect.Value) string {
			l := utf8.RuneCountInString(v.String())
			if (isMin && l < n) || (!isMin && l > n) {
				return want
			}
			return ""
		}, nil
	}
	if t.Kind() == reflect.Bool {
		return nil, fmt.Errorf("a bool has no range")
	}
	b, want := scalar(arg, t, false)
	if want != "" {
		return nil, fmt.Errorf("bound %q is not %s", arg, want)
	}
	shown := fmt.Sprintf("%s %s", cmp, showScalar(b))
	var out func(v reflect.Value) bool // true when v is outside the bound
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		out = func(v reflect.Value) bool {
			return (isMin && v.Float() < b.Float()) || (!isMin && v.Float() > b.Float())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		out = func(v reflect.Value) bool { return (isMin && v.Uint() < b.Uint()) || (!isMin && v.Uint() > b.Uint()) }
	default: // signed integers and durations
		out = func(v reflect.Value) bool { return (isMin && v.Int() < b.Int()) || (!isMin && v.Int() > b.Int()) }
	}
	return func(v reflect.Value) string {
		if out(v) {
			return shown
		}
		return ""
	}, nil
}

// oneofRule accepts the listed values, each converted like an input to the field's type (so
// "oneof=1|2|4" works on an int and "oneof=1s|1m" on a duration).
func oneofRule(arg string, t reflect.Type) (func(reflect.Value) string, error) {
	if t.Kind() == reflect.Bool {
		return nil, fmt.Errorf("a bool has only two values")
	}
	opts := strings.Split(arg, "|")
	vals := make([]reflect.Value, len(opts))
	shown := make([]string, len(opts))
	for i, o := range opts {
		in := o
		if t.Kind() != reflect.String {
			in = strings.TrimSpace(o)
		}
		v, want := scalar(in, t, false)
		if want != "" {
			return nil, fmt.Errorf("option %q is not %s", o, want)
		}
		vals[i], shown[i] = v, showScalar(v)
	}
	want := "one of " + strings.Join(shown, ", ")
	return func(v reflect.Value) string {
		for _, o := range vals {
			if v.Equal(o) {
				return ""
			}
		}
		return want
	}, nil
}

// showScalar prints a converted scalar the way a user would type it.
func showScalar(v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Float32:
		return strconv.FormatFloat(v.Float(), 'g', -1, 32)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// checkRules applies rules to v (the decoded value at path), reaching into pointers, lists and
// maps, and reports each failure.
func (d *decoder) checkRules(path string, v reflect.Value, rules []rule) {
	if len(rules) == 0 {
		return
	}
	if isScalar(v.Type()) {
		for _, r := range rules {
			if want := r.check(v); want != "" {
				d.fail(path, v.Interface(), want, r.text)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			d.checkRules(path, v.Elem(), rules)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			d.checkRules(join(path, strconv.Itoa(i)), v.Index(i), rules)
		}
	case reflect.Map:
		for _, k := range sortedMapKeys(v) {
			d.checkRules(join(path, k.String()), v.MapIndex(k), rules)
		}
	}
}
